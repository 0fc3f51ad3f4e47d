package bench

import (
	"bytes"
	"maps"
	"strings"
	"testing"
)

func TestCountVerdictLines(t *testing.T) {
	t.Parallel()
	long := `{"test_keys":{"chains":"` + strings.Repeat("x", 3<<20) + `","verdict":"mitm_isca"}}`
	tests := []struct {
		name     string
		in       string
		n        int
		verdicts map[string]int
	}{
		{"empty", "", 0, map[string]int{}},
		{"two", `{"verdict":"ok"}` + "\n" + `{"verdict":"down"}` + "\n", 2, map[string]int{"ok": 1, "down": 1}},
		{"last line cut", `{"verdict":"ok"}` + "\n" + `{"verdict":"ok"`, 2, map[string]int{"ok": 2}},
		{"no verdict", "{}\n" + `{"verdict":"error"}` + "\n", 2, map[string]int{"error": 1}},
		{"line over the buffer", long + "\n" + `{"verdict":"ok"}` + "\n", 2, map[string]int{"mitm_isca": 1, "ok": 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, v, err := countVerdictLines(strings.NewReader(tc.in))
			if err != nil || n != tc.n || !maps.Equal(v, tc.verdicts) {
				t.Errorf("countVerdictLines = %d, %v, %v; want %d, %v", n, v, err, tc.n, tc.verdicts)
			}
		})
	}
}

// FuzzCountVerdictLines compares the counter with a plain reading of the
// same bytes: lines split at '\n', the verdict the text after the first
// `"verdict":"` up to the next quote.
func FuzzCountVerdictLines(f *testing.F) {
	f.Add([]byte(`{"verdict":"ok"}` + "\n" + `{"verdict":"down"}`))
	f.Add([]byte("\n\n" + `"verdict":"` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, v, err := countVerdictLines(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		wantN, wantV := 0, map[string]int{}
		lines := bytes.SplitAfter(data, []byte("\n"))
		for _, line := range lines {
			if len(line) == 0 {
				continue
			}
			wantN++
			if _, after, ok := bytes.Cut(line, []byte(`"verdict":"`)); ok {
				if verdict, _, ok := bytes.Cut(after, []byte(`"`)); ok {
					wantV[string(verdict)]++
				}
			}
		}
		if n != wantN || !maps.Equal(v, wantV) {
			t.Fatalf("countVerdictLines = %d, %v; want %d, %v", n, v, wantN, wantV)
		}
	})
}
