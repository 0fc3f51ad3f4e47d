package measurement

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"kzprobe/probe/chain"
)

// jsonNames lists the JSON names of a struct type's fields.
func jsonNames(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous {
			out = append(out, jsonNames(f.Type)...)
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return out
}

// TestEnvelopeMatchesMeasurement keeps Envelope, the trace record's
// envelope, equal to Measurement's fields other than test_keys, in name
// and type, so that a reader of the envelope reads both records alike.
func TestEnvelopeMatchesMeasurement(t *testing.T) {
	m := reflect.TypeFor[Measurement]()
	e := reflect.TypeFor[Envelope]()
	want := slices.DeleteFunc(jsonNames(m), func(s string) bool { return s == "test_keys" })
	if got := jsonNames(e); !slices.Equal(got, want) {
		t.Errorf("Envelope's fields %v; Measurement's %v", got, want)
	}
	for i := range e.NumField() {
		f := e.Field(i)
		mf, ok := m.FieldByName(f.Name)
		if !ok || mf.Type != f.Type || mf.Tag.Get("json") != f.Tag.Get("json") {
			t.Errorf("Envelope.%s (%s %q) differs from Measurement's", f.Name, f.Type, f.Tag.Get("json"))
		}
	}
	tr := reflect.TypeFor[Trace]()
	if got := jsonNames(tr); !slices.Equal(got, append(want, "test_keys")) {
		t.Errorf("Trace's fields %v", got)
	}
}

// TestWithholdTrace: a certificate or DNS response of a trace that holds
// the probe's address is withheld, with what was judged of it kept.
func TestWithholdTrace(t *testing.T) {
	holds := func(b []byte) bool { return string(b) == "mine" }
	tr := &Trace{TestKeys: TraceTestKeys{
		Queries: []DNSQuery{{RawResponse: []byte("mine")}, {RawResponse: []byte("other")}},
		TargetTrace: []TLSIteration{{TTL: 1}, {TTL: 2, Handshake: &TLSHandshake{PeerCertificates: []BinaryData{[]byte("mine"), []byte("ca")}},
			Chain: &chain.Judgement{Trusted: false}}},
		ControlTrace: []TLSIteration{{TTL: 2, Handshake: &TLSHandshake{PeerCertificates: []BinaryData{[]byte("other")}}}},
	}}
	if n := WithholdTrace(tr, holds); n != 2 {
		t.Errorf("withheld %d; want 2", n)
	}
	tk := tr.TestKeys
	if tk.Queries[0].RawResponse != nil || tk.Queries[0].RawResponseWithheld == nil || tk.Queries[1].RawResponse == nil {
		t.Errorf("queries: %+v", tk.Queries)
	}
	h := tk.TargetTrace[1].Handshake
	if h.PeerCertificates[0] != nil || h.PeerCertificates[1] == nil || len(h.WithheldCertificates) != 1 || h.WithheldCertificates[0].Index != 0 {
		t.Errorf("target handshake: %+v", h)
	}
	if tk.ControlTrace[0].Handshake.PeerCertificates[0] == nil {
		t.Error("the control's certificate was withheld")
	}
}
