package analysis_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"kzprobe/analysis"
	"kzprobe/analysis/analysistest"
)

// fuzzLimits are small decoding bounds, for the fuzzer to cross.
var fuzzLimits = analysis.Limits{MaxHandshakes: 4, MaxCertificates: 3, MaxCertificateBytes: 2048, MaxRecordCertificateBytes: 4096, MaxEntries: 3, MaxStringBytes: 256}

// fuzzRead reads data as a file and analyses and compares what it holds:
// nothing may panic, counts must add up, memory is bounded by the line
// limit, and no record holds more than fuzzLimits allow.
func fuzzRead(t *testing.T, data []byte, judge *analysis.Judge) {
	a := analysis.New(analysis.Config{Judge: judge, DeriveVerdicts: true})
	c := analysis.NewComparison(analysis.Config{Judge: judge, DeriveVerdicts: true})
	rd := &analysis.Reader{MaxLineBytes: 1 << 20, Warn: a.Warn, Limits: fuzzLimits}
	n := 0
	st, err := rd.Read("fuzz", bytes.NewReader(data), func(r *analysis.Record) error {
		n++
		if r.Time.IsZero() && r.MeasurementStartTime == "" && r.TestStartTime == "" {
			t.Errorf("record without a time got through: %+v", r)
		}
		checkLimits(t, r, fuzzLimits)
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
	if got := res.Summary.Measurements + res.Summary.SweepMeasurements + res.Summary.TraceMeasurements; got != n {
		t.Fatalf("analysed %d, %d sweep and %d trace records of %d records", res.Summary.Measurements, res.Summary.SweepMeasurements, res.Summary.TraceMeasurements, n)
	}
	if _, err := json.Marshal(res); err != nil {
		t.Fatalf("result does not marshal: %v", err)
	}
	c.Matrix()
}

// checkLimits fails when r holds more than lim allows.
func checkLimits(t *testing.T, r *analysis.Record, lim analysis.Limits) {
	t.Helper()
	hs := r.Handshakes()
	if len(hs) > lim.MaxHandshakes || len(r.TestKeys.Pings) > lim.MaxHandshakes {
		t.Errorf("%d handshakes, %d pings; the bound is %d", len(hs), len(r.TestKeys.Pings), lim.MaxHandshakes)
	}
	total := 0
	for _, h := range hs {
		if len(h.Withheld) > lim.MaxCertificates {
			t.Errorf("%d withheld certificates; the bound is %d", len(h.Withheld), lim.MaxCertificates)
		}
		if len(h.PeerCertificates) > lim.MaxCertificates {
			t.Errorf("a chain of %d certificates; the bound is %d", len(h.PeerCertificates), lim.MaxCertificates)
		}
		for _, c := range h.PeerCertificates {
			if len(c) > lim.MaxCertificateBytes {
				t.Errorf("a certificate of %d bytes; the bound is %d", len(c), lim.MaxCertificateBytes)
			}
			total += len(c)
		}
		for _, s := range []string{h.Address, h.ServerName} {
			if len(s) > lim.MaxStringBytes {
				t.Errorf("a string of %d bytes; the bound is %d", len(s), lim.MaxStringBytes)
			}
		}
	}
	if total > lim.MaxRecordCertificateBytes {
		t.Errorf("%d certificate bytes in the record; the bound is %d", total, lim.MaxRecordCertificateBytes)
	}
	if in := r.TestKeys.Interception; in != nil {
		if len(in.Intermediates) > lim.MaxEntries || len(in.Rules) > lim.MaxEntries || len(in.BrowserErrorReasons) > lim.MaxEntries {
			t.Errorf("interception lists of %d, %d, %d; the bound is %d", len(in.Intermediates), len(in.Rules), len(in.BrowserErrorReasons), lim.MaxEntries)
		}
	}
	if f := r.TestKeys.TraceFinding; f != nil && len(f.SilentHops) > lim.MaxEntries {
		t.Errorf("%d silent hops; the bound is %d", len(f.SilentHops), lim.MaxEntries)
	}
	strs := []string{r.Input, r.ProbeASN, r.ProbeNetworkName, r.TestKeys.Domain, r.TestKeys.Verdict}
	if sk := r.TestKeys.SNISweep; sk != nil {
		strs = append(strs, sk.Endpoint, sk.EndpointPin, sk.ControlSNI, sk.ReasonCode)
	}
	for _, s := range strs {
		if len(s) > lim.MaxStringBytes+2 { // NormalizeASN may add "AS"
			t.Errorf("a string of %d bytes; the bound is %d", len(s), lim.MaxStringBytes)
		}
	}
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
	// Past every bound of fuzzLimits.
	f.Add([]byte(`{"measurement_start_time":"2024-01-01 00:00:00","test_keys":{"tls_handshakes":[{},{},{},{},{},{"peer_certificates":["","","","",""]}],` +
		`"pings":[{"tls_handshake":[{},{}]},{"tls_handshake":{}},{},{},{}],"interception":{"rules":["a","b","c","d"],"intermediates":[{},{},{},{}]}}}` + "\n"))
	// The same finding where records of format 0.2.0 hold it: in the chain
	// interception_chain names.
	f.Add([]byte(`{"measurement_start_time":"2024-01-01 00:00:00","test_keys":{"chains":[null,{"interception":{"rules":["a","b","c","d"],"intermediates":[{},{},{},{}]}}],"interception_chain":1}}` + "\n"))
	f.Add([]byte(`{"measurement_start_time":"2024-01-01 00:00:00","test_keys":{"tls_handshakes":[{"peer_certificates":["` + strings.Repeat("AAAA", 700) + `"]},` +
		`{"peer_certificates":["` + strings.Repeat("AAAA", 600) + `","` + strings.Repeat("AAAA", 600) + `"]}]}}` + "\n"))
	// Withheld certificates (they held the probe's address): a null entry and its facts.
	f.Add([]byte(`{"measurement_start_time":"2024-01-01 00:00:00","test_name":"kzprobe_tls_mitm","test_keys":{"tls_handshakes":[{"peer_certificates":[null,"AAEC"],` +
		`"withheld_certificates":[{"index":0,"withheld":"contains_probe_address","sha256":"00","issuer":"CN=Information Security Certification Authority,O=ISCA,C=KZ",` +
		`"not_before":"2024-01-01T00:00:00Z","not_after":"2024-03-16T00:00:00Z","is_ca":true,"signer_root_sha1":"ab"},{"index":1},{"index":-1},null]}]}}` + "\n"))
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

// FuzzTrimArrays: on valid JSON, trimArrays keeps exactly the first max
// elements of every array (compared with encoding/json's reading of the
// input, cut the same way), and says how many it left out.
func FuzzTrimArrays(f *testing.F) {
	f.Add([]byte(`{"a":[1,2,3,[4,5,6]],"b":{"c":[{},{},{}]},"d":"[,]"}`), 2)
	f.Add([]byte(`[[],[[]],[[],[]],"x",null,true,-1.5e3]`), 1)
	f.Add([]byte(`{"rules":["a","b"],"intermediates":[{"sha1":"x"}],"browser_error_even_with_root_installed":false}`), 0)
	f.Fuzz(func(t *testing.T, data []byte, max int) {
		if max < 0 || max > 8 || !json.Valid(data) {
			return
		}
		trimmed, cut, err := analysis.TrimArrays(data, max, 1<<20)
		if err != nil {
			return // nested too deep: the record is bad
		}
		orig, err := decodeNumbers(data)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeNumbers(trimmed)
		if err != nil {
			t.Fatalf("trimmed %q is not JSON: %v", trimmed, err)
		}
		want, wantCut := cutArrays(orig, max), cutCount(data, max)
		if diff := cmp.Diff(want, got); diff != "" || cut != wantCut {
			t.Errorf("trimArrays(%q, %d) = %q, %d cut; want %d cut (-want +got):\n%s", data, max, trimmed, cut, wantCut, diff)
		}
	})
}

// decodeNumbers reads JSON keeping numbers as their text, so that a
// number no float64 holds (1e1000) is compared rather than refused.
func decodeNumbers(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// cutArrays keeps the first max elements of every array of v.
func cutArrays(v any, max int) any {
	switch v := v.(type) {
	case []any:
		v = v[:min(len(v), max)]
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = cutArrays(e, max)
		}
		return out
	case map[string]any:
		out := map[string]any{}
		for k, e := range v {
			out[k] = cutArrays(e, max)
		}
		return out
	}
	return v
}

// cutCount counts the array elements past the first max of their array,
// at any depth outside them, with encoding/json's tokenizer (a map would
// lose the values of repeated keys).
func cutCount(data []byte, max int) int {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var elems []int // per open container: elements so far, -1 for an object
	skip, cut := 0, 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return cut
		}
		d, delim := tok.(json.Delim)
		closing := delim && (d == ']' || d == '}')
		switch {
		case skip > 0: // inside an element left out
			if closing {
				skip--
			} else if delim {
				skip++
			}
			continue
		case closing:
			elems = elems[:len(elems)-1]
			continue
		}
		if top := len(elems) - 1; top >= 0 && elems[top] >= 0 {
			if elems[top]++; elems[top] > max {
				cut++
				if delim {
					skip = 1
				}
				continue
			}
		}
		if delim {
			n := 0
			if d == '{' {
				n = -1
			}
			elems = append(elems, n)
		}
	}
}

// FuzzSweepKeys feeds test_keys.sni_sweep values to the fast decoder
// inside a sweep record: where encoding/json reads the record too, both
// read the same sweep keys (keys spelt as the format spells them: the
// fast decoder matches them exactly, encoding/json in any case), and the
// record goes through the analysis and the comparison.
func FuzzSweepKeys(f *testing.F) {
	f.Add([]byte(`{"endpoint":"203.0.113.5:443","endpoint_pin":"sha256:AAAA","pin_source":"flag","presented_pin":"","pin_match":null,"hello":"chrome","control_sni":"example.com","control":{"ok":true,"tcp_connect":{}},"reason_code":"blocked"}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"endpoint":null,"reason_code":"\u0041\n"}`))
	f.Add([]byte(`{"endpoint":5}`))
	f.Add([]byte(`{"Endpoint":"x","endpoint":"y"}`))
	f.Add([]byte(`[]`))
	names := []string{"endpoint", "endpoint_pin", "control_sni", "reason_code"}
	f.Fuzz(func(t *testing.T, val []byte) {
		line := []byte(`{"measurement_start_time":"2024-01-01 00:00:00","test_name":"kzprobe_sni_sweep","probe_asn":"AS1","test_keys":{"domain":"a.example","verdict":"sni_blocked","sni_sweep":` +
			string(val) + `}}`)
		var fast analysis.Record
		ferr := analysis.DecodeFast(line, &fast)
		var slow analysis.Record
		serr := json.Unmarshal(line, &slow)
		if ferr == nil && serr == nil {
			var keys map[string]json.RawMessage
			exact := json.Unmarshal(val, &keys) != nil // not an object: nothing to spell
			if !exact {
				exact = true
				for k := range keys {
					for _, n := range names {
						if strings.EqualFold(k, n) && k != n {
							exact = false
						}
					}
				}
			}
			if exact {
				if d := cmp.Diff(slow.TestKeys.SNISweep, fast.TestKeys.SNISweep); d != "" {
					t.Errorf("sni_sweep %q: encoding/json and the fast decoder differ (-json +fast):\n%s", val, d)
				}
			}
		}
		fuzzRead(t, append(line, '\n'), nil)
	})
}
