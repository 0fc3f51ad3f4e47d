package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"kzprobe/lab"
	"kzprobe/measurement"
	"kzprobe/vantage"
)

// privacyLab starts a small lab (an intercepted site, a clean one, one
// that resets, one unreachable) and returns it with the `kzprobe run`
// arguments for it, without -o.
func privacyLab(t *testing.T, cfg lab.Config) (*lab.Lab, []string) {
	t.Helper()
	if len(cfg.Scenario.Sites) == 0 {
		cfg.Scenario = lab.Scenario{Name: "privacy", Sites: []lab.Site{
			{Domain: "intercepted.example", TLS: lab.InterceptISCA},
			{Domain: "clean.example", TLS: lab.Pass},
			{Domain: "reset.example", TLS: lab.Reset},
			{Domain: "unreachable.example", TLS: lab.Unreachable},
		}}
	}
	l, dir, files := startLab(t, cfg)
	return l, strings.Fields(labCommandLine(labConfig(l, files, dir)))[1:] // "run" + flags
}

// labClient returns an address of l's /24 where nothing listens, for the
// probe to --bind: the lab then sees connections from it.
func labClient(l *lab.Lab) netip.Addr {
	a := l.Net.Addr().As4()
	a[3] = 250
	return netip.AddrFrom4(a)
}

// icmpResolver listens for DNS queries over UDP on addr and answers each
// with an ICMP "protocol unreachable" error quoting it, as a router on the
// resolver path may: the client's connected socket then reads
// ENOPROTOOPT, a failure the probe records with its text ("read udp
// CLIENT:PORT->...: recvfrom: protocol not available"). It skips the test
// where raw ICMP sockets are not allowed (no CAP_NET_RAW).
func icmpResolver(t *testing.T, addr netip.Addr) netip.AddrPort {
	t.Helper()
	raw, err := net.ListenPacket("ip4:icmp", addr.String())
	if err != nil {
		t.Skipf("no raw ICMP socket (needs CAP_NET_RAW): %v", err)
	}
	pc, err := net.ListenPacket("udp4", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		raw.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close(); pc.Close() })
	local := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			src := from.(*net.UDPAddr).AddrPort()
			// The quoted datagram: its IPv4 header and UDP header.
			s, d := src.Addr().As4(), local.Addr().As4()
			total := 20 + 8 + n
			ip := []byte{0x45, 0, byte(total >> 8), byte(total), 0, 0, 0x40, 0, 64, 17, 0, 0,
				s[0], s[1], s[2], s[3], d[0], d[1], d[2], d[3]}
			binary.BigEndian.PutUint16(ip[10:], inetChecksum(ip))
			udp := make([]byte, 8)
			binary.BigEndian.PutUint16(udp[0:], src.Port())
			binary.BigEndian.PutUint16(udp[2:], local.Port())
			binary.BigEndian.PutUint16(udp[4:], uint16(8+n))
			msg := append(append([]byte{3, 2, 0, 0, 0, 0, 0, 0}, ip...), udp...) // type 3 code 2
			binary.BigEndian.PutUint16(msg[2:], inetChecksum(msg))
			raw.WriteTo(msg, &net.IPAddr{IP: src.Addr().AsSlice()})
		}
	}()
	return local
}

// inetChecksum is the Internet checksum (RFC 1071) of b.
func inetChecksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// TestRunTerminalScrubbed runs the real binary where the probe's own
// address ends up in error messages (a --bind address that cannot be
// bound: "dial udp 10.77.0.5:0->..."; from a bound lab address, a
// resolver path that answers with an ICMP error: "read udp
// 127.x.y.250:53446->...: recvfrom: protocol not available")
// and checks that the address, in any spelling the scrubber knows, is in
// no byte of stdout, stderr or the output file.
func TestRunTerminalScrubbed(t *testing.T) {
	bin := kzprobeBinary(t)
	l, base := privacyLab(t, lab.Config{})
	client := labClient(l)
	a := client.As4()
	resolver := icmpResolver(t, netip.AddrFrom4([4]byte{a[0], a[1], a[2], 249}))
	tests := []struct {
		name string
		addr netip.Addr
		args []string
	}{
		{"bind address that cannot be bound", netip.MustParseAddr("10.77.0.5"), []string{"--bind", "10.77.0.5"}},
		{"ICMP error on the resolver path", client, []string{"--bind", client.String(), "--resolver", resolver.String()}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "m.jsonl")
			args := append(append(append([]string{}, base...), tc.args...), "-o", out)
			cmd := exec.Command(bin, args...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			cmd.Env = append(os.Environ(), "KZPROBE_NETWORK_ALLOW=127.0.0.0/8,::1/128")
			err := cmd.Run()
			file, _ := os.ReadFile(out)
			if len(file) == 0 && err == nil {
				t.Fatalf("no record written and exit 0:\n%s%s", stdout.Bytes(), stderr.Bytes())
			}
			sc := vantage.NewScrubber(tc.addr)
			for name, b := range map[string][]byte{"stdout": stdout.Bytes(), "stderr": stderr.Bytes(), "output file": file} {
				if sc.Contains(b) {
					t.Errorf("%s holds %s:\n%s", name, tc.addr, b)
				}
			}
			if !strings.Contains(stdout.String()+stderr.String(), vantage.Scrubbed) {
				t.Errorf("nothing was scrubbed from the terminal; the test did not provoke the message:\n%s%s", stdout.Bytes(), stderr.Bytes())
			}
			if t.Failed() {
				t.Logf("exit: %v", err)
			}
		})
	}
}

// TestScrubWriter checks the terminal writer: every Write is scrubbed with
// the scrubber current at the time, the count returned is the caller's,
// and a nil scrubber passes bytes through.
func TestScrubWriter(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	w := newScrubWriter(&buf)
	fmt.Fprintf(w, "before: 10.0.0.1\n")
	w.set(vantage.NewScrubber(netip.MustParseAddr("10.0.0.1")))

	n, err := fmt.Fprintf(w, "dial udp 10.0.0.1:0->127.0.0.1:53\n")
	if err != nil || n != len("dial udp 10.0.0.1:0->127.0.0.1:53\n") {
		t.Errorf("Write = %d, %v; want the length written by the caller", n, err)
	}
	want := "before: 10.0.0.1\ndial udp [scrubbed]:0->127.0.0.1:53\n"
	if buf.String() != want {
		t.Errorf("wrote %q; want %q", buf.String(), want)
	}
}

// TestRunWithholdsRawAddress runs `kzprobe run` against a lab whose
// middlebox writes the client's address into the leaves it forges and
// whose resolver echoes it in a client-subnet option. By default the
// record withholds those certificates and responses, keeping their facts,
// with the verdicts of a run that keeps them (--include-ip); the address
// is in no byte written, nor in any raw field decoded.
func TestRunWithholdsRawAddress(t *testing.T) {
	clearEnv(t)
	l, base := privacyLab(t, lab.Config{EchoClient: true})
	client := labClient(l)
	sc := vantage.NewScrubber(client)
	base = append(base, "-q", "--bind", client.String())

	run := func(t *testing.T, extra ...string) (map[string]*measurement.Measurement, []byte, string) {
		t.Helper()
		out := filepath.Join(t.TempDir(), "m.jsonl")
		code, printed := runCaptured(append(append(append([]string{}, base...), extra...), "-o", out))
		if code != exitOK {
			t.Fatalf("exit %d:\n%s", code, printed)
		}
		data, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		recs := map[string]*measurement.Measurement{}
		if _, err := measurement.ReadJSONL(bytes.NewReader(data), func(m *measurement.Measurement) error {
			recs[m.Input] = m
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(recs) != len(l.Scenario.Sites) {
			t.Fatalf("%d records; want %d", len(recs), len(l.Scenario.Sites))
		}
		return recs, data, printed
	}
	kept, _, _ := run(t, "--include-ip")
	withheld, data, printed := run(t)

	if sc.Contains(data) || sc.Contains([]byte(printed)) {
		t.Errorf("the client address %s is in the output file or on the terminal", client)
	}
	nCerts, nResponses := 0, 0
	for _, s := range l.Scenario.Sites {
		m, k := withheld[s.Domain], kept[s.Domain]
		if m.TestKeys.Verdict != k.TestKeys.Verdict || m.TestKeys.VerdictReason != k.TestKeys.VerdictReason {
			t.Errorf("%s: withheld %s (%s); kept %s (%s); want the same verdict", s.Domain,
				m.TestKeys.Verdict, m.TestKeys.VerdictReason, k.TestKeys.Verdict, k.TestKeys.VerdictReason)
		}
		if string(m.TestKeys.Verdict) != s.Expect {
			t.Errorf("%s: verdict %s; want %s", s.Domain, m.TestKeys.Verdict, s.Expect)
		}
		for i, q := range m.TestKeys.Queries {
			kq := k.TestKeys.Queries[i]
			if kq.RawResponse == nil {
				continue
			}
			// The lab's resolver echoes the client in every answer.
			if !sc.Contains(kq.RawResponse) || kq.RawResponseWithheld != nil {
				t.Errorf("%s: --include-ip: %s response without the client's subnet or withheld", s.Domain, q.QueryType)
			}
			w := q.RawResponseWithheld
			// The two runs' messages differ in their IDs only.
			if q.RawResponse != nil || w == nil || w.Reason != measurement.WithheldProbeAddress || len(w.SHA256) != 64 || w.Size != len(kq.RawResponse) {
				t.Errorf("%s: %s response: raw %d bytes, withheld %+v; want it withheld, of the kept one's size", s.Domain, q.QueryType, len(q.RawResponse), w)
				continue
			}
			nResponses++
		}
		for i, h := range m.TestKeys.TLSHandshakes {
			kh := k.TestKeys.TLSHandshakes[i]
			for _, c := range h.PeerCertificates {
				if c != nil && sc.Contains(c) {
					t.Errorf("%s: a certificate kept holds the client address", s.Domain)
				}
			}
			for _, w := range h.WithheldCertificates {
				nCerts++
				// Forged leaves are cached by the lab: the same in both runs.
				der := kh.PeerCertificates[w.Index]
				if h.PeerCertificates[w.Index] != nil || !sc.Contains(der) || w.SHA256 != sha256Hex(der) {
					t.Errorf("%s: withheld certificate %d does not stand for the kept one, which holds the address", s.Domain, w.Index)
				}
				if !strings.Contains(w.Subject, vantage.Scrubbed) || w.Serial == "" || w.NotAfter == "" || len(w.SPKISHA256) != 64 || w.RootName == "" {
					t.Errorf("%s: withheld certificate facts %+v; want the subject scrubbed, serial, validity, SPKI hash and the ISCA root", s.Domain, w)
				}
			}
			if len(kh.WithheldCertificates) != 0 {
				t.Errorf("%s: --include-ip withheld certificates", s.Domain)
			}
		}
	}
	if nCerts == 0 || nResponses == 0 {
		t.Errorf("%d certificates and %d responses withheld; want some of each", nCerts, nResponses)
	}
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
