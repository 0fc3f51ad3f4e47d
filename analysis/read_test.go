package analysis_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"

	"kzprobe/analysis"
	"kzprobe/analysis/analysistest"
)

// A minimal measurement line and its pretty form.
const (
	line1 = `{"input":"https://a.example/","measurement_start_time":"2024-01-02 03:04:05","probe_asn":"AS9198","test_name":"web_connectivity","test_keys":{"tls_handshakes":[{"server_name":"a.example","peer_certificates":[{"data":"AAEC","format":"base64"}]}]}}`
	line2 = `{"input":"b.example","measurement_start_time":"2024-01-03 00:00:00","probe_asn":"9198","test_name":"kzprobe_tls_mitm","test_keys":{"domain":"B.example","verdict":"ok","tls_handshakes":[]}}`
)

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(b)
	zw.Close()
	return out.Bytes()
}

func pretty(t testing.TB, s string) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Indent(&b, []byte(s), "", "  "); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

type readResult struct {
	Stats    analysis.FileStats
	Domains  []string
	Warnings []string
}

func readString(t testing.TB, name string, data []byte, maxLine int) readResult {
	t.Helper()
	var got readResult
	rd := &analysis.Reader{MaxLineBytes: maxLine, Warn: func(w analysis.Warning) { got.Warnings = append(got.Warnings, w.String()) }}
	st, err := rd.Read(name, bytes.NewReader(data), func(r *analysis.Record) error {
		got.Domains = append(got.Domains, r.Domain+"@"+r.Source)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got.Stats = st
	return got
}

// TestReadFormats detects each input format from its content and reads it
// whole; bad lines are skipped, counted and named.
func TestAnalysisReadFormats(t *testing.T) {
	t.Parallel()
	arr := "[\n" + pretty(t, line1) + ",\n" + pretty(t, line2) + "\n]\n"
	for _, tc := range []struct {
		name    string
		data    []byte
		maxLine int
		want    readResult
	}{
		{
			name: "jsonl",
			data: []byte(line1 + "\n" + line2 + "\n"),
			want: readResult{Stats: analysis.FileStats{Path: "f", Format: "jsonl", Records: 2}, Domains: []string{"a.example@f:1", "b.example@f:2"}},
		},
		{
			name: "jsonl_crlf_blank_lines_bom",
			data: []byte("\xef\xbb\xbf" + line1 + "\r\n\r\n" + line2 + "\r\n"),
			want: readResult{Stats: analysis.FileStats{Path: "f", Format: "jsonl", Records: 2}, Domains: []string{"a.example@f:1", "b.example@f:3"}},
		},
		{
			name: "jsonl_gzip",
			data: gzipBytes(t, []byte(line1+"\n"+line2+"\n")),
			want: readResult{Stats: analysis.FileStats{Path: "f", Format: "jsonl+gzip", Records: 2}, Domains: []string{"a.example@f:1", "b.example@f:2"}},
		},
		{
			name: "jsonl_corrupt_and_cut",
			data: []byte(line1 + "\n" + `{"input": "x", garbage` + "\n" + `[1,2]` + "\n" + `{"input":"x"}` + "\n" + line2 + "\n" + line1[:40]),
			want: readResult{
				Stats:   analysis.FileStats{Path: "f", Format: "jsonl", Records: 2, Bad: 4, Truncated: true},
				Domains: []string{"a.example@f:1", "b.example@f:5"},
				Warnings: []string{
					"f:2: invalid JSON at byte 15: want a key string",
					`f:3: analysis: not a measurement object (starts with "[1,2]")`,
					"f:4: analysis: no measurement_start_time",
					"f:6: last line cut (no newline at the end): invalid JSON at byte 30: unterminated string",
				},
			},
		},
		{
			name: "jsonl_corrupt_first_line",
			data: []byte(strings.Replace(line1, `"probe_asn"`, `"probe_asn" x`, 1) + "\n" + line2 + "\n"),
			want: readResult{
				Stats:    analysis.FileStats{Path: "f", Format: "jsonl", Records: 1, Bad: 1},
				Domains:  []string{"b.example@f:2"},
				Warnings: []string{"f:1: invalid JSON at byte 89: want ':' after a key"},
			},
		},
		{
			name:    "jsonl_line_too_long",
			data:    []byte(line1 + "\n" + line1 + strings.Repeat(" ", 400) + "\n" + line2 + "\n"),
			maxLine: 300,
			want: readResult{
				Stats:    analysis.FileStats{Path: "f", Format: "jsonl", Records: 2, Bad: 1},
				Domains:  []string{"a.example@f:1", "b.example@f:3"},
				Warnings: []string{"f:2: line longer than 300 bytes, skipped"},
			},
		},
		{
			// The first line is over the bound and starts with "{": it is
			// counted, and the next lines keep their numbers.
			name:    "jsonl_first_line_too_long",
			data:    []byte(line1 + strings.Repeat(" ", 400) + "\n" + `{"input": garbage` + "\n" + line2 + "\n"),
			maxLine: 300,
			want: readResult{
				Stats:    analysis.FileStats{Path: "f", Format: "jsonl", Records: 1, Bad: 2},
				Domains:  []string{"b.example@f:3"},
				Warnings: []string{"f:1: line longer than 300 bytes, skipped", `f:2: invalid JSON at byte 10: invalid literal "garbage"`},
			},
		},
		{
			name: "jsonl_wrong_type",
			data: []byte(`{"measurement_start_time":"2024-01-02 03:04:05","probe_asn":9198}` + "\n" + line2 + "\n"),
			want: readResult{
				Stats:    analysis.FileStats{Path: "f", Format: "jsonl", Records: 1, Bad: 1},
				Domains:  []string{"b.example@f:2"},
				Warnings: []string{"f:1: field probe_asn: cannot read a JSON number as string"},
			},
		},
		{
			name: "json_pretty_one",
			data: []byte(pretty(t, line1) + "\n"),
			want: readResult{Stats: analysis.FileStats{Path: "f", Format: "json", Records: 1}, Domains: []string{"a.example@f:@0"}},
		},
		{
			name: "json_pretty_two_gzip",
			data: gzipBytes(t, []byte(pretty(t, line1)+"\n"+pretty(t, line2))),
			want: readResult{Stats: analysis.FileStats{Path: "f", Format: "json+gzip", Records: 2}, Domains: []string{"a.example@f:@0", "b.example@f:@" + itoaLen(pretty(t, line1)+"\n")}},
		},
		{
			name: "json_array",
			data: []byte(arr),
			want: readResult{Stats: analysis.FileStats{Path: "f", Format: "json", Records: 2}, Domains: []string{"a.example@f:@2", "b.example@f:@" + itoaLen("[\n"+pretty(t, line1)+",\n")}},
		},
		{
			name: "json_array_cut",
			data: []byte(arr[:len(arr)/2+len(arr)/4]),
			want: readResult{
				Stats:    analysis.FileStats{Path: "f", Format: "json", Records: 1, Bad: 1, Truncated: true},
				Domains:  []string{"a.example@f:@2"},
				Warnings: []string{"f:@" + itoaLen("[\n"+pretty(t, line1)+",\n") + ": input ends inside a JSON document (cut?)"},
			},
		},
		{
			name: "json_pretty_syntax_error",
			data: []byte("{\n  \"input\": \"x\",\n  oops\n}\n"),
			want: readResult{
				Stats:    analysis.FileStats{Path: "f", Format: "json", Bad: 1},
				Warnings: []string{`f:@0: invalid JSON, rest of the file skipped: invalid literal "oops"`},
			},
		},
		{
			name: "not_json",
			data: []byte("hello\nworld\n"),
			want: readResult{
				Stats:    analysis.FileStats{Path: "f", Format: "jsonl", Bad: 2},
				Warnings: []string{`f:1: analysis: not a measurement object (starts with "hello")`, `f:2: analysis: not a measurement object (starts with "world")`},
			},
		},
		{
			name: "empty",
			data: nil,
			want: readResult{Stats: analysis.FileStats{Path: "f", Format: "jsonl"}},
		},
		{
			name: "gzip_corrupt",
			data: append([]byte{0x1f, 0x8b}, []byte("not really gzip")...),
			want: readResult{Stats: analysis.FileStats{Path: "f", Error: "gzip: gzip: invalid header"}, Warnings: []string{"f: gzip: gzip: invalid header"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := readString(t, "f", tc.data, tc.maxLine)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func itoaLen(s string) string {
	b, _ := json.Marshal(len(s))
	return string(b)
}

// TestReadRecordFields checks what a record keeps of each format.
func TestAnalysisReadRecordFields(t *testing.T) {
	t.Parallel()
	var recs []*analysis.Record
	rd := &analysis.Reader{}
	_, err := rd.Read("f", strings.NewReader(line1+"\n"+line2+"\n"+
		`{"measurement_start_time":"2022-06-22 13:35:52","probe_asn":"as30722","test_name":"tlsping","input":"tlshandshake://8.8.8.8:443","test_keys":{"pings":[{"tls_handshake":{"server_name":"dns.google","peer_certificates":["AAEC"]}},{"tls_handshake":[{"peer_certificates":[{"data":"AwQ=","format":"base64"}]}]},{"tls_handshake":null}]}}`+"\n"),
		func(r *analysis.Record) error { recs = append(recs, r); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 {
		t.Fatalf("got %d records; want 3", len(recs))
	}
	if r := recs[0]; r.Domain != "a.example" || r.ProbeASN != "AS9198" || r.IsKzprobe() || len(r.Handshakes()) != 1 || string(r.Handshakes()[0].PeerCertificates[0]) != "\x00\x01\x02" {
		t.Errorf("OONI record: %+v", r)
	}
	if r := recs[1]; r.Domain != "b.example" || r.ProbeASN != "AS9198" || !r.IsKzprobe() || r.TestKeys.Verdict != "ok" {
		t.Errorf("kzprobe record: %+v", r)
	}
	hs := recs[2].Handshakes()
	if recs[2].Domain != "8.8.8.8" || recs[2].ProbeASN != "AS30722" || len(hs) != 2 || string(hs[0].PeerCertificates[0]) != "\x00\x01\x02" || string(hs[1].PeerCertificates[0]) != "\x03\x04" {
		t.Errorf("tlsping record: domain %q asn %q handshakes %+v", recs[2].Domain, recs[2].ProbeASN, hs)
	}
}

// TestReadRealOONI reads real OONI web_connectivity measurements (Italy,
// and Iran with a failed handshake that kept its certificate) and judges
// their chains: real public chains, no interception.
func TestAnalysisReadRealOONI(t *testing.T) {
	t.Parallel()
	a := analysis.New(analysis.Config{})
	if err := a.ReadPaths([]string{filepath.Join("testdata", "ooni")}); err != nil {
		t.Fatal(err)
	}
	res := a.Result()
	want := []analysis.FileStats{
		{Path: filepath.Join("testdata", "ooni", "IR_web_connectivity_yooz.ir_ssl_invalid_certificate_20220815T190259Z.json"), Format: "jsonl", Records: 1},
		{Path: filepath.Join("testdata", "ooni", "IT_web_connectivity_8.8.4.4-doh_20240124T141213Z.json"), Format: "json", Records: 1},
		{Path: filepath.Join("testdata", "ooni", "IT_web_connectivity_nexa.polito.it_20231130T173328Z.json"), Format: "json", Records: 1},
	}
	if diff := cmp.Diff(want, res.Files); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	var got []string
	for _, n := range res.Networks {
		got = append(got, n.ASN+" "+n.Name)
	}
	if diff := cmp.Diff([]string{"AS30722 Vodafone Italia S.p.A.", "AS197207 Mobile Communication Company of Iran PLC"}, got); diff != "" {
		t.Errorf("networks (-want +got):\n%s", diff)
	}
	var domains []string
	for _, d := range res.Domains {
		domains = append(domains, d.Domain)
	}
	if diff := cmp.Diff([]string{"8.8.4.4", "nexa.polito.it", "yooz.ir"}, domains); diff != "" {
		t.Errorf("domains (-want +got):\n%s", diff)
	}
	if s := res.Summary; s.Measurements != 3 || s.Handshakes != 3 || s.Intercepted != 0 || len(res.Intermediates) != 0 || s.BadLines != 0 {
		t.Errorf("summary %+v; want 3 measurements, 3 handshakes, nothing intercepted", s)
	}
}

// TestFilesWalk lists measurement files in folders, in order, and takes
// named files whatever their name.
func TestAnalysisFilesWalk(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, name := range []string{"b.jsonl", "a/x.json.gz", "a/y.JSONL.GZ", "notes.txt", ".hidden/z.jsonl", "c.json", "d.jsonl.bak"} {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, nil, 0o644)
	}
	got, err := analysis.Files([]string{dir, filepath.Join(dir, "notes.txt")})
	if err != nil {
		t.Fatal(err)
	}
	var rel []string
	for _, p := range got {
		r, _ := filepath.Rel(dir, p)
		rel = append(rel, filepath.ToSlash(r))
	}
	if diff := cmp.Diff([]string{"a/x.json.gz", "a/y.JSONL.GZ", "b.jsonl", "c.json", "notes.txt"}, rel); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if _, err := analysis.Files([]string{filepath.Join(dir, "missing")}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing path: err = %v; want not exist", err)
	}
}

// TestReadStop: a callback's ErrStop ends reading without an error.
func TestAnalysisReadStop(t *testing.T) {
	t.Parallel()
	n := 0
	rd := &analysis.Reader{}
	_, err := rd.Read("f", strings.NewReader(line1+"\n"+line1+"\n"), func(*analysis.Record) error { n++; return analysis.ErrStop })
	if !errors.Is(err, analysis.ErrStop) || n != 1 {
		t.Errorf("err %v after %d records; want ErrStop after 1", err, n)
	}
}

// TestDecodeFastMatchesEncodingJSON: on real OONI measurements, the
// fixture's records (OONI and kzprobe) and the test lines, the fast scan
// decodes exactly what encoding/json decodes into a Record.
func TestAnalysisDecodeFastMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	fx, err := analysistest.WriteReportFixture(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var docs [][]byte
	paths, _ := filepath.Glob(filepath.Join("testdata", "ooni", "*.json"))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, b)
	}
	for _, name := range []string{analysistest.FileOONI2021, analysistest.FileKzprobe} {
		b, err := os.ReadFile(fx.Path(name))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range bytes.Split(b, []byte("\n")) {
			if json.Valid(l) {
				docs = append(docs, l)
			}
		}
	}
	docs = append(docs, []byte(line1), []byte(line2), []byte(`{"test_keys":null,"input":"a\"b\\\\","x":[{"y":[1,-2.5e3,true,null,"]"]}]}`))
	// Certificates and strings in every form the fast paths hand back to
	// encoding/json (escapes, another order of keys, an empty format,
	// non-ASCII, a tab), and repeated keys.
	docs = append(docs, []byte(`{"input":"h\u00e9llo\tw","probe_asn":"AS1","probe_asn":"AS2","test_keys":{"tls_handshakes":[{"peer_certificates":["AAEC",{"data":"AwQ=","format":"base64"},`+
		`{"format":"base64","data":"AAEC"},{"data":"A\u0041EC"},{"data":"AAEC","format":""},"",null],"server_name":"é.example","failure":"x\"y","address":"1.2.3.4:443"},null,{}],`+
		`"pings":[{"tls_handshake":null},{"tls_handshake":[]},{"tls_handshake":{"server_name":"p"}},null],"interception":{"rules":["a"],"intermediates":[{"sha1":"00"}],"root_name":"R"}}}`))
	docs = append(docs, []byte(`{"test_keys":{"tls_handshakes":[{"peer_certificates":[null,"AAEC"],"withheld_certificates":[{"index":0,"withheld":"contains_probe_address",`+
		`"sha256":"00","subject":"CN=x\\,y","serial":"1","is_ca":true,"signer_root_sha1":"ab"},null,{}]},{"withheld_certificates":null}]}}`))
	for i, d := range docs {
		var want, got analysis.Record
		if err := json.Unmarshal(d, &want); err != nil {
			t.Fatalf("doc %d: %v", i, err)
		}
		if err := analysis.DecodeFast(d, &got); err != nil {
			t.Fatalf("doc %d: fast decode: %v", i, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("doc %d (-encoding/json +fast):\n%s", i, diff)
		}
	}
}

// TestAnalysisReadLimits: what one record may decode is bounded whatever its
// size in bytes; the excess is skipped, the record keeps the rest, and one
// warning names the line and what was left out.
func TestAnalysisReadLimits(t *testing.T) {
	t.Parallel()
	lim := analysis.Limits{MaxHandshakes: 3, MaxCertificates: 2, MaxCertificateBytes: 4, MaxRecordCertificateBytes: 10, MaxEntries: 2, MaxStringBytes: 24}
	const head = `{"measurement_start_time":"2024-01-01 00:00:00","test_keys":`
	rep := func(s string, n int) string { return strings.Repeat(s+",", n-1) + s }
	type counts struct {
		Handshakes, Pings    int
		Chains               []int // certificates per handshake
		Intermediates, Rules int
	}
	for _, tc := range []struct {
		name string
		line string
		want counts
		warn string
	}{
		{
			name: "within",
			line: head + `{"tls_handshakes":[{"peer_certificates":["AAEC","AwQ="]}],"interception":{"rules":["a","b"],"intermediates":[{},{}]}}}`,
			want: counts{Handshakes: 1, Chains: []int{2}, Intermediates: 2, Rules: 2},
		},
		{
			name: "handshakes",
			line: head + `{"tls_handshakes":[` + rep(`{}`, 10) + `]}}`,
			want: counts{Handshakes: 3, Chains: []int{0, 0, 0}},
			warn: "f:1: record over the decoding bounds, read in part; skipped: 7 handshake(s) past the first 3",
		},
		{
			name: "pings_share_the_handshake_bound",
			line: head + `{"tls_handshakes":[{},{}],"pings":[` + rep(`{"tls_handshake":[{},{}]}`, 5) + `]}}`,
			want: counts{Handshakes: 3, Pings: 3, Chains: []int{0, 0, 0}},
			warn: "skipped: 5 handshake(s) past the first 3, 2 ping(s) past the first 3",
		},
		{
			name: "certificates_per_handshake",
			line: head + `{"tls_handshakes":[{"peer_certificates":[` + rep(`""`, 1000) + `]},{"peer_certificates":["AA=="]}]}}`,
			want: counts{Handshakes: 2, Chains: []int{2, 1}},
			warn: "skipped: 1 chain(s) cut at 2 certificates",
		},
		{
			name: "certificate_size",
			line: head + `{"tls_handshakes":[{"peer_certificates":["AAEC","AAECAwQ=","AAEC"]}]}}`,
			want: counts{Handshakes: 1, Chains: []int{1}},
			warn: "skipped: 1 certificate(s) over 4 bytes (chain cut before)",
		},
		{
			name: "record_certificate_bytes",
			line: head + `{"tls_handshakes":[` + rep(`{"peer_certificates":["AAECAw==","AAECAw=="]}`, 3) + `]}}`,
			want: counts{Handshakes: 3, Chains: []int{2, 0, 0}},
			warn: "skipped: 2 chain(s) cut at 10 certificate bytes per record",
		},
		{
			name: "interception_lists",
			line: head + `{"interception":{"rules":[` + rep(`"r"`, 50) + `],"intermediates":[` + rep(`{}`, 1000) + `],"browser_error_reasons":["a","b","c"]}}}`,
			want: counts{Intermediates: 2, Rules: 2},
			warn: "skipped: 1047 test_keys.interception list entries past the first 2",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var warnings []string
			var got counts
			rd := &analysis.Reader{Limits: lim, Warn: func(w analysis.Warning) { warnings = append(warnings, w.String()) }}
			st, err := rd.Read("f", strings.NewReader(tc.line+"\n"), func(r *analysis.Record) error {
				got.Handshakes = len(r.Handshakes())
				got.Pings = len(r.TestKeys.Pings)
				for _, h := range r.Handshakes() {
					got.Chains = append(got.Chains, len(h.PeerCertificates))
				}
				if in := r.TestKeys.Interception; in != nil {
					got.Intermediates, got.Rules = len(in.Intermediates), len(in.Rules)
				}
				return nil
			})
			if err != nil || st.Records != 1 || st.Bad != 0 {
				t.Fatalf("stats %+v, %v; want the record read: %v", st, err, warnings)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("decoded (-want +got):\n%s", diff)
			}
			switch {
			case tc.warn == "" && len(warnings) > 0:
				t.Errorf("warnings %q; want none", warnings)
			case tc.warn != "" && (len(warnings) != 1 || !strings.Contains(warnings[0], tc.warn)):
				t.Errorf("warnings %q; want one containing %q", warnings, tc.warn)
			}
		})
	}

	// A string over its bound, and nesting past encoding/json's, make the
	// record bad.
	for _, line := range []string{
		`{"measurement_start_time":"2024-01-01 00:00:00","probe_network_name":"` + strings.Repeat("n", 25) + `"}`,
		`{"measurement_start_time":"2024-01-01 00:00:00","x":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`,
		head + `{"interception":{"rules":["` + strings.Repeat("r", 25) + `"]}}}`,
	} {
		got := readString(t, "f", []byte(line+"\n"), 0)
		rd := &analysis.Reader{Limits: lim}
		st, _ := rd.Read("f", strings.NewReader(line+"\n"), func(*analysis.Record) error { return nil })
		if st.Bad != 1 || st.Records != 0 {
			t.Errorf("%.80s…: stats %+v (default limits: %+v); want it bad", line, st, got.Stats)
		}
	}
}

// TestAnalysisReadDocumentsInPieces: JSON documents larger than the
// document reader's first buffer, arriving a few bytes at a time, are
// split where they end (the buffer grows and is reused), with their
// offsets; one over the bound ends the file with a warning.
func TestAnalysisReadDocumentsInPieces(t *testing.T) {
	t.Parallel()
	big := func(domain string) string {
		return pretty(t, `{"measurement_start_time":"2024-01-02 03:04:05","input":"https://`+domain+`/","body":"`+strings.Repeat("x", 200<<10)+`","test_keys":{"tls_handshakes":[{"peer_certificates":["AAEC"]}]},"n":12}`)
	}
	docs := big("a.example") + "\n" + big("b.example") + "\n"
	arr := "[" + big("a.example") + ",\n" + big("b.example") + "]"
	for _, tc := range []struct {
		name    string
		data    string
		r       func(io.Reader) io.Reader
		maxLine int
		want    []string
		warn    []string
	}{
		{name: "documents_one_byte_at_a_time", data: docs, r: iotest.OneByteReader,
			want: []string{"a.example@f:@0", "b.example@f:@" + itoaLen(big("a.example")+"\n")}},
		{name: "array_in_halves", data: arr, r: iotest.HalfReader,
			want: []string{"a.example@f:@1", "b.example@f:@" + itoaLen("["+big("a.example")+",\n")}},
		{name: "document_over_the_bound", data: "{\n" + `"a": 1, "b": "` + strings.Repeat("y", 5000) + `"}` + "\n" + `{"measurement_start_time":"2024-01-02 03:04:05","input":"c.example"}` + "\n" + big("d.example"), maxLine: 4096,
			want: []string{"c.example@f:@5019"},
			warn: []string{"f:@0: JSON document longer than 4096 bytes, skipped", "f:@5088: JSON document longer than 4096 bytes, rest of the file skipped"}},
		{name: "cut", data: docs[:len(docs)-100], r: iotest.DataErrReader,
			want: []string{"a.example@f:@0"},
			warn: []string{"f:@" + itoaLen(big("a.example")+"\n") + ": input ends inside a JSON document (cut?)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got, warnings []string
			var r io.Reader = strings.NewReader(tc.data)
			if tc.r != nil {
				r = tc.r(r)
			}
			rd := &analysis.Reader{MaxLineBytes: tc.maxLine, Warn: func(w analysis.Warning) { warnings = append(warnings, w.String()) }}
			if _, err := rd.Read("f", r, func(r *analysis.Record) error {
				got = append(got, r.Domain+"@"+r.Source)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("records (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.warn, warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAnalysisReadGzipRatio: a gzip that expands past the bound (short lines
// repeated: 306 KB took 51 s of CPU) is read on with one warning naming the
// file; real measurements, gzipped, are not.
func TestAnalysisReadGzipRatio(t *testing.T) {
	t.Parallel()
	// A real OONI measurement (84 KB, longer than gzip's 32 KiB window,
	// so that its copies compress as it does: 4 times).
	real, err := os.ReadFile(filepath.Join("testdata", "ooni", "IT_web_connectivity_nexa.polito.it_20231130T173328Z.json"))
	if err != nil {
		t.Fatal(err)
	}
	short := []byte(strings.Repeat(`{"measurement_start_time":"2024-01-01 00:00:00","input":"a.example"}`+"\n", 400_000))
	for _, tc := range []struct {
		name string
		data []byte
		warn string
	}{
		{"repeated_short_lines", gzipBytes(t, short), "f: gzip expands more than 100 times its size"},
		{"measurements", gzipBytes(t, bytes.Repeat(real, 1+(20<<20)/len(real))), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := readString(t, "f", tc.data, 0)
			var ratio []string
			for _, w := range got.Warnings {
				if strings.Contains(w, "gzip expands") {
					ratio = append(ratio, w)
				}
			}
			switch {
			case tc.warn == "" && len(ratio) > 0:
				t.Errorf("warnings %q; want none about the ratio", ratio)
			case tc.warn != "" && (len(ratio) != 1 || !strings.HasPrefix(ratio[0], tc.warn)):
				t.Errorf("warnings %q; want one starting %q", ratio, tc.warn)
			}
			if tc.warn != "" && got.Stats.Records != 400_000 {
				t.Errorf("%d records; want all 400000 read on", got.Stats.Records)
			}
		})
	}
}

// TestAnalysisReadProgress: the Progress hook sees the bytes, files and
// records grow to their totals.
func TestAnalysisReadProgress(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := filepath.Join(dir, "a.jsonl")
	b := filepath.Join(dir, "b.jsonl.gz")
	os.WriteFile(a, []byte(strings.Repeat(line1+"\n", 3000)+"bad\n"), 0o644)
	os.WriteFile(b, gzipBytes(t, []byte(strings.Repeat(line2+"\n", 2000))), 0o644)
	var total int64
	for _, p := range []string{a, b} {
		fi, _ := os.Stat(p)
		total += fi.Size()
	}
	var seen []analysis.Progress
	rd := &analysis.Reader{Progress: func(p analysis.Progress) { seen = append(seen, p) }}
	if _, err := rd.ReadPaths([]string{dir}, func(*analysis.Record) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if len(seen) < 4 {
		t.Fatalf("%d progress calls; want at least a start and an end per file", len(seen))
	}
	for i := 1; i < len(seen); i++ {
		if seen[i].Bytes < seen[i-1].Bytes || seen[i].Records < seen[i-1].Records || seen[i].FilesDone < seen[i-1].FilesDone {
			t.Fatalf("progress went back: %+v then %+v", seen[i-1], seen[i])
		}
	}
	want := analysis.Progress{File: b, FilesDone: 2, Files: 2, Bytes: total, TotalBytes: total, Records: 5000, Bad: 1}
	if diff := cmp.Diff(want, seen[len(seen)-1]); diff != "" {
		t.Errorf("last progress (-want +got):\n%s", diff)
	}
}
