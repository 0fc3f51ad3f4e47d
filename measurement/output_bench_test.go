package measurement

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"testing"
)

// benchMeasurement is a typical record: a lab target intercepted with the
// ISCA chain, with its DNS queries, raw responses, handshake, chain
// judgement and control server answer (12 KB of JSON).
func benchMeasurement(b *testing.B) *Measurement {
	b.Helper()
	data, err := os.ReadFile("testdata/measurement-mitm-isca.jsonl")
	if err != nil {
		b.Fatal(err)
	}
	var m Measurement
	if err := json.Unmarshal(bytes.TrimSpace(data), &m); err != nil {
		b.Fatal(err)
	}
	return &m
}

// BenchmarkWriterWrite is the JSONL encoding of one measurement as the
// Runner does it (encode, then one Write), into io.Discard.
func BenchmarkWriterWrite(b *testing.B) {
	m := benchMeasurement(b)
	w := NewWriter(io.Discard, -1)
	b.ReportAllocs()
	for b.Loop() {
		if err := w.Write(m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriterWriteParallel is BenchmarkWriterWrite from many workers,
// as a run at high parallelism writes.
func BenchmarkWriterWriteParallel(b *testing.B) {
	m := benchMeasurement(b)
	w := NewWriter(io.Discard, -1)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := w.Write(m); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkJSONMarshal is plain json.Marshal of the same record: the floor
// for BenchmarkWriterWrite.
func BenchmarkJSONMarshal(b *testing.B) {
	m := benchMeasurement(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(m); err != nil {
			b.Fatal(err)
		}
	}
}
