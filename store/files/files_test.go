package files

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"kzprobe/analysis"
	"kzprobe/filelock"
	"kzprobe/store"
)

var day = time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)

// record is a small kzprobe-shaped record with uid i.
func record(i int, cc, asn string) store.Record {
	uid := fmt.Sprintf("20261204100000.000000_%s_kzprobetlsmitm_%016x", cc, i)
	raw := fmt.Sprintf(`{"data_format_version":"0.2.0","input":"d%d.example.test","report_id":"r1","measurement_uid":%q,"measurement_start_time":"2026-12-04 10:00:00","test_name":"kzprobe_tls_mitm","probe_asn":%q,"probe_cc":%q,"test_keys":{"domain":"d%d.example.test"}}`, i, uid, asn, cc, i)
	return store.Record{UID: uid, ReportID: "r1", TestName: "kzprobe_tls_mitm", ProbeCC: cc, ProbeASN: asn, Start: day, Raw: []byte(raw)}
}

// readAll returns every line of every store file, sorted, read with a
// plain multistream gzip reader.
func readAll(t *testing.T, dir string) []string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".gz" {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			return err
		}
		b, err := io.ReadAll(zr)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		for _, l := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
			lines = append(lines, string(l))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return lines
}

func openStore(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPutConcurrentPartitionsAndBytes(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	var want []string
	var wg sync.WaitGroup
	errs := make(chan error, 300)
	for i := range 300 {
		cc, asn := "KZ", "AS9198"
		if i%3 == 1 {
			cc, asn = "KZ", "AS48716"
		} else if i%3 == 2 {
			cc, asn = "RU", "AS12389"
		}
		r := record(i, cc, asn)
		want = append(want, string(r.Raw))
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.Put(context.Background(), r)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	sort.Strings(want)
	got := readAll(t, dir)
	if len(got) != len(want) {
		t.Fatalf("got %d lines; want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("line %d:\ngot  %s\nwant %s", i, got[i], want[i])
		}
	}
	for _, p := range []string{"20261204/KZ/AS9198/kzprobe_tls_mitm.jsonl.gz", "20261204/KZ/AS48716/kzprobe_tls_mitm.jsonl.gz", "20261204/RU/AS12389/kzprobe_tls_mitm.jsonl.gz"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("partition %s: %v", p, err)
		}
	}
	if err := s.Put(context.Background(), record(1000, "KZ", "AS1")); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Put after Close: got %v; want ErrClosed", err)
	}
}

func TestDeduplicatesAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	ctx := context.Background()
	r := record(1, "KZ", "AS9198")
	var wg sync.WaitGroup
	for range 10 { // resends racing each other land in one group
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Put(ctx, r); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if err := s.Put(ctx, r); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openStore(t, dir)
	if s.Len() != 1 {
		t.Errorf("Len after reopen: got %d; want 1", s.Len())
	}
	if err := s.Put(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, record(2, "KZ", "AS9198")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if got := readAll(t, dir); len(got) != 2 {
		t.Errorf("got %d lines; want 2 (one copy each): %q", len(got), got)
	}
}

// TestResendsAcrossGroups: resends of one record race the first send
// while its group is written or synced (20 senders, each sending the same
// 60 records in its own order and with its own pauses, so that copies of
// a UID fall into one group and into successive ones): every Put is
// answered nil and each record is stored once.
func TestResendsAcrossGroups(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 60 {
				if err := s.Put(ctx, record((i+w)%60, "KZ", "AS9198")); err != nil {
					t.Error(err)
					return
				}
				if (i+w)%7 == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	s.Close()
	got := readAll(t, dir)
	if len(got) != 60 {
		t.Fatalf("%d lines stored; want the 60 records once each", len(got))
	}
	for i := 1; i < len(got); i++ {
		if got[i] == got[i-1] {
			t.Fatalf("a record stored twice: %.80s", got[i])
		}
	}
}

func TestPartitionNamesStayInside(t *testing.T) {
	s := &Store{dir: "/s", opts: Options{Now: func() time.Time { return day }}}
	tests := []struct {
		name string
		r    store.Record
		want string
	}{
		{"plain", store.Record{ProbeCC: "KZ", ProbeASN: "AS9198", TestName: "kzprobe_tls_mitm", Start: day}, "/s/20261204/KZ/AS9198/kzprobe_tls_mitm.jsonl.gz"},
		{"hostile", store.Record{ProbeCC: "../..", ProbeASN: "AS1/../../x", TestName: "../../etc/passwd", Start: day}, "/s/20261204/ZZ/AS0/______etc_passwd.jsonl.gz"},
		{"no time", store.Record{ProbeCC: "IT", ProbeASN: "AS30722", TestName: "web connectivity"}, "/s/20261204/IT/AS30722/web_connectivity.jsonl.gz"},
		{"empty test", store.Record{ProbeCC: "IT", ProbeASN: "AS1", Start: day}, "/s/20261204/IT/AS1/unknown.jsonl.gz"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := s.partition(tc.r); got != filepath.FromSlash(tc.want) {
				t.Errorf("got %s; want %s", got, tc.want)
			}
		})
	}
}

// TestCutTailLosesNothing cuts the file's last gzip member at every length,
// as kill -9 or a power loss during a write would: analyze still reads the
// earlier records, and Open moves the cut bytes aside and keeps storing.
func TestCutTailLosesNothing(t *testing.T) {
	base := t.TempDir()
	s := openStore(t, base)
	ctx := context.Background()
	for i := range 5 {
		if err := s.Put(ctx, record(i, "KZ", "AS9198")); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	path := filepath.Join(base, "20261204/KZ/AS9198/kzprobe_tls_mitm.jsonl.gz")
	whole, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The member a sixth Put would have written.
	var member bytes.Buffer
	zw := gzip.NewWriter(&member)
	zw.Write(append(record(5, "KZ", "AS9198").Raw, '\n'))
	zw.Close()
	for _, cut := range []int{1, 2, 10, member.Len() / 2, member.Len() - 4, member.Len() - 1} {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "20261204/KZ/AS9198/kzprobe_tls_mitm.jsonl.gz")
			os.MkdirAll(filepath.Dir(p), 0o750)
			if err := os.WriteFile(p, append(append([]byte(nil), whole...), member.Bytes()[:cut]...), 0o640); err != nil {
				t.Fatal(err)
			}
			var read int
			if _, err := (&analysis.Reader{}).ReadPaths([]string{dir}, func(*analysis.Record) error { read++; return nil }); err != nil {
				t.Fatal(err)
			}
			// A cut inside the trailer (CRC and length) leaves the last
			// line whole: analyze reads it too.
			if read < 5 {
				t.Errorf("analyze read %d records of a cut file; want at least the 5 whole ones", read)
			}
			s, err := Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if s.Len() != 5 || len(s.Repaired) != 1 {
				t.Errorf("Open: %d records, repairs %+v; want 5 and one", s.Len(), s.Repaired)
			} else if torn, _ := os.ReadFile(s.Repaired[0].Moved); !bytes.Equal(torn, member.Bytes()[:cut]) {
				t.Errorf("moved aside %d bytes; want the %d cut ones", len(torn), cut)
			}
			if err := s.Put(ctx, record(6, "KZ", "AS9198")); err != nil {
				t.Fatal(err)
			}
			s.Close()
			if got := readAll(t, filepath.Join(dir, "20261204")); len(got) != 6 {
				t.Errorf("after repair and a Put: %d records; want 6", len(got))
			}
		})
	}
}

// TestSecondOpenRefused: a second store on a folder, as a second
// collector would open it, fails at Open with an error naming the folder,
// and touches nothing: the first store's write in progress (here a cut
// member at a file's end) is not taken for a crash's cut tail and moved
// aside. Once the first is closed the folder opens again.
func TestSecondOpenRefused(t *testing.T) {
	if runtime.GOOS == "aix" {
		t.Skip("fcntl locks are the process's: two stores of one process do not conflict")
	}
	dir := t.TempDir()
	first := openStore(t, dir)
	ctx := context.Background()
	for i := range 3 {
		if err := first.Put(ctx, record(i, "KZ", "AS9198")); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "20261204/KZ/AS9198/kzprobe_tls_mitm.jsonl.gz")
	var member bytes.Buffer
	zw := gzip.NewWriter(&member)
	zw.Write(append(record(3, "KZ", "AS9198").Raw, '\n'))
	zw.Close()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(member.Bytes()[:member.Len()/2])
	f.Close()
	before, _ := os.ReadFile(path)

	second, err := Open(dir, Options{})
	if err == nil {
		second.Close()
		t.Fatal("a second Open of a folder in use succeeded")
	}
	abs, _ := filepath.Abs(dir)
	if !errors.Is(err, filelock.ErrLocked) || !strings.Contains(err.Error(), abs) {
		t.Errorf("second Open: %v; want filelock.ErrLocked naming %s", err, abs)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
		t.Errorf("the refused Open changed the first store's file: %d bytes, was %d", len(after), len(before))
	}
	if torn, _ := filepath.Glob(path + ".torn-*"); len(torn) != 0 {
		t.Errorf("the refused Open moved a tail aside: %q", torn)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("Open after the first store closed: %v", err)
	}
	defer again.Close()
	if again.Len() != 3 || len(again.Repaired) != 1 {
		t.Errorf("reopened: %d records, repairs %+v; want 3 and the cut member moved aside", again.Len(), again.Repaired)
	}
}

// BenchmarkPutParallel puts records from 100 goroutines into one store:
// the group commit's throughput and each Put's latency (p99 reported).
func BenchmarkPutParallel(b *testing.B) {
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	raw := bytes.Repeat([]byte("x"), 12<<10)
	var mu sync.Mutex
	var lat []time.Duration
	var n int64
	var nmu sync.Mutex
	b.SetParallelism(100 / max(1, testingProcs()))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			nmu.Lock()
			n++
			i := n
			nmu.Unlock()
			r := record(int(i), "KZ", "AS9198")
			r.Raw = append(r.Raw[:len(r.Raw)-1], []byte(`,"pad":"`+string(raw)+`"}`)...)
			t0 := time.Now()
			if err := s.Put(context.Background(), r); err != nil {
				b.Error(err)
				return
			}
			mine = append(mine, time.Since(t0))
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	}
}

func testingProcs() int { return runtime.GOMAXPROCS(0) }

// BenchmarkPutPaced: 100 submitters put records at 1 000/s in all, each
// on its own schedule, as the collector's probes do; a Put's latency is
// counted from when it was due (no coordinated omission). Each record
// carries 8 KiB of base64 of random bytes, as a record's chains do, so
// that compressing a group costs what it costs with real records. b.N is
// the number of records: -benchtime 10000x is ten seconds.
func BenchmarkPutPaced(b *testing.B) {
	const workers, rate = 100, 1000
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rnd := make([]byte, 6<<10)
	rand.NewChaCha8([32]byte{1}).Read(rnd)
	pad := `,"pad":"` + base64.StdEncoding.EncodeToString(rnd) + `"}`
	per := max(1, b.N/workers)
	interval := time.Second * workers / rate
	var mu sync.Mutex
	lat := make([]time.Duration, 0, per*workers)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, per)
			due := start.Add(interval * time.Duration(w) / workers)
			for i := range per {
				r := record(w*per+i, "KZ", "AS9198")
				r.Raw = append(r.Raw[:len(r.Raw)-1], pad...)
				if d := time.Until(due); d > 0 {
					time.Sleep(d)
				}
				if err := s.Put(context.Background(), r); err != nil {
					b.Error(err)
					return
				}
				mine = append(mine, time.Since(due))
				due = due.Add(interval)
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	ms := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(float64(len(lat))*p))].Microseconds()) / 1000
	}
	b.ReportMetric(ms(0.50), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "puts/s")
	b.ReportMetric(0, "ns/op")
}
