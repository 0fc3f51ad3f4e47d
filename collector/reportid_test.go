package collector

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestSetReportID(t *testing.T) {
	tests := []struct {
		name, in, want string
		replaced       bool
	}{
		{"replaced", `{"a":1,"report_id":"x","b":2}`, `{"a":1,"report_id":"NEW","b":2}`, true},
		{"added", `{"a":1}`, `{"report_id":"NEW","a":1}`, false},
		{"added to an empty object", `{}`, `{"report_id":"NEW"}`, false},
		{"nested one left alone", `{"x":{"report_id":"y"}}`, `{"report_id":"NEW","x":{"report_id":"y"}}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, replaced, err := SetReportID([]byte(tc.in), "NEW")
			if err != nil || string(got) != tc.want || replaced != tc.replaced {
				t.Errorf("got %s, %v, %v; want %s, %v", got, replaced, err, tc.want, tc.replaced)
			}
		})
	}
	for _, bad := range []string{`[]`, `{"report_id":1}`, `{"report_id":"a","report_id":"b"}`, `{"report_id":`} {
		if _, _, err := SetReportID([]byte(bad), "NEW"); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func FuzzSetReportID(f *testing.F) {
	f.Add([]byte(`{"report_id":"a","x":1}`), "b")
	f.Add([]byte(`{"x":{"report_id":"y"}}`), "")
	f.Add([]byte(` { } `), "z")
	f.Fuzz(func(t *testing.T, line []byte, id string) {
		out, _, err := SetReportID(line, id)
		if err != nil {
			return
		}
		var before, after map[string]json.RawMessage
		if err := json.Unmarshal(line, &before); err != nil {
			t.Fatalf("replaced in %q, which does not parse: %v", line, err)
		}
		if err := json.Unmarshal(out, &after); err != nil {
			t.Fatalf("%s -> %s: %v", line, out, err)
		}
		var got string
		json.Unmarshal(after["report_id"], &got)
		if strings.ToValidUTF8(id, "\ufffd") == id && got != id {
			t.Fatalf("report_id %q; want %q", got, id)
		}
		delete(before, "report_id")
		delete(after, "report_id")
		if len(before) != len(after) {
			t.Fatalf("keys changed: %s -> %s", line, out)
		}
		for k, v := range before {
			if !bytes.Equal(v, after[k]) {
				t.Fatalf("key %s changed: %s -> %s", k, v, after[k])
			}
		}
	})
}
