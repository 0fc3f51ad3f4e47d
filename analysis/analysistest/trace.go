package analysistest

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"

	"kzprobe/measurement"
)

// TraceSighting is one planned record of `kzprobe trace`: its finding
// only (the hop-by-hop observations are left empty).
type TraceSighting struct {
	// Time is the record's time, in measurement.TimeLayout, UTC.
	Time   string
	ASN    string
	Domain string
	// Interference is the finding's (measurement.Interference*), Hop
	// where; Dest the destination's distance by UDP.
	Interference string
	Hop, Dest    int
	// Prefix and BoxASN are the answering hop's; an empty Prefix is a
	// private hop.
	Prefix, BoxASN string
}

// FileTrace is the trace fixture's file, relative to the folder
// WriteTraceFixture writes into.
const FileTrace = "trace/2024-11.jsonl"

// TracePlan is traces beside the report fixture: AS9198 and AS206026
// intercepted by the same box (one prefix of AS64501: shared upstream),
// AS48716 by another box of the same AS, AS9198's second target reset by
// a box of AS64502, one target answered by its own server, and a trace
// repeated later (the row keeps the latest).
var TracePlan = []TraceSighting{
	{Time: "2024-11-18 11:00:00", ASN: "AS9198", Domain: "compromat.ru", Interference: measurement.InterferenceChain, Hop: 2, Dest: 7, Prefix: "198.51.100.0/24", BoxASN: "AS64501"},
	{Time: "2024-11-26 11:00:00", ASN: "AS9198", Domain: "compromat.ru", Interference: measurement.InterferenceChain, Hop: 3, Dest: 7, Prefix: "198.51.100.0/24", BoxASN: "AS64501"},
	{Time: "2024-11-18 11:01:00", ASN: "AS9198", Domain: "xakep.ru", Interference: measurement.InterferenceReset, Hop: 4, Dest: 9, Prefix: "203.0.113.0/24", BoxASN: "AS64502"},
	{Time: "2024-11-19 09:00:00", ASN: "AS206026", Domain: "ukraina.ru", Interference: measurement.InterferenceChain, Hop: 5, Dest: 8, Prefix: "198.51.100.0/24", BoxASN: "AS64501"},
	{Time: "2024-11-20 13:00:00", ASN: "AS48716", Domain: "rutracker.org", Interference: measurement.InterferenceChain, Hop: 3, Dest: 6, Prefix: "192.0.2.0/24", BoxASN: "AS64501"},
	{Time: "2024-11-20 13:01:00", ASN: "AS48716", Domain: "wikipedia.org", Interference: measurement.InterferenceNone, Hop: 0, Dest: 10},
}

// TraceMeasurement returns s as a record of `kzprobe trace`.
func TraceMeasurement(s TraceSighting) *measurement.Trace {
	t := utc(s.Time)
	intp := func(n int) *int {
		if n == 0 {
			return nil
		}
		return &n
	}
	yes := true
	f := measurement.TraceFinding{
		DestinationHops: intp(s.Dest), DestinationHopsFrom: "udp", TCPAnswerHop: intp(s.Dest),
		TargetHop: intp(s.Dest), TargetAnswer: measurement.AnswerServer, ControlHop: intp(s.Dest), ControlAnswer: measurement.AnswerServer,
		Interference: s.Interference, ControlTravels: "same_hop", ControlTrusted: &yes, SilentHops: []int{},
		Summary: "planned by analysistest",
	}
	if s.Interference != measurement.InterferenceNone {
		no := s.Hop == s.Dest
		proxy := !no
		f.TransparentProxy, f.TCPAnswerHop, f.TargetHop, f.InterferenceHop = &proxy, intp(s.Hop), intp(s.Hop), intp(s.Hop)
		f.ControlTravels = "further"
		if s.Interference != measurement.InterferenceChain {
			f.TargetAnswer = s.Interference
		}
		f.AnsweringHop = &measurement.TraceHop{Class: measurement.HopPublic, Prefix: s.Prefix, ASN: s.BoxASN, CC: "KZ"}
		if s.Prefix == "" {
			f.AnsweringHop = &measurement.TraceHop{Class: measurement.HopPrivate}
		}
		f.BeforeHop = &measurement.TraceHop{Class: measurement.HopPrivate}
		if s.Hop == 4 {
			f.SilentHops = []int{3}
		}
	}
	env := fixtureEnvelope("trace", measurement.TraceTestName, measurement.TraceTestVersion, s.ASN, s.Domain, t)
	env.DataFormatVersion, env.Extensions = "0.2.0", measurement.TraceExtensions()
	return &measurement.Trace{
		Envelope: env,
		TestKeys: measurement.TraceTestKeys{
			Domain: s.Domain, Address: "192.0.2.80:443", SNI: s.Domain, ControlSNI: "example.com", MaxHops: 24, HopTimeout: 2,
			Finding: f,
		},
	}
}

// WriteTraceFixture writes TracePlan as JSONL to FileTrace under dir.
func WriteTraceFixture(dir string) (string, error) {
	var b bytes.Buffer
	for _, s := range TracePlan {
		line, err := json.Marshal(TraceMeasurement(s))
		if err != nil {
			return "", err
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	path := filepath.Join(dir, filepath.FromSlash(FileTrace))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	return path, os.WriteFile(path, b.Bytes(), 0o644)
}
