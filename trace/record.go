package trace

import (
	"cmp"
	"crypto/rand"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"kzprobe/measurement"
	"kzprobe/probe"
)

// testNameID is the test name as OONI writes it inside IDs: without
// underscores.
var testNameID = strings.ReplaceAll(measurement.TraceTestName, "_", "")

// NewReportID returns a report ID for a trace run started at start from
// network asn ("AS<n>") in country cc, in the shape of OONI's (and of
// probe.NewReportID's) with this test's name:
// "20250601T120000Z_kzprobetrace_KZ_9198_n0_A6TXS7HOYQ3M2W4E".
func NewReportID(start time.Time, asn, cc string) string {
	n, err := strconv.ParseUint(strings.TrimPrefix(asn, "AS"), 10, 32)
	if err != nil {
		n = 0
	}
	return fmt.Sprintf("%s_%s_%s_%d_n0_%s", start.UTC().Format("20060102T150405Z"), testNameID, cmp.Or(cc, "ZZ"), n, rand.Text()[:16])
}

// Record wraps r in the envelope every kzprobe record has, with test_name
// kzprobe_trace: env describes the run and the vantage (as for `kzprobe
// run`), input is the target as given, options the trace's settings
// (Options). The probe's own address is written only if env.ProbeIP is
// set (--include-ip).
func (r *Result) Record(env probe.Envelope, input string, options []string, resolverIP string) *measurement.Trace {
	e := env.Record(measurement.TraceTestName, measurement.TraceTestVersion, r.Start)
	if env.Annotations != nil {
		e.Annotations = maps.Clone(env.Annotations) // the record's own
	}
	if options == nil {
		options = []string{}
	}
	e.Input, e.Options, e.ResolverIP, e.TestRuntime = input, options, resolverIP, r.Runtime
	e.TestHelpers = map[string]measurement.TestHelper{}
	e.Extensions = measurement.TraceExtensions()
	return &measurement.Trace{Envelope: e, TestKeys: r.TestKeys}
}
