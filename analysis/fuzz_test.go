package analysis_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kzprobe/analysis"
	"kzprobe/analysis/analysistest"
)

// fuzzRead reads data as a file and analyses and compares what it holds:
// nothing may panic, counts must add up, and memory is bounded by the
// line limit.
func fuzzRead(t *testing.T, data []byte, judge *analysis.Judge) {
	a := analysis.New(analysis.Config{Judge: judge, DeriveVerdicts: true})
	c := analysis.NewComparison(analysis.Config{Judge: judge, DeriveVerdicts: true})
	rd := &analysis.Reader{MaxLineBytes: 1 << 20, Warn: a.Warn}
	n := 0
	st, err := rd.Read("fuzz", bytes.NewReader(data), func(r *analysis.Record) error {
		n++
		if r.Time.IsZero() && r.MeasurementStartTime == "" && r.TestStartTime == "" {
			t.Errorf("record without a time got through: %+v", r)
		}
		a.Add(r)
		c.Add(r)
		return nil
	})
	if err != nil {
		t.Fatalf("Read returned %v; only callback errors may be returned", err)
	}
	if st.Records != n {
		t.Fatalf("stats say %d records; the callback saw %d", st.Records, n)
	}
	if !strings.HasSuffix(st.Format, "+gzip") && st.Format == analysis.FormatJSONL {
		if lines := bytes.Count(data, []byte("\n")) + 1; st.Records+st.Bad > lines {
			t.Fatalf("%d records + %d bad > %d lines", st.Records, st.Bad, lines)
		}
	}
	a.AddFileStats(st)
	res := a.Result()
	if res.Summary.Measurements != n {
		t.Fatalf("analysed %d of %d records", res.Summary.Measurements, n)
	}
	if _, err := json.Marshal(res); err != nil {
		t.Fatalf("result does not marshal: %v", err)
	}
	c.Matrix()
}

func fuzzSeeds(f *testing.F, files ...string) {
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// The seeds are whole measurements (tens of kilobytes), which makes the
// fuzzer's minimisation of each new input slow; bound it:
//
//	go test ./analysis -run '^$' -fuzz '^FuzzReadOONI$' -fuzztime 60s -fuzzminimizetime 100x

// FuzzReadOONI feeds OONI-shaped inputs (single documents, arrays, JSONL,
// gzip of each, corrupt and cut) to the reader and the analysis.
func FuzzReadOONI(f *testing.F) {
	fx, err := analysistest.WriteReportFixture(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	ooni, _ := filepath.Glob(filepath.Join("testdata", "ooni", "*.json"))
	fuzzSeeds(f, ooni...)
	fuzzSeeds(f, fx.Path(analysistest.FileOONI2021), fx.Path(analysistest.FileOONI2023), fx.Path(analysistest.FileOONIReport), fx.Path(analysistest.FileOONI2024))
	f.Add([]byte("[" + line1 + "," + line1[:50]))
	f.Add([]byte("{\n\"measurement_start_time\": \"2024-01-01 00:00:00\",\n\"test_keys\": {\"pings\": [{\"tls_handshake\": [{}]}]}\n}"))
	f.Add([]byte{0x1f, 0x8b, 0x08, 0x00})
	judge := fixtureJudge(f, fx.PKI)
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRead(t, data, judge) })
}

// FuzzReadJSONL feeds kzprobe JSONL (real records, then mangled) to the
// reader, the analysis and the comparison.
func FuzzReadJSONL(f *testing.F) {
	fx, err := analysistest.WriteReportFixture(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	fuzzSeeds(f, fx.Path(analysistest.FileKzprobe))
	f.Add([]byte(line1 + "\n" + line2 + "\n"))
	f.Add([]byte(line2 + "\r\n\r\n\xef\xbb\xbf" + line2))
	f.Add([]byte(`{"measurement_start_time":"2024-02-30 00:00:00"}` + "\n" + `{"test_start_time":"2024-01-01T00:00:00Z","probe_asn":"as0"}`))
	judge := fixtureJudge(f, fx.PKI)
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRead(t, data, judge) })
}

// FuzzNormalize: any time, ASN and input normalize without panicking, and
// an accepted time in the OONI layout prints back as given.
func FuzzNormalize(f *testing.F) {
	f.Add("2024-01-02 03:04:05", "AS9198", "https://user@Example.org:443/path?q#f")
	f.Add("2024-02-29T23:59:59Z", "9198", "[::1]:443")
	f.Add("0000-00-00 00:00:00", "", "")
	f.Fuzz(func(t *testing.T, ts, asn, input string) {
		r := &analysis.Record{MeasurementStartTime: ts, ProbeASN: asn, Input: input}
		if err := r.Normalize(); err != nil {
			return
		}
		if len(ts) == 19 && ts[10] == ' ' && r.Time.Format(time.DateTime) != ts {
			t.Errorf("%q parsed as %v", ts, r.Time)
		}
		if r.ProbeASN == "" {
			t.Error("empty ASN after Normalize")
		}
	})
}
