package trace

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"fmt"
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
	asn, cc := cmp.Or(env.ProbeASN, "AS0"), cmp.Or(env.ProbeCC, "ZZ")
	ts := env.TestStartTime
	if ts.IsZero() {
		ts = r.Start
	}
	annotations := map[string]string{}
	for k, v := range env.Annotations {
		annotations[k] = v
	}
	if options == nil {
		options = []string{}
	}
	uid := make([]byte, 8)
	_, _ = rand.Read(uid) // never fails (Go 1.24+)
	return &measurement.Trace{
		Envelope: measurement.Envelope{
			DataFormatVersion:    measurement.DataFormatVersion,
			Input:                input,
			ReportID:             env.ReportID,
			MeasurementUID:       r.Start.UTC().Format("20060102150405.000000") + "_" + cc + "_" + testNameID + "_" + hex.EncodeToString(uid),
			MeasurementStartTime: measurement.FormatTime(r.Start),
			TestStartTime:        measurement.FormatTime(ts),
			TestName:             measurement.TraceTestName,
			TestVersion:          measurement.TraceTestVersion,
			SoftwareName:         measurement.SoftwareName,
			SoftwareVersion:      env.SoftwareVersion,
			ProbeASN:             asn,
			ProbeCC:              cc,
			ProbeNetworkName:     env.ProbeNetworkName,
			ProbeIP:              cmp.Or(env.ProbeIP, "127.0.0.1"),
			ResolverASN:          cmp.Or(env.ResolverASN, "AS0"),
			ResolverIP:           resolverIP,
			ResolverNetworkName:  env.ResolverNetworkName,
			TestRuntime:          r.Runtime,
			Options:              options,
			TestHelpers:          map[string]measurement.TestHelper{},
			Extensions:           measurement.TraceExtensions(),
			Annotations:          annotations,
		},
		TestKeys: r.TestKeys,
	}
}
