package trace

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"kzprobe/measurement"
	"kzprobe/probe/chain"
)

// Records for Interpret, built hop by hop: router(ttl) is a router's
// time exceeded, dest(ttl) the destination's answer, silent(ttl) nothing.
var (
	hopR2 = &measurement.TraceHop{Class: measurement.HopPublic, Prefix: "198.51.100.0/24", ASN: "AS64501"}
	hopR3 = &measurement.TraceHop{Class: measurement.HopPublic, Prefix: "203.0.113.0/24", ASN: "AS64502"}
	hopR1 = &measurement.TraceHop{Class: measurement.HopPrivate}
	hopC  = &measurement.TraceHop{Class: measurement.HopPublic, Prefix: "192.0.2.0/24", Destination: true}
)

func router(ttl int, h *measurement.TraceHop) measurement.TraceProbe {
	return measurement.TraceProbe{TTL: ttl, Attempts: 1, Answer: measurement.AnswerRouter, Hop: h}
}

func dest(ttl int) measurement.TraceProbe {
	return measurement.TraceProbe{TTL: ttl, Attempts: 1, Answer: measurement.AnswerDestination, Hop: hopC}
}

func silent(ttl int) measurement.TraceProbe {
	return measurement.TraceProbe{TTL: ttl, Attempts: 2, Answer: measurement.AnswerSilent}
}

// path is a UDP traceroute: r1, r2, r3, then the destination at hop 4.
func path() []measurement.TraceProbe {
	return []measurement.TraceProbe{router(1, hopR1), router(2, hopR2), router(3, hopR3), dest(4)}
}

func iter(ttl int, answer string, j *chain.Judgement) measurement.TLSIteration {
	return measurement.TLSIteration{TTL: ttl, Answer: answer, Chain: j, Handshake: &measurement.TLSHandshake{PeerCertificates: []measurement.BinaryData{{byte(ttl)}}}}
}

// withheldIter is a server's answer at hop 1 whose leaf the record
// withheld, kept as its SHA-256.
func withheldIter(j *chain.Judgement, sha256 string) measurement.TLSIteration {
	return measurement.TLSIteration{TTL: 1, Answer: measurement.AnswerServer, Chain: j, Handshake: &measurement.TLSHandshake{
		PeerCertificates:     []measurement.BinaryData{nil},
		WithheldCertificates: []measurement.WithheldCertificate{{Index: 0, Withheld: measurement.Withheld{Reason: measurement.WithheldProbeAddress, SHA256: sha256}}},
	}}
}

var (
	isca      = &chain.Judgement{Interception: &chain.Interception{Evidence: "signature"}}
	trusted   = &chain.Judgement{Trusted: true}
	untrusted = &chain.Judgement{}
)

// hops is an iterative trace: routers up to the answer at the last TTL.
func hops(last int, answer string, j *chain.Judgement) []measurement.TLSIteration {
	var out []measurement.TLSIteration
	for ttl := 1; ttl < last; ttl++ {
		out = append(out, measurement.TLSIteration{TTL: ttl, Answer: measurement.AnswerRouter})
	}
	return append(out, iter(last, answer, j))
}

func TestInterpret(t *testing.T) {
	tests := []struct {
		name string
		tk   measurement.TraceTestKeys
		want measurement.TraceFinding
	}{{
		name: "interception at hop 2 by a transparent proxy that splices the control",
		tk: measurement.TraceTestKeys{
			TCPTraceroute: []measurement.TraceProbe{router(1, hopR1), dest(2)},
			UDPTraceroute: path(),
			TargetTrace:   hops(2, measurement.AnswerServer, isca),
			ControlTrace:  hops(2, measurement.AnswerServer, trusted),
		},
		want: measurement.TraceFinding{
			DestinationHops: ptr(4), DestinationHopsFrom: "udp", TCPAnswerHop: ptr(2), TransparentProxy: ptr(true),
			TargetHop: ptr(2), TargetAnswer: "server", ControlHop: ptr(2), ControlAnswer: "server",
			Interference: measurement.InterferenceChain, InterferenceHop: ptr(2), ControlTravels: "same_hop", ControlTrusted: ptr(true),
			AnsweringHop: hopR2, BeforeHop: hopR1, SilentHops: []int{},
		},
	}, {
		name: "reset at hop 3, control further by a packet box",
		tk: measurement.TraceTestKeys{
			TCPTraceroute: []measurement.TraceProbe{router(1, hopR1), router(2, hopR2), router(3, hopR3), dest(4)},
			UDPTraceroute: path(),
			TargetTrace:   hops(3, measurement.AnswerReset, nil),
			ControlTrace:  hops(4, measurement.AnswerServer, trusted),
		},
		want: measurement.TraceFinding{
			DestinationHops: ptr(4), DestinationHopsFrom: "udp", TCPAnswerHop: ptr(4), TransparentProxy: ptr(false),
			TargetHop: ptr(3), TargetAnswer: "reset", ControlHop: ptr(4), ControlAnswer: "server",
			Interference: measurement.InterferenceReset, InterferenceHop: ptr(3), ControlTravels: "further", ControlTrusted: ptr(true),
			AnsweringHop: hopR3, BeforeHop: hopR2, SilentHops: []int{},
		},
	}, {
		name: "the real server, a silent hop on the way",
		tk: measurement.TraceTestKeys{
			TCPTraceroute: []measurement.TraceProbe{router(1, hopR1), silent(2), router(3, hopR3), dest(4)},
			UDPTraceroute: []measurement.TraceProbe{router(1, hopR1), silent(2), silent(3), dest(4)},
			TargetTrace:   []measurement.TLSIteration{{TTL: 1, Answer: "router"}, {TTL: 2, Answer: "silent"}, {TTL: 3, Answer: "silent"}, iter(4, "server", trusted)},
			ControlTrace:  []measurement.TLSIteration{{TTL: 1, Answer: "router"}, {TTL: 2, Answer: "silent"}, {TTL: 3, Answer: "silent"}, iter(4, "server", trusted)},
		},
		want: measurement.TraceFinding{
			DestinationHops: ptr(4), DestinationHopsFrom: "udp", TCPAnswerHop: ptr(4), TransparentProxy: ptr(false),
			TargetHop: ptr(4), TargetAnswer: "server", ControlHop: ptr(4), ControlAnswer: "server",
			Interference: measurement.InterferenceNone, ControlTravels: "same_hop", ControlTrusted: ptr(true),
			AnsweringHop: hopC, BeforeHop: hopR3, SilentHops: []int{2},
		},
	}, {
		name: "no UDP answer: the UDP probe that died past the TCP answer tells the proxy",
		tk: measurement.TraceTestKeys{
			TCPTraceroute: []measurement.TraceProbe{router(1, hopR1), dest(2)},
			UDPTraceroute: []measurement.TraceProbe{router(1, hopR1), router(2, hopR2), silent(3), silent(4)},
			TargetTrace:   hops(2, measurement.AnswerEOF, nil),
			ControlTrace:  hops(2, measurement.AnswerServer, trusted),
		},
		want: measurement.TraceFinding{
			DestinationHops: ptr(2), DestinationHopsFrom: "tcp", TCPAnswerHop: ptr(2), TransparentProxy: ptr(true),
			TargetHop: ptr(2), TargetAnswer: "eof", ControlHop: ptr(2), ControlAnswer: "server",
			Interference: measurement.InterferenceEOF, InterferenceHop: ptr(2), ControlTravels: "same_hop", ControlTrusted: ptr(true),
			AnsweringHop: hopR2, BeforeHop: hopR1, SilentHops: []int{},
		},
	}, {
		name: "both SNIs reset at the same hop: not told apart",
		tk: measurement.TraceTestKeys{
			TCPTraceroute: []measurement.TraceProbe{router(1, hopR1), dest(2)},
			TargetTrace:   hops(2, measurement.AnswerReset, nil),
			ControlTrace:  hops(2, measurement.AnswerReset, nil),
		},
		want: measurement.TraceFinding{
			DestinationHops: ptr(2), DestinationHopsFrom: "tcp", TCPAnswerHop: ptr(2),
			TargetHop: ptr(2), TargetAnswer: "reset", ControlHop: ptr(2), ControlAnswer: "reset",
			ControlTravels: "same_hop", BeforeHop: hopR1, SilentHops: []int{},
		},
	}, {
		name: "untrusted chain where the control's is trusted is interception",
		tk: measurement.TraceTestKeys{
			TCPTraceroute: []measurement.TraceProbe{dest(1)},
			TargetTrace:   hops(1, measurement.AnswerServer, untrusted),
			ControlTrace: []measurement.TLSIteration{{TTL: 1, Answer: "server", Chain: trusted,
				Handshake: &measurement.TLSHandshake{PeerCertificates: []measurement.BinaryData{{0xee}}}}},
		},
		want: measurement.TraceFinding{
			DestinationHops: ptr(1), DestinationHopsFrom: "tcp", TCPAnswerHop: ptr(1),
			TargetHop: ptr(1), TargetAnswer: "server", ControlHop: ptr(1), ControlAnswer: "server",
			Interference: measurement.InterferenceChain, InterferenceHop: ptr(1), ControlTravels: "same_hop", ControlTrusted: ptr(true),
			SilentHops: []int{},
		},
	}, {
		// Both leaves withheld from the record (they held the probe's
		// address): told apart by the SHA-256 kept of each.
		name: "untrusted withheld leaf, another withheld leaf trusted by the control",
		tk: measurement.TraceTestKeys{
			TCPTraceroute: []measurement.TraceProbe{dest(1)},
			TargetTrace:   []measurement.TLSIteration{withheldIter(untrusted, "aa")},
			ControlTrace:  []measurement.TLSIteration{withheldIter(trusted, "bb")},
		},
		want: measurement.TraceFinding{
			DestinationHops: ptr(1), DestinationHopsFrom: "tcp", TCPAnswerHop: ptr(1),
			TargetHop: ptr(1), TargetAnswer: "server", ControlHop: ptr(1), ControlAnswer: "server",
			Interference: measurement.InterferenceChain, InterferenceHop: ptr(1), ControlTravels: "same_hop", ControlTrusted: ptr(true),
			SilentHops: []int{},
		},
	}, {
		name: "the same withheld leaf, trusted by the control only: not told",
		tk: measurement.TraceTestKeys{
			TCPTraceroute: []measurement.TraceProbe{dest(1)},
			TargetTrace:   []measurement.TLSIteration{withheldIter(untrusted, "aa")},
			ControlTrace:  []measurement.TLSIteration{withheldIter(trusted, "aa")},
		},
		want: measurement.TraceFinding{
			DestinationHops: ptr(1), DestinationHopsFrom: "tcp", TCPAnswerHop: ptr(1),
			TargetHop: ptr(1), TargetAnswer: "server", ControlHop: ptr(1), ControlAnswer: "server",
			ControlTravels: "same_hop", ControlTrusted: ptr(true), SilentHops: []int{},
		},
	}, {
		name: "nothing answered the hello: a black hole",
		tk: measurement.TraceTestKeys{
			TCPTraceroute: []measurement.TraceProbe{router(1, hopR1), dest(2)},
			TargetTrace:   []measurement.TLSIteration{{TTL: 1, Answer: "router"}, {TTL: 2, Answer: "silent"}},
			ControlTrace:  hops(2, measurement.AnswerServer, trusted),
		},
		want: measurement.TraceFinding{
			DestinationHops: ptr(2), DestinationHopsFrom: "tcp", TCPAnswerHop: ptr(2),
			ControlHop: ptr(2), ControlAnswer: "server", ControlTrusted: ptr(true), SilentHops: []int{},
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Interpret(&tc.tk)
			if got.Summary == "" {
				t.Error("no summary")
			}
			got.Summary = ""
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("finding (-want +got):\n%s", d)
			}
		})
	}
}

// TestSummaryCountsHops: the summary counts hops in agreement ("1 hop",
// "4 hops"), as a volunteer reads it.
func TestSummaryCountsHops(t *testing.T) {
	for _, tc := range []struct {
		hops int
		want string
	}{{1, "The destination is 1 hop away."}, {4, "The destination is 4 hops away."}} {
		f := measurement.TraceFinding{TargetHop: ptr(tc.hops), TargetAnswer: "server", Interference: measurement.InterferenceNone, DestinationHops: ptr(tc.hops)}
		if got := summary(&f); !strings.Contains(got, tc.want) {
			t.Errorf("%d hops: %q; want %q in it", tc.hops, got, tc.want)
		}
	}
}
