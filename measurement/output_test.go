package measurement

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
)

func sampleMeasurement(domain string) *Measurement {
	f := "connection_reset"
	return &Measurement{
		Envelope: Envelope{Input: domain, TestName: TestName},
		TestKeys: TestKeys{
			Domain: domain,
			Port:   443,
			TLSHandshakes: []TLSHandshake{{
				Address: "127.0.0.1:443", ServerName: domain, Failure: &f,
				PeerCertificates: []BinaryData{[]byte("\x30\x82der")},
			}},
			Verdict: VerdictTLSBlocking,
		},
	}
}

// TestWriterLinesNeverInterleave writes from many goroutines and checks
// every line is one whole measurement.
func TestWriterLinesNeverInterleave(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, 0)
	var wg sync.WaitGroup
	const n = 200
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.Write(sampleMeasurement(fmt.Sprintf("d%d.example", i))); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	st, err := ReadJSONL(&buf, func(m *Measurement) error {
		seen[m.Input] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.Bad != 0 || len(seen) != n || w.Count() != n {
		t.Errorf("bad=%d distinct=%d count=%d; want 0, %d, %d", st.Bad, len(seen), w.Count(), n, n)
	}
}

type failingWriter struct{ after int }

func (f *failingWriter) Write(p []byte) (int, error) {
	if f.after <= 0 {
		return 0, errors.New("no space left on device")
	}
	f.after--
	return len(p), nil
}

func TestWriterStopsAfterError(t *testing.T) {
	w := NewWriter(&failingWriter{after: 1}, 0)
	if err := w.Write(sampleMeasurement("a.example")); err != nil {
		t.Fatalf("first write: %v", err)
	}
	err := w.Write(sampleMeasurement("b.example"))
	if err == nil || !strings.Contains(err.Error(), "no space left") {
		t.Fatalf("second write = %v; want the device error", err)
	}
	if err2 := w.Write(sampleMeasurement("c.example")); err2 == nil {
		t.Error("write after an error succeeded; want the same error")
	}
}

func TestBinaryDataJSON(t *testing.T) {
	in := BinaryData{0, 1, 2, 0xff}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"data":"AAEC/w==","format":"base64"}`; got != want {
		t.Errorf("got %s; want %s", got, want)
	}
	for _, enc := range []string{string(b), `"AAEC/w=="`} {
		var out BinaryData
		if err := json.Unmarshal([]byte(enc), &out); err != nil || !bytes.Equal(out, in) {
			t.Errorf("unmarshal %s = %v, %v; want %v", enc, out, err, in)
		}
	}
	var out BinaryData
	if err := json.Unmarshal([]byte(`{"data":"AA==","format":"hex"}`), &out); err == nil {
		t.Error("format hex accepted; want an error")
	}
}

// TestReadJSONLSkipsCutAndCorruptLines: a crash cuts the last line; a
// corrupt line in the middle is skipped and counted; nothing else is lost.
func TestReadJSONLSkipsCutAndCorruptLines(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, -1)
	for _, d := range []string{"a.example", "b.example"} {
		if err := w.Write(sampleMeasurement(d)); err != nil {
			t.Fatal(err)
		}
	}
	buf.WriteString("{not json}\n\n")
	if err := w.Write(sampleMeasurement("c.example")); err != nil {
		t.Fatal(err)
	}
	whole := buf.String()
	first, _, _ := strings.Cut(whole, "\n")
	cut := whole + first[:len(first)/2] // a line cut mid-way, no newline
	var got []string
	st, err := ReadJSONL(strings.NewReader(cut), func(m *Measurement) error {
		got = append(got, m.Input)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "a.example b.example c.example"
	if strings.Join(got, " ") != want {
		t.Errorf("read %v; want %s", got, want)
	}
	// Lines 3 (corrupt) and 6 (cut); the empty line 4 counts as a line.
	if st.Bad != 2 || !st.Truncated || !slices.Equal(st.BadLines, []int{3, 6}) {
		t.Errorf("stats = %+v; want Bad 2 (one corrupt, one cut) on lines 3 and 6, and Truncated", st)
	}
}

func FuzzReadJSONL(f *testing.F) {
	var buf bytes.Buffer
	_ = NewWriter(&buf, -1).Write(sampleMeasurement("a.example"))
	f.Add(buf.Bytes())
	f.Add([]byte("{\"input\":1}\n{"))
	f.Add([]byte("\n\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n := 0
		st, err := ReadJSONL(bytes.NewReader(data), func(*Measurement) error { n++; return nil })
		if err != nil {
			t.Fatalf("read error on in-memory input: %v", err)
		}
		if n+st.Bad > st.Lines {
			t.Fatalf("%d good + %d bad > %d lines", n, st.Bad, st.Lines)
		}
	})
}
