package control

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"kzprobe/dnsx"
	"kzprobe/probe"
	"kzprobe/probe/chain"
	"kzprobe/probe/guard"
)

// fuzzLimits admit one documentation range, so that both refusals and
// admissions of special addresses are reachable.
func fuzzLimits() checkLimits {
	ports := []int{443, 8443}
	return checkLimits{maxAddresses: 4, ports: ports,
		policy: newAddressPolicy([]netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}, ports)}
}

// offlineServer is a Server that sends nothing anywhere: its guard allows
// only 127.0.0.1, which its own policy refuses, and its resolver is
// outside the guard, so every DNS query and connect fails at once.
func offlineServer(t testing.TB) *Server {
	t.Helper()
	dial := guard.New(netip.MustParsePrefix("127.0.0.1/32")).Dialer(nil)
	s, err := NewServer(ServerConfig{
		Resolver: &probe.DNSResolver{Exchanger: dnsx.NewDNSExchanger("192.0.2.1:53", dial), Retries: -1},
		Dial:     dial,
		Analyzer: chain.NewAnalyzer(nil, nil),
		Admit:    fuzzLimits().policy.admit,
		Ports:    fuzzLimits().ports,
		Rate:     -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestParseCheckRequest is the table of request bodies and what parsing
// makes of them; fuzzing crashes become cases here.
func TestParseCheckRequest(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		wantCode string // "" means valid
		want     checkQuery
	}{
		{"minimal", `{"domain":"example.org"}`, "", checkQuery{domain: "example.org", port: 443, fingerprint: "chrome"}},
		{"full", `{"version":1,"domain":"Example.ORG.","port":8443,"addresses":["93.184.215.14","2606:2800:21f:cb07:6820:80da:af6b:8b2c","93.184.215.14"],"fingerprint":"Firefox"}`, "",
			checkQuery{domain: "example.org", port: 8443, fingerprint: "firefox", addresses: []netip.Addr{
				netip.MustParseAddr("93.184.215.14"), netip.MustParseAddr("2606:2800:21f:cb07:6820:80da:af6b:8b2c")}}},
		{"mapped address is unmapped", `{"domain":"example.org","addresses":["::ffff:93.184.215.14"]}`, "",
			checkQuery{domain: "example.org", port: 443, fingerprint: "chrome", addresses: []netip.Addr{netip.MustParseAddr("93.184.215.14")}}},
		{"admitted special range", `{"domain":"example.org","addresses":["198.51.100.7"]}`, "",
			checkQuery{domain: "example.org", port: 443, fingerprint: "chrome", addresses: []netip.Addr{netip.MustParseAddr("198.51.100.7")}}},
		{"null addresses", `{"domain":"example.org","addresses":null}`, "", checkQuery{domain: "example.org", port: 443, fingerprint: "chrome"}},
		{"empty", ``, ErrBadRequest, checkQuery{}},
		{"null", `null`, ErrBadRequest, checkQuery{}},
		{"trailing garbage", `{"domain":"example.org"} x`, ErrBadRequest, checkQuery{}},
		{"unicode domain", `{"domain":"пример.рф"}`, ErrBadRequest, checkQuery{}},
		{"domain with port", `{"domain":"example.org:443"}`, ErrBadRequest, checkQuery{}},
		{"domain with path", `{"domain":"example.org/x"}`, ErrBadRequest, checkQuery{}},
		{"IPv6 literal", `{"domain":"[::1]"}`, ErrBadRequest, checkQuery{}},
		{"negative port", `{"domain":"example.org","port":-1}`, ErrBadRequest, checkQuery{}},
		{"huge port", `{"domain":"example.org","port":1e10}`, ErrBadRequest, checkQuery{}},
		{"zone", `{"domain":"example.org","addresses":["fe80::1%eth0"]}`, ErrBadRequest, checkQuery{}},
		{"five addresses", `{"domain":"example.org","addresses":["1.1.1.1","1.1.1.2","1.1.1.3","1.1.1.4","1.1.1.5"]}`, ErrTooManyAddresses, checkQuery{}},
		{"fingerprint list", `{"domain":"example.org","fingerprint":"chrome,firefox"}`, ErrBadRequest, checkQuery{}},
		{"metadata service", `{"domain":"example.org","addresses":["169.254.169.254"]}`, ErrAddressNotAllowed, checkQuery{}},
		{"teredo to loopback", `{"domain":"example.org","addresses":["2001:0:4136:e378:8000:63bf:80ff:fffe"]}`, ErrAddressNotAllowed, checkQuery{}},
		{"port 80", `{"domain":"example.org","port":80}`, ErrPortNotAllowed, checkQuery{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseCheckRequest(strings.NewReader(tc.body), fuzzLimits())
			if tc.wantCode != "" {
				if err == nil || err.code != tc.wantCode {
					t.Fatalf("got %+v, %v; want error %s", got, err, tc.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("error %v; want %+v", err, tc.want)
			}
			if got.domain != tc.want.domain || got.port != tc.want.port || got.fingerprint != tc.want.fingerprint || !slices.Equal(got.addresses, tc.want.addresses) {
				t.Errorf("got %+v; want %+v", got, tc.want)
			}
		})
	}
}

// TestAddressPolicy checks the special-range refusal, --allow-net's
// admission, and the IPv6 forms that embed an IPv4 address: NAT64, 6to4
// and Teredo lead to it, IPv4-compatible (::a.b.c.d) and IPv4-translated
// (::ffff:0:a.b.c.d) addresses are never a site's and are refused
// outright, as the IPv4-mapped form of a refused address is.
func TestAddressPolicy(t *testing.T) {
	lab := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	compat := []netip.Prefix{netip.MustParsePrefix("::/96"), netip.MustParsePrefix("::ffff:0:0:0/96")}
	tests := []struct {
		addr  string
		admit []netip.Prefix
		want  bool
	}{
		{"93.184.215.14", nil, true},
		{"2606:2800:21f:cb07:6820:80da:af6b:8b2c", nil, true},
		{"64:ff9b::5db8:d70e", nil, true},
		{"2002:5db8:d70e::1", nil, true},
		{"::ffff:93.184.215.14", nil, true},
		{"127.0.0.1", nil, false},
		{"10.0.0.1", nil, false},
		{"100.64.1.1", nil, false},
		{"169.254.169.254", nil, false},
		{"::1", nil, false},
		{"::", nil, false},
		{"fd00::1", nil, false},
		{"ff02::1", nil, false},
		{"64:ff9b::a00:1", nil, false},
		{"64:ff9b:1::5db8:d70e", nil, false},
		{"2002:a00:1::1", nil, false},
		{"::ffff:10.0.0.1", nil, false},
		{"::ffff:127.0.0.1", nil, false},
		{"2001:0:4136:e378:8000:63bf:80ff:fffe", nil, false},
		// IPv4-compatible and IPv4-translated: refused whatever they embed.
		{"::127.0.0.1", nil, false},
		{"::10.0.0.1", nil, false},
		{"::93.184.215.14", nil, false},
		{"::ffff:0:10.0.0.1", nil, false},
		{"::ffff:0:127.0.0.1", nil, false},
		{"::ffff:0:93.184.215.14", nil, false},
		// The lab admits its loopback ranges: the mapped form follows,
		// the compatible and translated forms do not.
		{"127.0.0.1", lab, true},
		{"::ffff:127.0.0.1", lab, true},
		{"::1", lab, true},
		{"::127.0.0.1", lab, false},
		{"::ffff:0:127.0.0.1", lab, false},
		// Admitted by name, they still lead to what they embed.
		{"::93.184.215.14", compat, true},
		{"::ffff:0:93.184.215.14", compat, true},
		{"::127.0.0.1", compat, false},
		{"::ffff:0:10.0.0.1", compat, false},
	}
	for _, tc := range tests {
		name := tc.addr
		if tc.admit != nil {
			name += " admitting " + fmt.Sprint(tc.admit)
		}
		t.Run(name, func(t *testing.T) {
			p := newAddressPolicy(tc.admit, []int{443})
			if got := p.allowed(netip.MustParseAddr(tc.addr)); got != tc.want {
				t.Errorf("allowed = %v; want %v", got, tc.want)
			}
		})
	}
}

// documentedStatus is every status ServeHTTP may give a POST to /v1/check
// from a client under no rate limit, without a token configured.
var documentedStatus = map[int]bool{200: true, 400: true, 403: true, 413: true, 503: true}

// FuzzCheckRequest feeds arbitrary bodies to the parser and to the whole
// handler: no panic, every refusal a documented status with a JSON error,
// every accepted request within the limits and stable under re-encoding.
func FuzzCheckRequest(f *testing.F) {
	for _, seed := range []string{
		`{"domain":"example.org"}`,
		`{"version":1,"domain":"example.org","port":443,"addresses":["93.184.215.14","::1"],"fingerprint":"chrome"}`,
		`{"domain":"example.org","addresses":["198.51.100.1","198.51.100.1","::ffff:198.51.100.2"]}`,
		`{"domain":"xn--e1afmkfd.xn--p1ai","port":8443,"fingerprint":"GOLANG"}`,
		`{"domain":"a.b","addresses":["64:ff9b::7f00:1"]}`,
		`{"domain":"a.b","addresses":["::127.0.0.1","::ffff:0:198.51.100.3","::198.51.100.4"]}`,
		`{"domain":"example.org."}{}`,
		`{"domain":"` + strings.Repeat("a.", 130) + `org"}`,
		`[1,2,3]`, `"x"`, `{"port":1e400}`, ``, `{"domain":"\u0000.org"}`,
	} {
		f.Add([]byte(seed))
	}
	lim := fuzzLimits()
	srv := offlineServer(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		q, aerr := parseCheckRequest(bytes.NewReader(body), lim)
		if aerr != nil {
			if !documentedStatus[aerr.status] || aerr.status == 200 || aerr.code == "" || aerr.message == "" {
				t.Fatalf("refusal %+v is not documented", aerr)
			}
		} else {
			if len(q.addresses) > lim.maxAddresses || !slices.Contains(lim.ports, q.port) {
				t.Fatalf("accepted %+v beyond the limits", q)
			}
			for i, a := range q.addresses {
				if !lim.policy.allowed(a) || a.Is4In6() || slices.Index(q.addresses, a) != i {
					t.Fatalf("accepted address %v (of %v)", a, q.addresses)
				}
			}
			if d, err := canonicalDomain(q.domain); err != nil || d != q.domain {
				t.Fatalf("accepted domain %q is not canonical: %q, %v", q.domain, d, err)
			}
			// Re-encoding what was understood gives the same request.
			again := CheckRequest{Domain: q.domain, Port: q.port, Fingerprint: q.fingerprint}
			for _, a := range q.addresses {
				again.Addresses = append(again.Addresses, a.String())
			}
			q2, err := parseCheckRequest(bytes.NewReader(encodeCheckRequest(again)), lim)
			if err != nil || q2.domain != q.domain || q2.port != q.port || q2.fingerprint != q.fingerprint || !slices.Equal(q2.addresses, q.addresses) {
				t.Fatalf("re-encoded %+v parses as %+v, %v", q, q2, err)
			}
		}

		req := httptest.NewRequest(http.MethodPost, CheckPath, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		if !documentedStatus[w.Code] {
			t.Fatalf("status %d is not documented; body %q", w.Code, w.Body.Bytes())
		}
		if (aerr == nil) != (w.Code == 200) || (aerr != nil && aerr.status != w.Code) {
			t.Fatalf("handler status %d; parser said %v", w.Code, aerr)
		}
		if w.Code == 200 {
			var resp CheckResponse
			if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil || resp.Version != APIVersion || resp.Domain != q.domain {
				t.Fatalf("200 body %q: %v", w.Body.Bytes(), err)
			}
			if len(resp.Endpoints) != len(q.addresses) {
				t.Fatalf("%d endpoints for %d addresses offline", len(resp.Endpoints), len(q.addresses))
			}
			return
		}
		var e ErrorResponse
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error != aerr.code || e.Version != APIVersion {
			t.Fatalf("error body %q: %v", w.Body.Bytes(), err)
		}
	})
}
