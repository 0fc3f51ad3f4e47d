package client

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"kzprobe/collector"
	"kzprobe/store/files"
)

const goldenReportID = "20250601T120000Z_kzprobetlsmitm_KZ_64500_n0_A6TXS7HOYQ3M2W4E"

// records are n distinct one-line records made from the engine's golden
// mitm_isca record, with report_id id.
func records(t testing.TB, n int, id string) [][]byte {
	t.Helper()
	data, err := os.ReadFile("../../probe/testdata/golden/mitm_isca.json")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, data); err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for i := range n {
		r := bytes.Replace(buf.Bytes(), []byte(goldenReportID), []byte(id), 1)
		r = bytes.Replace(r, []byte("0123456789abcdef"), fmt.Appendf(nil, "%016x", i), 1)
		out = append(out, r)
	}
	return out
}

type testCollector struct {
	ts    *httptest.Server
	store *files.Store
	dir   string
	srv   *collector.Server
	// fail, when set, answers every request with this status instead.
	fail atomic.Int32
	// reject400 answers the next N updates with 400.
	reject400 atomic.Int32
}

func startCollector(t testing.TB) *testCollector {
	t.Helper()
	tc := &testCollector{dir: t.TempDir()}
	st, err := files.Open(filepath.Join(tc.dir, "store"), files.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := collector.NewServer(collector.Config{Store: st, ReportsFile: filepath.Join(tc.dir, "reports.journal"), Rate: -1})
	if err != nil {
		t.Fatal(err)
	}
	tc.store, tc.srv = st, srv
	tc.ts = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s := tc.fail.Load(); s != 0 {
			w.WriteHeader(int(s))
			return
		}
		if strings.Count(r.URL.Path, "/") == 2 && tc.reject400.Add(-1) >= 0 {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		srv.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		tc.ts.Close()
		srv.Close()
		st.Close()
	})
	return tc
}

func (tc *testCollector) client(t testing.TB) *Client {
	t.Helper()
	c, err := New(tc.ts.URL, Options{Pin: FormatPin(sha256.Sum256(tc.ts.Certificate().RawSubjectPublicKeyInfo))})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (tc *testCollector) stored(t testing.TB) []string {
	t.Helper()
	var lines []string
	filepath.WalkDir(tc.dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, files.Suffix) {
			return err
		}
		f, _ := os.Open(path)
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(zr)
		lines = append(lines, strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")...)
		return nil
	})
	sort.Strings(lines)
	return lines
}

func writeJSONL(t testing.TB, recs [][]byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "m.jsonl")
	var buf bytes.Buffer
	for _, r := range recs {
		buf.Write(r)
		buf.WriteByte('\n')
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func sortedStrings(recs [][]byte) []string {
	var out []string
	for _, r := range recs {
		out = append(out, string(r))
	}
	sort.Strings(out)
	return out
}

// TestSubmittedIsByteForByte: records whose report the collector opened
// (as kzprobe run --submit writes them) are stored as the file's bytes.
func TestSubmittedIsByteForByte(t *testing.T) {
	tc := startCollector(t)
	c := tc.client(t)
	id, err := c.Open(context.Background(), OpenRequestOf("0.2.0", "AS64500", "KZ", "kzprobe", "golden", "kzprobe_tls_mitm", "0.2.0", ""))
	if err != nil {
		t.Fatal(err)
	}
	recs := records(t, 20, id)
	path := writeJSONL(t, recs)
	o, err := OpenOutbox(path, c)
	if err != nil {
		t.Fatal(err)
	}
	o.Adopt(id, time.Now())
	if err := o.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if got, want := tc.stored(t), sortedStrings(recs); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("stored %d lines, not the file's bytes:\n%s\nwant\n%s", len(got), got[0], want[0])
	}
	if s := o.Stats(); s.Sent != 20 || s.Rewritten != 0 || s.Rejected != 0 {
		t.Errorf("stats %+v; want 20 sent as they are", s)
	}
	if p, _ := o.Pending(); p != 0 {
		t.Errorf("pending %d bytes; want 0", p)
	}
}

// TestOfflineRecordsGetANewReport: records of a run that started offline
// carry the probe's own report_id; they go to a report opened for them,
// the report_id value the only bytes that change.
func TestOfflineRecordsGetANewReport(t *testing.T) {
	tc := startCollector(t)
	c := tc.client(t)
	recs := records(t, 3, goldenReportID)
	o, err := OpenOutbox(writeJSONL(t, recs), c)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	got := tc.stored(t)
	if len(got) != 3 {
		t.Fatalf("stored %d; want 3", len(got))
	}
	newID := o.cur.Reports[goldenReportID].ID
	for i, line := range got {
		if back := strings.Replace(line, newID, goldenReportID, 1); back != sortedStrings(recs)[i] {
			t.Errorf("line %d differs from the file beyond its report_id", i)
		}
	}
	if s := o.Stats(); s.Rewritten != 3 {
		t.Errorf("stats %+v; want 3 rewritten", s)
	}
}

// TestOutboxKeepsRecordsWhileTheCollectorFails: 503s and a dead collector
// move no cursor; once it answers, everything arrives, once.
func TestOutboxKeepsRecordsWhileTheCollectorFails(t *testing.T) {
	tc := startCollector(t)
	c := tc.client(t)
	recs := records(t, 5, goldenReportID)
	path := writeJSONL(t, recs)
	o, err := OpenOutbox(path, c)
	if err != nil {
		t.Fatal(err)
	}
	o.MinBackoff, o.MaxBackoff = time.Millisecond, 5*time.Millisecond
	tc.fail.Store(http.StatusServiceUnavailable)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := o.Run(ctx, nil); err == nil {
		t.Fatal("Run with a failing collector returned nil")
	}
	if p, _ := o.Pending(); p == 0 || o.Stats().Sent != 0 {
		t.Fatalf("pending %d, stats %+v; want everything kept", p, o.Stats())
	}
	tc.fail.Store(0)
	// A new outbox, as kzprobe submit FILE later: it reads the cursor.
	o2, err := OpenOutbox(path, c)
	if err != nil {
		t.Fatal(err)
	}
	if err := o2.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if got := tc.stored(t); len(got) != 5 {
		t.Errorf("stored %d; want 5", len(got))
	}
	// Sending again from the start stores nothing more.
	os.Remove(path + CursorSuffix)
	o3, _ := OpenOutbox(path, c)
	if err := o3.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if got := tc.stored(t); len(got) != 5 {
		t.Errorf("after a resend of the whole file: stored %d; want 5", len(got))
	}
}

// TestFollowsTheFile: a record appended while Run follows is sent;
// a cut last line waits for its end.
func TestFollowsTheFile(t *testing.T) {
	tc := startCollector(t)
	c := tc.client(t)
	recs := records(t, 3, goldenReportID)
	path := writeJSONL(t, recs[:1])
	o, _ := OpenOutbox(path, c)
	done := make(chan struct{})
	errc := make(chan error, 1)
	go func() { errc <- o.Run(context.Background(), done) }()
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.Write(recs[1][:100])
	o.Notify()
	time.Sleep(50 * time.Millisecond)
	f.Write(append(recs[1][100:], '\n'))
	f.Write(append(recs[2], '\n'))
	f.Close()
	o.Notify()
	close(done)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if got := tc.stored(t); len(got) != 3 {
		t.Errorf("stored %d; want 3", len(got))
	}
}

// TestReopensAfterAnHour: a 4xx more than an hour after the report was
// opened makes a new report (bk-003 3.2); within the hour it is final.
func TestReopensAfterAnHour(t *testing.T) {
	tc := startCollector(t)
	c := tc.client(t)
	recs := records(t, 2, goldenReportID)
	path := writeJSONL(t, recs[:1])
	o, _ := OpenOutbox(path, c)
	if err := o.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	first := o.cur.Reports[goldenReportID].ID
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.Write(append(recs[1], '\n'))
	f.Close()
	o.Now = func() time.Time { return time.Now().Add(ReopenAfter + time.Minute) }
	tc.reject400.Store(1)
	if err := o.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if got := o.cur.Reports[goldenReportID].ID; got == first || o.Stats().Sent != 2 {
		t.Errorf("report %s (first %s), stats %+v; want a new report and both sent", got, first, o.Stats())
	}
	// Within the hour a 400 is final: rejected, the cursor passes it.
	f, _ = os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.Write(append(records(t, 3, goldenReportID)[2], '\n'))
	f.Close()
	o.Now = nil
	o.Adopt(goldenReportID, time.Now()) // a fresh report entry, opened now
	o.cur.Reports[goldenReportID] = Report{ID: o.cur.Reports[goldenReportID].ID, Opened: time.Now()}
	tc.reject400.Store(1)
	if err := o.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if s := o.Stats(); s.Rejected != 1 {
		t.Errorf("stats %+v; want one rejected", s)
	}
}

func TestReplaceReportID(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"first", `{"report_id":"a","x":1}`, `{"report_id":"NEW","x":1}`},
		{"spaces", `{ "x" : {"report_id":"inner"} , "report_id" :  "a" }`, `{ "x" : {"report_id":"inner"} , "report_id" :  "NEW" }`},
		{"escaped", `{"s":"\"report_id\":\"a\"","report_id":"a\u0041"}`, `{"s":"\"report_id\":\"a\"","report_id":"NEW"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReplaceReportID([]byte(tc.in), "NEW")
			if err != nil || string(got) != tc.want {
				t.Errorf("got %s, %v; want %s", got, err, tc.want)
			}
		})
	}
	for _, bad := range []string{`[]`, `{"x":1}`, `{"report_id":1}`, `{"report_id":`} {
		if _, err := ReplaceReportID([]byte(bad), "NEW"); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func FuzzReplaceReportID(f *testing.F) {
	f.Add([]byte(`{"report_id":"a","x":1}`), "b")
	f.Add([]byte(`{"x":{"report_id":"y"},"report_id":"a"}`), "")
	f.Add([]byte(`{"n":1e1000,"report_id":"a"}`), "z")
	f.Fuzz(func(t *testing.T, line []byte, id string) {
		out, err := ReplaceReportID(line, id)
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
		if !strings.Contains(id, "\ufffd") && strings.ToValidUTF8(id, "\ufffd") == id && got != id {
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
