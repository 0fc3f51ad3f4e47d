package probe

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"kzprobe/measurement"
	"kzprobe/probe/failure"
)

// answered is a successful query record with the given addresses.
func answered(qtype string, ips ...string) measurement.DNSQuery {
	q := measurement.DNSQuery{QueryType: qtype, Rcode: new(int)}
	for _, ip := range ips {
		a := netip.MustParseAddr(ip)
		if a.Is4() {
			q.Answers = append(q.Answers, measurement.DNSAnswer{AnswerType: "A", IPv4: ip, TTL: 60})
		} else {
			q.Answers = append(q.Answers, measurement.DNSAnswer{AnswerType: "AAAA", IPv6: ip, TTL: 60})
		}
	}
	if len(ips) == 0 {
		q.Failure = failure.Ptr(failure.DNSNoAnswer)
	}
	return q
}

// failed is a query record that failed with f.
func failed(qtype, f string) measurement.DNSQuery {
	return measurement.DNSQuery{QueryType: qtype, Failure: failure.Ptr(f)}
}

func both(a, aaaa measurement.DNSQuery) []measurement.DNSQuery {
	return []measurement.DNSQuery{a, aaaa}
}

func TestConsistency(t *testing.T) {
	t.Parallel()
	nx := both(failed("A", failure.DNSNXDOMAIN), failed("AAAA", failure.DNSNXDOMAIN))
	timeout := both(failed("A", failure.GenericTimeout), failed("AAAA", failure.GenericTimeout))
	public := both(answered("A", "93.184.215.14"), answered("AAAA", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"))
	tests := []struct {
		name           string
		opts           ConsistencyOptions
		local, control []measurement.DNSQuery
		status         measurement.ConsistencyStatus
		reason         string
		bogons         []string
	}{
		{"intersection", ConsistencyOptions{}, both(answered("A", "93.184.215.14", "93.184.215.15"), answered("AAAA")), public, measurement.Consistent, measurement.ReasonIntersection, nil},
		{"intersection in IPv6 only", ConsistencyOptions{}, both(answered("A", "93.184.216.34"), answered("AAAA", "2606:2800:21f:cb07:6820:80da:af6b:8b2c")), public, measurement.Consistent, measurement.ReasonIntersection, nil},
		{"no intersection", ConsistencyOptions{}, both(answered("A", "95.59.170.1"), answered("AAAA")), public, measurement.Inconsistent, measurement.ReasonNoIntersection, nil},
		{"bogon private block page", ConsistencyOptions{}, both(answered("A", "10.10.34.34"), answered("AAAA")), public, measurement.Inconsistent, measurement.ReasonBogon, []string{"10.10.34.34"}},
		{"bogon even when the control agrees", ConsistencyOptions{}, both(answered("A", "127.0.0.1"), answered("AAAA")), both(answered("A", "127.0.0.1"), answered("AAAA")), measurement.Inconsistent, measurement.ReasonBogon, []string{"127.0.0.1"}},
		{"bogon among public answers", ConsistencyOptions{}, both(answered("A", "93.184.215.14", "0.0.0.0"), answered("AAAA", "::1")), public, measurement.Inconsistent, measurement.ReasonBogon, []string{"0.0.0.0", "::1"}},
		{"loopback exempt in the lab", ConsistencyOptions{Exempt: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, both(answered("A", "127.0.0.10"), answered("AAAA")), both(answered("A", "127.0.0.10"), answered("AAAA")), measurement.Consistent, measurement.ReasonIntersection, nil},
		{"exemption is only what is exempt", ConsistencyOptions{Exempt: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, both(answered("A", "10.10.34.34"), answered("AAAA")), public, measurement.Inconsistent, measurement.ReasonBogon, []string{"10.10.34.34"}},
		{"custom empty bogon list", ConsistencyOptions{Bogons: []netip.Prefix{}}, both(answered("A", "10.10.34.34"), answered("AAAA")), both(answered("A", "10.10.34.34"), answered("AAAA")), measurement.Consistent, measurement.ReasonIntersection, nil},
		{"local nxdomain", ConsistencyOptions{}, nx, public, measurement.Inconsistent, measurement.ReasonLocalNXDOMAIN, nil},
		{"local nxdomain for A only", ConsistencyOptions{}, both(failed("A", failure.DNSNXDOMAIN), failed("AAAA", failure.GenericTimeout)), public, measurement.Inconsistent, measurement.ReasonLocalNXDOMAIN, nil},
		{"local empty answer", ConsistencyOptions{}, both(answered("A"), answered("AAAA")), public, measurement.Inconsistent, measurement.ReasonLocalNoAnswer, nil},
		{"local timeout", ConsistencyOptions{}, timeout, public, measurement.Unknown, measurement.ReasonLocalFailed, nil},
		{"local servfail", ConsistencyOptions{}, both(failed("A", failure.DNSServfail), answered("AAAA")), public, measurement.Unknown, measurement.ReasonLocalFailed, nil},
		{"same failure nxdomain", ConsistencyOptions{}, nx, nx, measurement.Consistent, measurement.ReasonSameFailure, nil},
		{"same failure no answer", ConsistencyOptions{}, both(answered("A"), answered("AAAA")), both(answered("A"), answered("AAAA")), measurement.Consistent, measurement.ReasonSameFailure, nil},
		{"both failed differently", ConsistencyOptions{}, nx, timeout, measurement.Unknown, measurement.ReasonBothFailed, nil},
		{"same failure servfail", ConsistencyOptions{}, both(failed("A", failure.DNSServfail), failed("AAAA", failure.DNSServfail)),
			both(failed("A", failure.DNSServfail), failed("AAAA", failure.DNSServfail)), measurement.Consistent, measurement.ReasonSameFailure, nil},
		// Two transport failures are no answer about the name: with no
		// network at all, both sides fail alike and that said consistent,
		// same_failure.
		{"both time out", ConsistencyOptions{}, timeout, timeout, measurement.Unknown, measurement.ReasonBothFailed, nil},
		{"no network at all", ConsistencyOptions{}, both(failed("A", failure.NetworkUnreachable), failed("AAAA", failure.NetworkUnreachable)),
			both(failed("A", failure.NetworkUnreachable), failed("AAAA", failure.NetworkUnreachable)), measurement.Unknown, measurement.ReasonBothFailed, nil},
		{"both refused", ConsistencyOptions{}, both(failed("A", failure.ConnectionRefused), failed("AAAA", failure.ConnectionRefused)),
			both(failed("A", failure.ConnectionRefused), failed("AAAA", failure.ConnectionRefused)), measurement.Unknown, measurement.ReasonBothFailed, nil},
		{"control failed", ConsistencyOptions{}, public, timeout, measurement.Unknown, measurement.ReasonControlFailed, nil},
		{"control nxdomain, local answers", ConsistencyOptions{}, public, nx, measurement.Unknown, measurement.ReasonControlFailed, nil},
		{"families differ", ConsistencyOptions{}, both(answered("A", "93.184.215.14"), answered("AAAA")), both(failed("A", failure.GenericTimeout), answered("AAAA", "2606:2800:21f:cb07:6820:80da:af6b:8b2c")), measurement.Unknown, measurement.ReasonFamiliesDiffer, nil},
		{"hook upgrades no intersection", ConsistencyOptions{Checks: []ConsistencyCheck{
			{Reason: measurement.ReasonASNMatch, Match: func(l, c []netip.Addr) bool { return false }},
			{Reason: measurement.ReasonIPValidFromControl, Match: func(l, c []netip.Addr) bool { return len(l) == 1 && l[0] == netip.MustParseAddr("95.59.170.1") }},
		}}, both(answered("A", "95.59.170.1"), answered("AAAA")), public, measurement.Consistent, measurement.ReasonIPValidFromControl, nil},
		{"hook never sees bogons", ConsistencyOptions{Checks: []ConsistencyCheck{
			{Reason: measurement.ReasonASNMatch, Match: func(l, c []netip.Addr) bool { return true }},
		}}, both(answered("A", "192.168.1.1"), answered("AAAA")), public, measurement.Inconsistent, measurement.ReasonBogon, []string{"192.168.1.1"}},
		{"no queries at all", ConsistencyOptions{}, nil, nil, measurement.Unknown, measurement.ReasonBothFailed, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.opts.Check(tc.local, tc.control)
			if got.Status != tc.status || got.Reason != tc.reason {
				t.Errorf("got %s/%s; want %s/%s", got.Status, got.Reason, tc.status, tc.reason)
			}
			want := tc.bogons
			if want == nil {
				want = []string{}
			}
			if d := cmp.Diff(want, got.Bogons); d != "" {
				t.Errorf("bogons (-want +got):\n%s", d)
			}
		})
	}
}

func TestConsistencyRecordsAddrSets(t *testing.T) {
	t.Parallel()
	local := both(answered("A", "192.0.2.1", "192.0.2.1", "198.51.100.7"), answered("AAAA"))
	control := both(answered("A", "203.0.113.5"), answered("AAAA", "2001:db8::5"))
	got := ConsistencyOptions{Bogons: []netip.Prefix{}}.Check(local, control)
	want := &measurement.DNSConsistency{
		Status: measurement.Inconsistent, Reason: measurement.ReasonNoIntersection,
		LocalAddrs:   []string{"192.0.2.1", "198.51.100.7"},
		ControlAddrs: []string{"203.0.113.5", "2001:db8::5"},
		Bogons:       []string{},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if d := CheckConsistency(local, control); d.Reason != measurement.ReasonBogon {
		t.Errorf("with default bogons (192.0.2.0/24 is TEST-NET-1) reason %s; want bogon", d.Reason)
	}
}

func ExampleCheckConsistency() {
	local := []measurement.DNSQuery{{QueryType: "A", Answers: []measurement.DNSAnswer{{AnswerType: "A", IPv4: "10.10.34.34", TTL: 60}}}}
	control := []measurement.DNSQuery{{QueryType: "A", Answers: []measurement.DNSAnswer{{AnswerType: "A", IPv4: "93.184.215.14", TTL: 60}}}}
	c := CheckConsistency(local, control)
	fmt.Println(c.Status, c.Reason, c.Bogons)
	// Output: inconsistent bogon [10.10.34.34]
}
