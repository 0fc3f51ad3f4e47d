package collector

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kzprobe/store/files"
	"kzprobe/vantage"
)

// golden is the engine's golden mitm_isca record as one line: a real
// record with a chain.
func golden(t testing.TB) []byte {
	t.Helper()
	data, err := os.ReadFile("../probe/testdata/golden/mitm_isca.json")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, data); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

const goldenReportID = "20250601T120000Z_kzprobetlsmitm_KZ_64500_n0_A6TXS7HOYQ3M2W4E"

// withReport is rec with its report_id (the golden one) replaced.
func withReport(rec []byte, id string) []byte {
	return bytes.Replace(rec, []byte(`"report_id":"`+goldenReportID+`"`), []byte(`"report_id":"`+id+`"`), 1)
}

type testCollector struct {
	srv   *Server
	store *files.Store
	dir   string
	ts    *httptest.Server
}

func startCollector(t testing.TB, cfg Config) *testCollector {
	t.Helper()
	dir := t.TempDir()
	st, err := files.Open(filepath.Join(dir, "store"), files.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Store = st
	if cfg.ReportsFile == "" {
		cfg.ReportsFile = filepath.Join(dir, "reports.journal")
	}
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewTLSServer(srv)
	t.Cleanup(func() {
		ts.Close()
		srv.Close()
		st.Close()
	})
	return &testCollector{srv: srv, store: st, dir: dir, ts: ts}
}

func (c *testCollector) post(t testing.TB, path string, body []byte, header ...string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.ts.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

const openBody = `{"data_format_version":"0.2.0","format":"json","probe_asn":"AS64500","probe_cc":"KZ","software_name":"kzprobe","software_version":"golden","test_name":"kzprobe_tls_mitm","test_version":"0.2.0","probe_ip":"203.0.113.9"}`

func (c *testCollector) open(t testing.TB) string {
	t.Helper()
	status, body := c.post(t, ReportPath, []byte(openBody))
	if status != http.StatusOK {
		t.Fatalf("open: %d %s", status, body)
	}
	var resp OpenResponse
	if err := json.Unmarshal(body, &resp); err != nil || resp.ReportID == "" {
		t.Fatalf("open: %s", body)
	}
	return resp.ReportID
}

func submission(content []byte) []byte {
	return []byte(`{"format":"json","content":` + string(content) + `}`)
}

// storedLines reads every line the store's files hold.
func storedLines(t testing.TB, dir string) []string {
	t.Helper()
	var lines []string
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, files.Suffix) {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")...)
		return nil
	})
	return lines
}

func TestOpenUpdateCloseStoresTheBytes(t *testing.T) {
	c := startCollector(t, Config{})
	id := c.open(t)
	if len(id) < 52 {
		t.Errorf("report_id %q: want at least 256 random bits", id)
	}
	rec := withReport(golden(t), id)
	for range 2 { // a resend is accepted and kept once
		status, body := c.post(t, ReportPath+"/"+id, submission(rec))
		if status != http.StatusOK {
			t.Fatalf("update: %d %s", status, body)
		}
		var resp UpdateResponse
		json.Unmarshal(body, &resp)
		if resp.MeasurementID != "20250601120000.000000_KZ_kzprobetlsmitm_0123456789abcdef" || resp.Chains == 0 {
			t.Errorf("update answer %s: want the measurement_uid and the chains judged", body)
		}
	}
	lines := storedLines(t, c.dir)
	if len(lines) != 1 || lines[0] != string(rec) {
		t.Fatalf("stored %d lines; want the submitted bytes once", len(lines))
	}
	if _, err := os.Stat(filepath.Join(c.dir, "store/20250601/KZ/AS64500/kzprobe_tls_mitm.jsonl.gz")); err != nil {
		t.Error(err)
	}
	if status, body := c.post(t, ReportPath+"/"+id+ClosePath, nil); status != http.StatusOK || !strings.Contains(string(body), `"success"`) {
		t.Errorf("close: %d %s", status, body)
	}
	if status, _ := c.post(t, ReportPath+"/"+id, submission(rec)); status != http.StatusNotFound {
		t.Errorf("update of a closed report: %d; want 404", status)
	}
}

// TestHostileSubmissions: each gets its 4xx and stores nothing.
func TestHostileSubmissions(t *testing.T) {
	c := startCollector(t, Config{MaxBodyBytes: 256 << 10, Token: "s3cret"})
	auth := []string{"Authorization", "Bearer s3cret"}
	status, body := c.post(t, ReportPath, []byte(openBody), auth...)
	if status != http.StatusOK {
		t.Fatalf("open: %d %s", status, body)
	}
	var or OpenResponse
	json.Unmarshal(body, &or)
	id := or.ReportID
	rec := withReport(golden(t), id)
	set := func(key, value string) []byte {
		var m map[string]json.RawMessage
		json.Unmarshal(rec, &m)
		if value == "" {
			delete(m, key)
		} else {
			m[key] = json.RawMessage(value)
		}
		b, _ := json.Marshal(m)
		return b
	}
	garbageChain := set("test_keys", `{"tls_handshakes":[{"peer_certificates":[{"data":"aGVsbG8gd29ybGQ=","format":"base64"}]}]}`)
	notBase64 := set("test_keys", `{"tls_handshakes":[{"peer_certificates":[{"data":"!!!","format":"base64"}]}]}`)
	chainNotList := set("test_keys", `{"tls_handshakes":{"peer_certificates":1}}`)
	tests := []struct {
		name   string
		path   string
		body   []byte
		header []string
		status int
		code   string
	}{
		{"no token", ReportPath + "/" + id, submission(rec), nil, 401, ErrUnauthorized},
		{"wrong token", ReportPath + "/" + id, submission(rec), []string{"Authorization", "Bearer nope"}, 401, ErrUnauthorized},
		{"not json", ReportPath + "/" + id, []byte("{nope"), auth, 400, ErrBadRequest},
		{"not an object", ReportPath + "/" + id, []byte(`[1,2]`), auth, 400, ErrBadRequest},
		{"content not an object", ReportPath + "/" + id, []byte(`{"format":"json","content":"x"}`), auth, 400, ErrBadRequest},
		{"yaml", ReportPath + "/" + id, []byte(`{"format":"yaml","content":"a: b"}`), auth, 400, ErrBadRequest},
		{"unknown report", ReportPath + "/nope", submission(rec), auth, 404, ErrNotFound},
		{"wrong report id", ReportPath + "/" + id, submission(withReport(golden(t), "other")), auth, 400, ErrReportMismatch},
		{"missing measurement_uid", ReportPath + "/" + id, submission(set("measurement_uid", "")), auth, 400, ErrBadRequest},
		{"missing test_keys", ReportPath + "/" + id, submission(set("test_keys", "")), auth, 400, ErrBadRequest},
		{"test_keys a string", ReportPath + "/" + id, submission(set("test_keys", `"x"`)), auth, 400, ErrBadRequest},
		{"bad probe_cc", ReportPath + "/" + id, submission(set("probe_cc", `"kz"`)), auth, 400, ErrBadRequest},
		{"bad probe_asn", ReportPath + "/" + id, submission(set("probe_asn", `"9198"`)), auth, 400, ErrBadRequest},
		{"other network", ReportPath + "/" + id, submission(set("probe_asn", `"AS9198"`)), auth, 400, ErrReportMismatch},
		{"bad time", ReportPath + "/" + id, submission(set("measurement_start_time", `"yesterday"`)), auth, 400, ErrBadRequest},
		{"future", ReportPath + "/" + id, submission(set("measurement_start_time", `"2999-01-01 00:00:00"`)), auth, 400, ErrBadRequest},
		{"test_runtime a string", ReportPath + "/" + id, submission(set("test_runtime", `"1"`)), auth, 400, ErrBadRequest},
		{"a backend key", ReportPath + "/" + id, submission(set("bucket_date", `"2025-06-01"`)), auth, 400, ErrBadRequest},
		{"a real probe_ip", ReportPath + "/" + id, submission(set("probe_ip", `"203.0.113.9"`)), auth, 400, ErrProbeIP},
		{"not a chain", ReportPath + "/" + id, submission(garbageChain), auth, 400, ErrNotAChain},
		{"not base64", ReportPath + "/" + id, submission(notBase64), auth, 400, ErrNotAChain},
		{"handshakes not a list", ReportPath + "/" + id, submission(chainNotList), auth, 400, ErrNotAChain},
		{"huge body", ReportPath + "/" + id, submission(set("annotations", `{"x":"`+strings.Repeat("a", 300<<10)+`"}`)), auth, 413, ErrBodyTooLarge},
		{"gzip body", ReportPath + "/" + id, submission(rec), append([]string{"Content-Encoding", "gzip"}, auth...), 415, ErrUnsupportedMedia},
		{"open without fields", ReportPath, []byte(`{"format":"json"}`), auth, 400, ErrBadRequest},
		{"open with content", ReportPath, []byte(strings.Replace(openBody, `"format":"json"`, `"format":"json","content":"x"`, 1)), auth, 400, ErrBadRequest},
		{"open yaml", ReportPath, []byte(strings.Replace(openBody, `"format":"json"`, `"format":"yaml"`, 1)), auth, 415, ErrUnsupportedMedia},
		{"close unknown", ReportPath + "/nope" + ClosePath, nil, auth, 404, ErrNotFound},
		{"other path", "/v1/check", nil, auth, 404, ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := c.post(t, tc.path, tc.body, tc.header...)
			var e ErrorResponse
			json.Unmarshal(body, &e)
			if status != tc.status || e.Error != tc.code {
				t.Errorf("got %d %s; want %d %s", status, body, tc.status, tc.code)
			}
			if strings.Contains(string(body), "203.0.113.9") {
				t.Errorf("the answer echoes the probe_ip: %s", body)
			}
		})
	}
	if n := c.store.Len(); n != 0 {
		t.Errorf("the store holds %d records after hostile submissions; want 0", n)
	}
	if status, body := c.post(t, ReportPath+"/"+id, submission(rec), auth...); status != http.StatusOK {
		t.Errorf("the good record after them: %d %s", status, body)
	}
}

func TestReportsSurviveRestart(t *testing.T) {
	c := startCollector(t, Config{})
	id := c.open(t)
	c.srv.Close()
	srv, err := NewServer(Config{Store: c.store, ReportsFile: filepath.Join(c.dir, "reports.journal")})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c.ts.Config.Handler = srv
	if status, body := c.post(t, ReportPath+"/"+id, submission(withReport(golden(t), id))); status != http.StatusOK {
		t.Errorf("update after a restart: %d %s; want the report still open", status, body)
	}
}

func TestStaleReportIsGone(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	c := startCollector(t, Config{Now: func() time.Time { return now }})
	id := c.open(t)
	now = now.Add(DefaultStaleAfter + time.Minute)
	if status, _ := c.post(t, ReportPath+"/"+id, submission(withReport(golden(t), id))); status != http.StatusGone {
		t.Errorf("update after two hours of inactivity: %d; want 410", status)
	}
}

func TestRateLimitPerClient(t *testing.T) {
	c := startCollector(t, Config{Rate: 1, Burst: 3})
	var got []int
	for range 5 {
		status, _ := c.post(t, ReportPath, []byte(openBody))
		got = append(got, status)
	}
	if fmt.Sprint(got) != "[200 200 200 429 429]" {
		t.Errorf("statuses %v; want the burst of 3, then 429", got)
	}
}

func FuzzParseSubmission(f *testing.F) {
	rec := withReport(golden(f), "r")
	f.Add(submission(rec))
	f.Add([]byte(`{"format":"json","content":{}}`))
	f.Add([]byte(`{"format":"json","content":{"test_keys":{"tls_handshakes":[{"peer_certificates":["AAAA"]}]}}}`))
	f.Add([]byte(`{"format":"json","content":{"probe_ip":"1.2.3.4"}}`))
	now := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		s, err := ParseSubmission(body, "r", now)
		if err != nil {
			return
		}
		if !json.Valid(s.Content) || s.ReportID != "r" || !uidRE.MatchString(s.UID) || bytes.IndexByte(s.Content, '\n') >= 0 {
			t.Fatalf("accepted %q: %+v", body, s)
		}
		dec := json.NewDecoder(bytes.NewReader(s.Content))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("accepted content that is not an object: %v", err)
		}
		if ip, ok := m["probe_ip"]; ok && ip != nil && ip != ProbeIPPlaceholder && ip != vantage.Scrubbed {
			t.Fatalf("accepted probe_ip %v", ip)
		}
	})
}

// TestSingleMeasurement: POST /measurement (bk-003 3.4) opens a report,
// sets the measurement's report_id to it (replaced, or added when there
// is none), stores it and closes the report.
func TestSingleMeasurement(t *testing.T) {
	c := startCollector(t, Config{})
	rec := golden(t)
	noID := bytes.Replace(rec, []byte(`"report_id":"`+goldenReportID+`",`), nil, 1)
	noID = bytes.Replace(noID, []byte("0123456789abcdef"), []byte("0123456789abcdee"), 1)
	for i, content := range [][]byte{rec, noID} {
		status, body := c.post(t, MeasurementPath, submission(content))
		var resp SingleResponse
		json.Unmarshal(body, &resp)
		if status != http.StatusOK || resp.ReportID == "" || resp.MeasurementID == "" {
			t.Fatalf("POST /measurement %d: %d %s", i, status, body)
		}
		if status, _ := c.post(t, ReportPath+"/"+resp.ReportID, submission(withReport(rec, resp.ReportID))); status != http.StatusNotFound {
			t.Errorf("the single measurement's report is still open: %d", status)
		}
	}
	lines := storedLines(t, c.dir)
	if len(lines) != 2 {
		t.Fatalf("stored %d; want 2", len(lines))
	}
	for _, l := range lines {
		var m map[string]any
		json.Unmarshal([]byte(l), &m)
		id, _ := m["report_id"].(string)
		if !strings.Contains(id, "_n1_") {
			t.Errorf("stored report_id %q; want the collector's", id)
		}
	}
	if status, _ := c.post(t, MeasurementPath, []byte(`{"format":"json","content":{"test_name":"x"}}`)); status != http.StatusBadRequest {
		t.Errorf("a measurement without the envelope: %d; want 400", status)
	}
}
