//go:build linux

package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// daemon is one third-party server started by the suite and stopped by
// its pid.
type daemon struct {
	name string
	cmd  *exec.Cmd
	// log receives the daemon's stdout and stderr.
	log  string
	done chan struct{}
	err  error // Wait's result, once done is closed
}

// startDaemon runs argv in the foreground of its own process group, with
// its output in dir/name.log, and registers a cleanup that stops it by pid
// (SIGTERM, then SIGKILL after 5s). Pdeathsig kills it should the test
// binary die first.
func startDaemon(t testing.TB, dir, name string, argv ...string) *daemon {
	t.Helper()
	d := &daemon{name: name, log: filepath.Join(dir, name+".log"), done: make(chan struct{})}
	f, err := os.Create(d.log)
	if err != nil {
		t.Fatal(err)
	}
	d.cmd = exec.Command(argv[0], argv[1:]...)
	d.cmd.Dir = dir
	d.cmd.Stdout, d.cmd.Stderr = f, f
	d.cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + dir}
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("starting %s (%s): %v", name, strings.Join(argv, " "), err)
	}
	f.Close()
	t.Logf("started %s, pid %d: %s", name, d.cmd.Process.Pid, strings.Join(argv, " "))
	go func() {
		d.err = d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() { d.stop(t) })
	return d
}

// stop ends the daemon by its pid and logs how it went.
func (d *daemon) stop(t testing.TB) {
	select {
	case <-d.done:
		t.Logf("%s (pid %d) had already exited: %v", d.name, d.cmd.Process.Pid, d.err)
		return
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(5 * time.Second):
		t.Logf("%s (pid %d) ignored SIGTERM; killing it", d.name, d.cmd.Process.Pid)
		_ = d.cmd.Process.Kill()
		<-d.done
	}
	// sslsplit forks an unprivileged child that exits with its parent.
	// The child is in the daemon's own process group (the pgid is the
	// daemon's pid): give it a moment, then make sure it is gone.
	pgid := d.cmd.Process.Pid
	for i := 0; i < 50 && syscall.Kill(-pgid, 0) == nil; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	if syscall.Kill(-pgid, 0) == nil {
		t.Logf("%s: processes of group %d outlived pid %d; killing them", d.name, pgid, pgid)
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
}

// exited reports whether the daemon has stopped, with its log.
func (d *daemon) exited() (bool, string) {
	select {
	case <-d.done:
		b, _ := os.ReadFile(d.log)
		return true, fmt.Sprintf("%s exited (%v); its log:\n%s", d.name, d.err, b)
	default:
		return false, ""
	}
}

// readyTimeout bounds the wait for one daemon to listen.
const readyTimeout = 15 * time.Second

// waitTCP waits until something accepts TCP connections on addr, failing
// early if d exits.
func waitTCP(t testing.TB, d *daemon, addr string) {
	t.Helper()
	waitFor(t, d, addr, func() error {
		c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err
	})
}

// waitDNS waits until a DNS server answers an A query for name over UDP on
// addr.
func waitDNS(t testing.TB, d *daemon, addr, name string) {
	t.Helper()
	c := &dns.Client{Net: "udp", Timeout: 500 * time.Millisecond}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	waitFor(t, d, addr, func() error {
		_, _, err := c.Exchange(m, addr)
		return err
	})
}

func waitFor(t testing.TB, d *daemon, addr string, try func() error) {
	t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for {
		err := try()
		if err == nil {
			return
		}
		if gone, log := d.exited(); gone {
			t.Fatalf("waiting for %s on %s: %s", d.name, addr, log)
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(d.log)
			t.Fatalf("%s did not listen on %s within %v: %v; its log:\n%s", d.name, addr, readyTimeout, err, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// run runs a short command with a timeout and returns its stdout; stderr
// goes into the error.
func run(ctx context.Context, stdin string, argv ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, stderr.String())
	}
	return out, nil
}
