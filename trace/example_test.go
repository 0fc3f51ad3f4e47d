package trace_test

import (
	"fmt"

	"kzprobe/measurement"
	"kzprobe/probe/chain"
	"kzprobe/trace"
)

// Interpret reads a finding from a record's traces, here one that met a
// transparent interceptor two hops away from a destination four hops
// away, which let the control SNI through with the genuine chain.
func ExampleInterpret() {
	r2 := &measurement.TraceHop{Class: measurement.HopPublic, Prefix: "198.51.100.0/24", ASN: "AS64501", CC: "KZ"}
	tk := measurement.TraceTestKeys{
		TCPTraceroute: []measurement.TraceProbe{
			{TTL: 1, Answer: measurement.AnswerRouter, Hop: &measurement.TraceHop{Class: measurement.HopPrivate}},
			{TTL: 2, Answer: measurement.AnswerDestination, Connected: true},
		},
		UDPTraceroute: []measurement.TraceProbe{
			{TTL: 1, Answer: measurement.AnswerRouter},
			{TTL: 2, Answer: measurement.AnswerRouter, Hop: r2},
			{TTL: 3, Answer: measurement.AnswerRouter},
			{TTL: 4, Answer: measurement.AnswerDestination},
		},
		TargetTrace: []measurement.TLSIteration{
			{TTL: 1, Answer: measurement.AnswerRouter},
			{TTL: 2, Answer: measurement.AnswerServer, Chain: &chain.Judgement{Interception: &chain.Interception{Evidence: "signature"}}},
		},
		ControlTrace: []measurement.TLSIteration{
			{TTL: 1, Answer: measurement.AnswerRouter},
			{TTL: 2, Answer: measurement.AnswerServer, Chain: &chain.Judgement{Trusted: true}},
		},
	}
	f := trace.Interpret(&tk)
	fmt.Println(f.Interference, *f.InterferenceHop, *f.TransparentProxy, f.AnsweringHop.ASN)
	fmt.Println(f.Summary)
	// Output:
	// interception 2 true AS64501
	// The target SNI was answered with an interception chain at hop 2 (198.51.100.0/24 AS64501 KZ). TCP was answered at hop 2, before the destination at hop 4: a transparent proxy. The same box answered the control SNI with a trusted chain: it lets other names through.
}
