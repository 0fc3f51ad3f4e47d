package dnsx_test

import (
	"errors"
	"testing"

	"github.com/miekg/dns"

	"kzprobe/dnsx"
	"kzprobe/probe"
	"kzprobe/probe/failure"
)

func pack(t testing.TB, m *dns.Msg) []byte {
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDNSCheckResponse(t *testing.T) {
	t.Parallel()
	q := probe.NewQuery("c.example.test", dns.TypeA)
	reply := func(f func(m *dns.Msg)) []byte {
		m := new(dns.Msg).SetReply(q)
		f(m)
		return pack(t, m)
	}
	tests := []struct {
		name string
		raw  []byte
		want string // "ok", "mismatch", or a failure string
	}{
		{"ok", reply(func(*dns.Msg) {}), "ok"},
		{"other id", reply(func(m *dns.Msg) { m.Id++ }), "mismatch"},
		{"not a response", reply(func(m *dns.Msg) { m.Response = false }), "mismatch"},
		{"other class", reply(func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassCHAOS }), "mismatch"},
		{"two questions", reply(func(m *dns.Msg) { m.Question = append(m.Question, m.Question[0]) }), "mismatch"},
		{"refused without question", reply(func(m *dns.Msg) { m.Rcode = dns.RcodeRefused; m.Question = nil }), "ok"},
		{"truncated without question", reply(func(m *dns.Msg) { m.Truncated = true; m.Question = nil }), "ok"},
		{"noerror without question", reply(func(m *dns.Msg) { m.Question = nil }), "mismatch"},
		{"short", []byte{1, 2, 3}, "mismatch"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := dnsx.CheckResponse(q, q.Id, tc.raw)
			got := "ok"
			switch {
			case errors.Is(err, dnsx.ErrDNSMismatch):
				got = "mismatch"
			case err != nil:
				got = failure.Classify(err)
			}
			if got != tc.want {
				t.Errorf("CheckResponse = %s (%v); want %s", got, err, tc.want)
			}
		})
	}
}
