package analysis_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"kzprobe/analysis"
	"kzprobe/analysis/analysistest"
)

var (
	benchData   = flag.String("benchdata", "", "TestWriteBenchJSONL writes generated OONI-style JSONL to this file")
	benchSize   = flag.String("benchsize", "1GB", "size of the -benchdata file (e.g. 50MB, 1GB)")
	benchDecode = flag.String("benchdecode", "", "TestDecodeBenchJSONL decodes this file with a plain json.Decoder (the baseline)")
)

// realTemplates returns the real OONI measurements of testdata/ooni.
func realTemplates(tb testing.TB) [][]byte {
	tb.Helper()
	paths, _ := filepath.Glob(filepath.Join(testdata, "ooni", "*.json"))
	var out [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		tb.Fatal("no OONI templates in testdata/ooni")
	}
	return out
}

var (
	benchOnce  sync.Once
	benchBytes []byte
)

// benchJSONL is ~50 MB of OONI-style JSONL: the real measurements of
// testdata/ooni (Italy, Iran) and 30% intercepted KZ measurements through
// 500 distinct chains, over 60 networks and thousands of domains.
func benchJSONL(b *testing.B) []byte {
	benchOnce.Do(func() {
		var buf bytes.Buffer
		g := &analysistest.Generator{Templates: realTemplates(b), Seed: 1}
		if _, err := g.Write(&buf, 50<<20); err != nil {
			b.Fatal(err)
		}
		benchBytes = buf.Bytes()
	})
	return benchBytes
}

// BenchmarkAnalyzeJSONL reads, judges and tabulates the data as `kzprobe
// analyze` does, with a fresh cache per run ("cache") and with none.
// Compare MB/s with BenchmarkDecodeBaseline.
func BenchmarkAnalyzeJSONL(b *testing.B) {
	data := benchJSONL(b)
	p, err := analysistest.NewReportPKI()
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		size int
	}{{"cache", 0}, {"nocache", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			var res *analysis.Result
			cpu0 := cpuTime()
			for b.Loop() {
				j := fixtureJudge(b, p)
				j.Size = bc.size
				a := analysis.New(analysis.Config{Judge: j})
				rd := &analysis.Reader{Warn: a.Warn}
				st, err := rd.Read("bench", bytes.NewReader(data), func(r *analysis.Record) error { a.Add(r); return nil })
				if err != nil || st.Bad > 0 {
					b.Fatalf("err %v, %d bad lines", err, st.Bad)
				}
				res = a.Result()
			}
			reportCPU(b, cpu0, len(data))
			b.ReportMetric(float64(res.Summary.Measurements), "records/op")
			b.ReportMetric(float64(res.Summary.ChainsJudged), "judged/op")
		})
	}
}

// BenchmarkDecodeBaseline is plain JSON decoding of the same bytes with a
// json.Decoder: into an interface (every field materialised, "any"), and
// into an empty struct (the bare scan, "skip").
func BenchmarkDecodeBaseline(b *testing.B) {
	data := benchJSONL(b)
	for _, bc := range []struct {
		name string
		v    func() any
	}{
		{"any", func() any { var v any; return &v }},
		{"skip", func() any { return &struct{}{} }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				dec := json.NewDecoder(bytes.NewReader(data))
				for {
					if err := dec.Decode(bc.v()); err != nil {
						if errors.Is(err, io.EOF) {
							break
						}
						b.Fatal(err)
					}
				}
			}
			reportCPU(b, cpu0, len(data))
		})
	}
}

// reportCPU reports the throughput per CPU second ("cpu-MB/s"), which the
// load of a shared machine does not skew as it skews MB/s (per wall
// second). The CPU time includes the garbage collector's, on any core.
func reportCPU(b *testing.B, cpu0 time.Duration, size int) {
	if cpu0 == 0 {
		return
	}
	if d := cpuTime() - cpu0; d > 0 {
		b.ReportMetric(float64(size)*float64(b.N)/1e6/d.Seconds(), "cpu-MB/s")
	}
}

// TestWriteBenchJSONL writes -benchsize of generated OONI-style JSONL to
// -benchdata, for scripts/bench-analyze.sh; skipped without -benchdata.
// With -benchdata it also times the plain json.Decoder baseline over the
// file and prints it.
func TestWriteBenchJSONL(t *testing.T) {
	if *benchData == "" {
		t.Skip("no -benchdata file given")
	}
	size, err := parseSize(*benchSize)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(*benchData)
	if err != nil {
		t.Fatal(err)
	}
	g := &analysistest.Generator{Templates: realTemplates(t), Seed: 1}
	lines, err := g.Write(f, size)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(*benchData)
	t.Logf("wrote %s: %d lines, %d bytes", *benchData, lines, fi.Size())
}

// TestDecodeBenchJSONL is the baseline of scripts/bench-analyze.sh: plain
// json.Decoder decoding of every value of -benchdecode into an interface,
// run under /usr/bin/time like `kzprobe analyze`; skipped without the flag.
func TestDecodeBenchJSONL(t *testing.T) {
	if *benchDecode == "" {
		t.Skip("no -benchdecode file given")
	}
	in, err := os.Open(*benchDecode)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	start := time.Now()
	dec := json.NewDecoder(in)
	n := 0
	for {
		var v any
		if err := dec.Decode(&v); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatal(err)
		}
		n++
	}
	el := time.Since(start)
	fi, _ := in.Stat()
	t.Logf("baseline json.Decoder into any: %d values in %v, %.1f MB/s (wall)", n, el.Round(time.Millisecond), float64(fi.Size())/1e6/el.Seconds())
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	u := strings.ToUpper(s)
	for _, x := range []struct {
		suf string
		m   int64
	}{{"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}} {
		if strings.HasSuffix(u, x.suf) {
			mult, u = x.m, strings.TrimSuffix(u, x.suf)
			break
		}
	}
	n, err := strconv.ParseInt(u, 10, 64)
	return n * mult, err
}
