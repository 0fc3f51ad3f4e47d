package main

import (
	"bufio"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"kzprobe/vantage"
)

// startFixedDNS runs a DNS server on loopback that answers every A
// question with ip and every other question with no answer.
func startFixedDNS(t *testing.T, ip net.IP) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if q := r.Question[0]; q.Qtype == dns.TypeA {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET}, A: ip})
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

// stallingSite is a TLS port that accepts a connection and never answers
// it (a handshake stalled by a middlebox) until release; from then on it
// closes every connection, those it held and the later ones, at once.
type stallingSite struct {
	ln       net.Listener
	mu       sync.Mutex
	held     []net.Conn
	released bool
}

func startStallingSite(t *testing.T) *stallingSite {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &stallingSite{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			if s.released {
				c.Close()
			} else {
				s.held = append(s.held, c)
			}
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.release() })
	return s
}

func (s *stallingSite) port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// holding reports how many connections it holds now.
func (s *stallingSite) holding() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.held)
}

// release closes the held connections, and every later one at once.
func (s *stallingSite) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.released = true
	for _, c := range s.held {
		c.Close()
	}
	s.held = nil
}

// TestRunVerboseLive: kzprobe run -v writes each step as it starts and
// ends, while the target is still being measured. The site accepts the
// connection and never answers (the handshake would wait --timeout, two
// minutes): the DNS, connect and handshake lines of the target must be on
// stderr while the test still holds that connection, before the
// handshake could end. Before, -v printed the steps only once the target
// was done: nothing showed while it hung, and the lines came after the
// release.
func TestRunVerboseLive(t *testing.T) {
	clearEnv(t)
	site := startStallingSite(t)
	resolver := startFixedDNS(t, net.IPv4(127, 0, 0, 1))
	out := filepath.Join(t.TempDir(), "v.jsonl")
	cmd := exec.Command(kzprobeBinary(t), "run", "-v", "-o", out, "-d", "stall.example",
		"--resolver", resolver, "--control", "udp://"+resolver, "--port", strconv.Itoa(site.port()),
		"--allow-net", "127.0.0.0/8", "--timeout", "2m", "--dns-timeout", "3s", "--target-timeout", "3m")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()

	prefix := `^kzprobe: debug: stall\.example:` + strconv.Itoa(site.port()) + `: \d+ ms: `
	want := []*regexp.Regexp{
		regexp.MustCompile(prefix + `dns local A stall\.example via 127\.0\.0\.1:\d+ \(udp\): started$`),
		regexp.MustCompile(prefix + `dns local A stall\.example via 127\.0\.0\.1:\d+ \(udp\): 127\.0\.0\.1 in \d+ ms$`),
		regexp.MustCompile(prefix + `dns control A stall\.example via 127\.0\.0\.1:\d+ \(udp\): 127\.0\.0\.1 in \d+ ms$`),
		regexp.MustCompile(prefix + `connect 127\.0\.0\.1:\d+: started$`),
		regexp.MustCompile(prefix + `connect 127\.0\.0\.1:\d+: connected in \d+ ms$`),
		regexp.MustCompile(prefix + `handshake 127\.0\.0\.1:\d+ sni=stall\.example fingerprint=chrome: started$`),
	}
	seen := make([]bool, len(want))
	var all []string
	allSeen := func() bool {
		for _, s := range seen {
			if !s {
				return false
			}
		}
		return true
	}
	note := func(l string) {
		all = append(all, l)
		for i, re := range want {
			if re.MatchString(l) {
				seen[i] = true
			}
		}
	}
	// Read while the connection is held: the handshake cannot end before
	// the release. The bound only decides when to stop waiting.
	giveUp := time.After(30 * time.Second)
	held := true
	for held && !allSeen() {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("kzprobe ended while its handshake was held:\n%s", strings.Join(all, "\n"))
			}
			note(l)
		case <-giveUp:
			held = false
		}
	}
	holding := site.holding()
	site.release()
	if !held {
		t.Errorf("while the handshake was held (30 s), stderr showed only:\n%s", strings.Join(all, "\n"))
	}
	if holding == 0 {
		t.Errorf("the site held no connection when the steps were seen")
	}
	var before []bool
	before = append(before, seen...)
	for l := range lines {
		note(l)
	}
	if err := cmd.Wait(); err != nil {
		t.Logf("kzprobe run: %v", err)
	}
	for i, re := range want {
		switch {
		case !seen[i]:
			t.Errorf("no line matching %s in:\n%s", re, strings.Join(all, "\n"))
		case !before[i]:
			t.Errorf("a line matching %s came only after the held connection was released, once the target was done", re)
		}
	}
	// After the release: the handshake's end and the judgement, once each.
	for _, end := range []string{`handshake 127\.0\.0\.1:\d+ sni=stall\.example fingerprint=chrome: failed: `, `judgement by rule `} {
		re := regexp.MustCompile(prefix + end)
		n := 0
		for _, l := range all {
			if re.MatchString(l) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d lines matching %s; want 1 in:\n%s", n, re, strings.Join(all, "\n"))
		}
	}
}

// TestRunVerboseScrubbed: a -v line that carries the probe's own address
// is scrubbed like every other byte on the terminal, unless --include-ip.
// The local resolver answers each name with the address the query came
// from (--bind): the DNS and connect lines of the target name the probe's
// address.
func TestRunVerboseScrubbed(t *testing.T) {
	clearEnv(t)
	const bind = "127.0.0.77"
	whoami := startWhoami(t)
	for _, includeIP := range []bool{false, true} {
		t.Run("include_ip="+strconv.FormatBool(includeIP), func(t *testing.T) {
			args := []string{"run", "-v", "-q", "-o", filepath.Join(t.TempDir(), "v.jsonl"), "-d", "me.example",
				"--resolver", whoami, "--control", "udp://" + whoami, "--bind", bind, "--port", "9",
				"--allow-net", "127.0.0.0/8", "--timeout", "5s"}
			if includeIP {
				args = append(args, "--include-ip")
			}
			cmd := exec.Command(kzprobeBinary(t), args...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil {
				if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == exitUsage {
					t.Fatalf("%v\n%s", err, stderr.String())
				}
			}
			shown := bind
			if !includeIP {
				shown = vantage.Scrubbed
			}
			for _, want := range []string{
				`(?m)^kzprobe: debug: me\.example:9: \d+ ms: dns local A me\.example via 127\.0\.0\.1:\d+ \(udp\): ` + regexp.QuoteMeta(shown) + ` in \d+ ms$`,
				`(?m)^kzprobe: debug: me\.example:9: \d+ ms: connect ` + regexp.QuoteMeta(shown) + `:9: started$`,
			} {
				if !regexp.MustCompile(want).MatchString(stderr.String()) {
					t.Errorf("no line matching %s in:\n%s", want, stderr.String())
				}
			}
			if leaked := strings.Contains(stderr.String(), bind); leaked != includeIP {
				t.Errorf("%s on stderr: %v; want %v:\n%s", bind, leaked, includeIP, stderr.String())
			}
		})
	}
}

// TestRunVerboseOnTerminal runs kzprobe run -v on a terminal, where the
// progress line is redrawn in place below everything: each step line
// starts a line of its own (after a newline, or after the progress line
// was cleared) and is whole, never broken by a progress line drawn into
// it, and the progress line is drawn.
func TestRunVerboseOnTerminal(t *testing.T) {
	clearEnv(t)
	args, _, dir := terminalLab(t)
	raw := string(runInPTY(t, 200, nil, append([]string{"run", "-v", "-o", filepath.Join(dir, "v.jsonl")}, args...)...))
	const mark = "kzprobe: debug: "
	n := 0
	for rest, before := raw, ""; ; {
		i := strings.Index(rest, mark)
		if i < 0 {
			break
		}
		before, rest = before+rest[:i], rest[i:]
		if !strings.HasSuffix(before, "\n") && !strings.HasSuffix(before, "\r\x1b[K") {
			t.Errorf("a step line starts mid-line, after %q", before[max(0, len(before)-40):])
		}
		line, _, _ := strings.Cut(rest, "\n")
		if body := strings.TrimSuffix(line, "\r"); strings.ContainsAny(body, "\r\x1b") || !regexp.MustCompile(`^kzprobe: debug: \S+: \d+ ms: \S`).MatchString(body) {
			t.Errorf("a step line is not whole: %q", line)
		}
		before, rest = before+rest[:len(mark)], rest[len(mark):]
		n++
	}
	if n < 20 {
		t.Errorf("%d step lines on the terminal; want one per step of 6 targets:\n%s", n, raw)
	}
	if len(progressLines([]byte(raw))) == 0 {
		t.Errorf("no progress line drawn:\n%q", raw)
	}
}
