package analysis_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"kzprobe/analysis"
)

// TestAnalysisReadInterceptionChain: kzprobe's own finding, which compare
// shows, is test_keys.interception in records before format 0.2.0 and the
// finding of the chain test_keys.interception_chain names since; the fast
// decoder and encoding/json read both alike, and an index that names no
// finding makes the line bad.
func TestAnalysisReadInterceptionChain(t *testing.T) {
	const (
		head   = `{"input":"x.example","measurement_start_time":"2025-06-01 12:00:00","test_name":"kzprobe_tls_mitm","test_keys":{"domain":"x.example","verdict":"mitm_isca",`
		found  = `{"evidence":"signature","root_name":"Information Security Certification Authority","root_sha1":"c3c8","intermediates":[{"sha1":"ef16"}]}`
		chains = `"chains":[null,{"trusted":false,"interception":` + found + `}]`
	)
	for _, tc := range []struct {
		name     string
		line     string
		wantRoot string // "" when the line reads without a finding
		wantBad  string // a warning's text when the line is bad
	}{
		{"0.2.0", head + chains + `,"interception_chain":1}}`, "c3c8", ""},
		{"0.2.0, index before the chains", head + `"interception_chain":1,` + chains + `}}`, "c3c8", ""},
		{"0.2.0 without a finding", head + chains + `,"interception_chain":null}}`, "", ""},
		{"0.1.0", head + chains + `,"interception":` + found + `}}`, "c3c8", ""},
		{"index at a null chain", head + chains + `,"interception_chain":0}}`, "", "names no chain"},
		{"index past the chains", head + chains + `,"interception_chain":2}}`, "", "names no chain"},
		{"index without chains", head + `"interception_chain":0}}`, "", "names no chain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var warnings []string
			var root string
			rd := &analysis.Reader{Warn: func(w analysis.Warning) { warnings = append(warnings, w.String()) }}
			st, err := rd.Read("x.jsonl", strings.NewReader(tc.line+"\n"), func(r *analysis.Record) error {
				if in := r.TestKeys.Interception; in != nil {
					root = in.RootSHA1
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantBad != "" {
				if st.Bad != 1 || len(warnings) != 1 || !strings.Contains(warnings[0], tc.wantBad) {
					t.Errorf("bad %d, warnings %q; want the line bad, saying %q", st.Bad, warnings, tc.wantBad)
				}
			} else if st.Records != 1 || root != tc.wantRoot {
				t.Errorf("%d records (warnings %q), interception root %q; want 1 record, root %q", st.Records, warnings, root, tc.wantRoot)
			}
			var rec analysis.Record
			err = json.NewDecoder(bytes.NewReader([]byte(tc.line))).Decode(&rec)
			jsonRoot := ""
			if err == nil && rec.TestKeys.Interception != nil {
				jsonRoot = rec.TestKeys.Interception.RootSHA1
			}
			if (err != nil) != (tc.wantBad != "") || jsonRoot != tc.wantRoot {
				t.Errorf("encoding/json: root %q, error %v; want the fast decoder's reading", jsonRoot, err)
			}
		})
	}
}
