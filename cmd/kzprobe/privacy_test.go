package main

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
	"github.com/miekg/dns"

	"kzprobe/lab"
	"kzprobe/measurement"
)

// writeMMDB builds an MMDB file holding recs (address -> record, each a /32).
func writeMMDB(t *testing.T, dbType string, recs map[netip.Addr]mmdbtype.Map) string {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: dbType, IPVersion: 6, RecordSize: 24, IncludeReservedNetworks: true})
	if err != nil {
		t.Fatal(err)
	}
	for a, rec := range recs {
		n := &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(32, 32)}
		if err := tree.Insert(n, rec); err != nil {
			t.Fatalf("insert %s: %v", a, err)
		}
	}
	path := filepath.Join(t.TempDir(), dbType+".mmdb")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	return path
}

// startWhoami runs a DNS server on loopback that answers any A question
// with the address the query came from, as Akamai's whoami server does.
func startWhoami(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		ip := w.RemoteAddr().(*net.UDPAddr).IP
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 0}, A: ip})
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

// runCaptured runs the command tree with args and returns its exit code
// and everything it printed.
func runCaptured(args []string) (int, string) {
	var out bytes.Buffer
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&out)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(&out, err)
		return exitFailure, out.String()
	}
	return exitOK, out.String()
}

// TestVantageAndPrivacy runs `kzprobe run` against a lab from a chosen
// source address (the lab's "client"), learns that address from a whoami
// server, looks it and the resolver up in MMDB files built here, and then
// checks that the records carry the right ASN and country with the method
// used, while the client's address appears nowhere in the output file,
// the terminal output or the messages — unless --include-ip.
func TestVantageAndPrivacy(t *testing.T) {
	clearEnv(t)
	l, dir, files := startLab(t, lab.Config{Scenario: lab.DefaultScenario()})
	client := l.Net.Addr().Next()
	for range 249 { // 127.a.b.250: a lab address where nothing listens
		client = client.Next()
	}
	resolver := netip.MustParseAddrPort(l.LocalDNS).Addr()
	asnDB := writeMMDB(t, "GeoLite2-ASN", map[netip.Addr]mmdbtype.Map{
		client:   {"autonomous_system_number": mmdbtype.Uint32(9198), "autonomous_system_organization": mmdbtype.String("JSC Kazakhtelecom")},
		resolver: {"autonomous_system_number": mmdbtype.Uint32(48716), "autonomous_system_organization": mmdbtype.String("PS Internet Company LLP")},
	})
	ccDB := writeMMDB(t, "GeoLite2-Country", map[netip.Addr]mmdbtype.Map{
		client: {"country": mmdbtype.Map{"iso_code": mmdbtype.String("KZ")}},
	})
	base := strings.Fields(labCommandLine(labConfig(l, files, dir)))[1:] // "run" + flags
	base = append(base, "-q", "--bind", client.String(), "--asn-db", asnDB, "--country-db", ccDB)
	whoami := startWhoami(t)

	// The public address comes from the whoami DNS server, or, without
	// one, from the lab's control server (GET /v1/whoami).
	for _, tc := range []struct {
		includeIP bool
		whoami    bool
	}{{false, true}, {true, true}, {false, false}} {
		includeIP := tc.includeIP
		t.Run(fmt.Sprintf("include_ip=%v,whoami_dns=%v", tc.includeIP, tc.whoami), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "m.jsonl")
			args := append(append([]string{}, base...), "-o", out)
			if tc.whoami {
				args = append(args, "--whoami", whoami)
			}
			if includeIP {
				args = append(args, "--include-ip")
			}
			code, printed := runCaptured(args)
			if code != exitOK {
				t.Fatalf("exit %d:\n%s", code, printed)
			}
			data, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			if _, err := measurement.ReadJSONL(bytes.NewReader(data), func(m *measurement.Measurement) error {
				n++
				if m.ProbeASN != "AS9198" || m.ProbeCC != "KZ" || m.ProbeNetworkName != "JSC Kazakhtelecom" {
					t.Errorf("%s: probe %s %s %q; want AS9198 KZ JSC Kazakhtelecom", m.Input, m.ProbeASN, m.ProbeCC, m.ProbeNetworkName)
				}
				if m.Annotations["vantage_method"] != "mmdb" {
					t.Errorf("%s: vantage_method %q; want mmdb", m.Input, m.Annotations["vantage_method"])
				}
				if m.ResolverASN != "AS48716" || m.ResolverNetworkName != "PS Internet Company LLP" {
					t.Errorf("%s: resolver %s %q; want AS48716", m.Input, m.ResolverASN, m.ResolverNetworkName)
				}
				wantIP := "127.0.0.1"
				if includeIP {
					wantIP = client.String()
				}
				if m.ProbeIP != wantIP {
					t.Errorf("%s: probe_ip %q; want %q", m.Input, m.ProbeIP, wantIP)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if n != len(l.Scenario.Sites) {
				t.Errorf("%d records; want %d", n, len(l.Scenario.Sites))
			}
			leaked := bytes.Contains(data, []byte(client.String())) || strings.Contains(printed, client.String())
			if leaked != includeIP {
				t.Errorf("client address %s in the output: %v; want %v", client, leaked, includeIP)
			}
		})
	}
}
