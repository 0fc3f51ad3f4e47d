package analysis_test

import (
	"fmt"
	"os"
	"strings"

	"kzprobe/analysis"
	"kzprobe/analysis/render"
)

// Read measurements from any reader (here two JSONL lines, one corrupt),
// fold them into an Analysis and print one of the tables.
func ExampleAnalysis() {
	input := `{"input":"https://xakep.ru/","measurement_start_time":"2024-03-17 05:28:21","probe_asn":"AS44477","probe_network_name":"STARK INDUSTRIES SOLUTIONS LTD","test_name":"web_connectivity","test_keys":{"tls_handshakes":[]}}
{"input": "cut by a crash
`
	a := analysis.New(analysis.Config{})
	rd := &analysis.Reader{Warn: a.Warn}
	st, err := rd.Read("example.jsonl", strings.NewReader(input), func(r *analysis.Record) error {
		a.Add(r)
		return nil
	})
	if err != nil {
		panic(err)
	}
	a.AddFileStats(st)
	res := a.Result()
	render.Analysis(os.Stdout, res, render.FormatCSV, []string{render.TableNetworks})
	fmt.Println(res.Warnings[0])
	// Output:
	// asn,name,measurements,intercepted,first_intercepted,last_intercepted,intercepted_domains,intermediates
	// AS44477,STARK INDUSTRIES SOLUTIONS LTD,1,0,,,,
	// example.jsonl:2: invalid JSON at byte 10: unterminated string
}
