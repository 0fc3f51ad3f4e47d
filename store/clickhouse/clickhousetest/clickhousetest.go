// Package clickhousetest starts throw-away ClickHouse servers on loopback
// for tests, through the project's scripts/clickhouse.sh: Debian's
// clickhouse-server, each with its own config and data in a temporary
// folder, one server or several as the shards of the cluster "kzprobe".
//
// Starting a server takes about half a second, so a test package starts
// its servers once, in TestMain, and each test takes its own database
// (Servers.URL with a fresh name):
//
//	func TestMain(m *testing.M) { os.Exit(clickhousetest.Main(m, &servers, 2)) }
//
// Without the binary (or without root) tests skip, saying why; with
// KZPROBE_E2E_REQUIRE=1 (CI) they fail instead.
package clickhousetest

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// Binary is the server Debian's clickhouse-server package installs.
const Binary = "/usr/sbin/clickhouse-server"

// RequireEnv makes a missing server a failure rather than a skip.
const RequireEnv = "KZPROBE_E2E_REQUIRE"

// Cluster is the cluster name the script gives the servers.
const Cluster = "kzprobe"

// Servers are running ClickHouse servers.
type Servers struct {
	// HTTP are the servers' HTTP addresses, host:port.
	HTTP []string
	dir  string
	args []string // the start command, for Resume
	// Unavailable says why no server runs ("" when they do).
	Unavailable string
	seq         atomic.Int64
}

// Start starts n servers (n > 1: as the shards of Cluster) in a
// temporary folder. It returns Servers with Unavailable set, and no error,
// when the binary is missing or the user is not root.
func Start(n int) (*Servers, error) {
	s := &Servers{}
	if _, err := os.Stat(Binary); err != nil {
		s.Unavailable = Binary + " missing (scripts/clickhouse.sh install, as root)"
		return s, nil
	}
	if os.Geteuid() != 0 {
		s.Unavailable = "not root: scripts/clickhouse.sh starts the server as root"
		return s, nil
	}
	script, err := findScript()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "kzprobe-clickhouse-")
	if err != nil {
		return nil, err
	}
	s.dir = dir
	args := []string{script, "start", dir, "--watch", strconv.Itoa(os.Getpid())}
	ports, err := freePorts(2 * n)
	if err != nil {
		return nil, err
	}
	for i := range n {
		h, t := ports[2*i], ports[2*i+1]
		args = append(args, strconv.Itoa(h)+":"+strconv.Itoa(t))
		s.HTTP = append(s.HTTP, "127.0.0.1:"+strconv.Itoa(h))
	}
	s.args = args
	if err := s.Resume(); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// Pause kills the servers at once, as a crash would, keeping their data:
// a test of what happens while ClickHouse is down. Resume starts them
// again.
func (s *Servers) Pause() error {
	script, err := findScript()
	if err != nil {
		return err
	}
	if out, err := exec.Command("bash", script, "stop", s.dir, "--kill").CombinedOutput(); err != nil {
		return fmt.Errorf("clickhousetest: stop: %v\n%s", err, out)
	}
	return nil
}

// Resume starts the servers (again) on the same ports and data.
func (s *Servers) Resume() error {
	out, err := exec.Command("bash", s.args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("clickhousetest: %s: %v\n%s", strings.Join(s.args, " "), err, out)
	}
	return nil
}

// Stop stops the servers and removes their folder.
func (s *Servers) Stop() {
	if s == nil || s.dir == "" {
		return
	}
	script, err := findScript()
	if err == nil {
		_ = exec.Command("bash", script, "stop", s.dir, "--kill").Run()
	}
	os.RemoveAll(s.dir)
	s.dir = ""
}

// Need skips t (or fails it under KZPROBE_E2E_REQUIRE=1) when no server
// runs.
func (s *Servers) Need(t testing.TB) {
	t.Helper()
	if s == nil {
		t.Fatal("clickhousetest: servers not started (TestMain)")
	}
	if s.Unavailable == "" {
		return
	}
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("ClickHouse needed: %s", s.Unavailable)
	}
	t.Skipf("no ClickHouse: %s", s.Unavailable)
}

// URL returns a --clickhouse URL for a database of its own, named after
// t: over every server as a cluster when cluster is true, else the first
// server alone.
func (s *Servers) URL(t testing.TB, cluster bool) string {
	t.Helper()
	s.Need(t)
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, t.Name())
	if len(name) > 40 {
		name = name[:40]
	}
	db := fmt.Sprintf("t%d_%s", s.seq.Add(1), name)
	if cluster {
		return "http://" + strings.Join(s.HTTP, ",") + "/" + db + "?cluster=" + Cluster
	}
	return "http://" + s.HTTP[0] + "/" + db
}

// Main runs a test package's tests with n servers started for all of them
// (*dst), stopping them at the end: call it from TestMain.
func Main(m *testing.M, dst **Servers, n int) int {
	// A fuzzing run (and each of its workers) runs no test that needs a
	// server: start none.
	flag.Parse()
	if f := flag.Lookup("test.fuzz"); f != nil && f.Value.String() != "" {
		*dst = &Servers{Unavailable: "fuzzing"}
		return m.Run()
	}
	if f := flag.Lookup("test.fuzzworker"); f != nil && f.Value.String() == "true" {
		*dst = &Servers{Unavailable: "fuzzing"}
		return m.Run()
	}
	s, err := Start(n)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	*dst = s
	defer s.Stop()
	return m.Run()
}

// findScript finds scripts/clickhouse.sh above the working folder (the
// test's package folder).
func findScript() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "scripts", "clickhouse.sh")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("clickhousetest: scripts/clickhouse.sh not found above the working folder")
		}
		dir = parent
	}
}

// freePorts returns n distinct loopback TCP ports free just now (all
// held open while choosing, so that none is given twice).
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
