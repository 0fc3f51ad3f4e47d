//go:build linux

package main

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter/mmdbtype"

	"kzprobe/lab"
	"kzprobe/measurement"
	"kzprobe/vantage"
)

// TestTraceCommand runs the real binary's `kzprobe trace` on a domain of
// an in-process lab on loopback, resolved through the lab's resolver as
// run resolves it: one kzprobe_trace record in the run's envelope, the
// resolver's answers in it, the destination at hop 1 (loopback), the
// target SNI answered there with the lab's ISCA interception chain, and a
// hop table of at most 80 columns on the terminal.
func TestTraceCommand(t *testing.T) {
	clearEnv(t)
	l, dir, files := startLab(t, lab.Config{Scenario: lab.Scenario{Name: "trace", Sites: []lab.Site{
		{Domain: "isca.example", TLS: lab.InterceptISCA}, {Domain: "clean.example", TLS: lab.Pass}}}})
	cfg := labConfig(l, files, dir)
	out := filepath.Join(t.TempDir(), "trace.jsonl")
	args := []string{"trace", "isca.example", "--resolver", cfg.DNS.Resolver, "--port", strconv.Itoa(cfg.Targets.Port),
		"--trust-roots", cfg.TLS.TrustRoots, "--allow-net", strings.Join(cfg.Network.Allow, ","),
		"--control-sni", "clean.example", "--hop-timeout", "1s", "--max-hops", "3", "-o", out}
	for _, r := range cfg.Interception.ExtraRoots {
		args = append(args, "--interception-roots", r)
	}
	r := runWrapped(t, nil, 60*time.Second, args...)
	if r.code != exitOK {
		t.Fatalf("exit code %d; want 0\n%s", r.code, r.stderr)
	}
	for _, line := range strings.Split(r.stdout, "\n") {
		if n := len([]rune(line)); n > 80 {
			t.Errorf("a line of %d columns; want at most 80: %q", n, line)
		}
	}
	if !strings.Contains(r.stdout, "INTERCEPT") || !strings.Contains(r.stdout, "finding: The target SNI was answered with an interception chain at hop 1") {
		t.Errorf("the hop table lacks the interception at hop 1:\n%s", r.stdout)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 1 {
		t.Fatalf("%d records; want 1 (the lab's one address)", len(lines))
	}
	var rec measurement.Trace
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatal(err)
	}
	tk, f := rec.TestKeys, rec.TestKeys.Finding
	if rec.TestName != measurement.TraceTestName || rec.Input != "isca.example" || rec.ReportID == "" || rec.ProbeIP != "127.0.0.1" {
		t.Errorf("envelope: test_name %q, input %q, report_id %q, probe_ip %q", rec.TestName, rec.Input, rec.ReportID, rec.ProbeIP)
	}
	if len(tk.Queries) != 2 || tk.SNI != "isca.example" || tk.ControlSNI != "clean.example" {
		t.Errorf("queries %d, sni %q, control %q; want 2, isca.example, clean.example", len(tk.Queries), tk.SNI, tk.ControlSNI)
	}
	if f.TCPAnswerHop == nil || *f.TCPAnswerHop != 1 || f.Interference != measurement.InterferenceChain || f.InterferenceHop == nil || *f.InterferenceHop != 1 {
		t.Errorf("finding %+v; want TCP answered and the interception at hop 1", f)
	}
	if h := f.AnsweringHop; h == nil || h.Class != measurement.HopOther || h.Prefix != "" || !h.Destination {
		t.Errorf("answering hop %+v; want the loopback destination, no prefix", h)
	}
}

// TestTraceSubmitToCollector: kzprobe trace --submit sends its record
// (test kzprobe_trace) to a real kzprobe collector serve on loopback as
// run and sweep send theirs: in the report the collector opened (its
// report_id in the record), stored once, byte for byte the local line, in
// a kzprobe_trace partition, the report closed once all is sent.
func TestTraceSubmitToCollector(t *testing.T) {
	clearEnv(t)
	l, dir, files := startLab(t, lab.Config{Scenario: lab.Scenario{Name: "trace", Sites: []lab.Site{
		{Domain: "isca.example", TLS: lab.InterceptISCA}, {Domain: "clean.example", TLS: lab.Pass}}}})
	cfg := labConfig(l, files, dir)
	col := startCollectorProc(t, filepath.Join(dir, "store"), freeLoopback(t), "--interception-roots", files.ISCARoot)
	out := filepath.Join(t.TempDir(), "trace.jsonl")
	args := []string{"trace", "-q", "isca.example", "--resolver", cfg.DNS.Resolver, "--port", strconv.Itoa(cfg.Targets.Port),
		"--trust-roots", cfg.TLS.TrustRoots, "--allow-net", strings.Join(cfg.Network.Allow, ","), "--asn", "AS9198", "--cc", "KZ",
		"--control-sni", "clean.example", "--hop-timeout", "1s", "--max-hops", "3", "-o", out,
		"--submit", col.url, "--submit-pin", col.pin}
	for _, r := range cfg.Interception.ExtraRoots {
		args = append(args, "--interception-roots", r)
	}
	r := runWrapped(t, nil, 60*time.Second, args...)
	if r.code != exitOK {
		t.Fatalf("exit code %d; want 0\n%s", r.code, r.stderr)
	}
	local := fileLines(t, out)
	if len(local) != 1 {
		t.Fatalf("%d records; want 1", len(local))
	}
	if got := storeLines(t, col.store); !slices.Equal(got, local) {
		t.Fatalf("the store holds %q, not the trace's line byte for byte\n%s", got, r.stderr)
	}
	if !strings.Contains(r.stderr, "submitted 1 record to "+col.url) {
		t.Errorf("stderr does not say what was submitted:\n%s", r.stderr)
	}
	var rec measurement.Trace
	if err := json.Unmarshal([]byte(local[0]), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.TestName != measurement.TraceTestName || !strings.Contains(rec.ReportID, "_n1_") {
		t.Errorf("test_name %q, report_id %q; want kzprobe_trace in the collector's report", rec.TestName, rec.ReportID)
	}
	if _, err := os.Stat(filepath.Join(col.store, rec.MeasurementStartTime[:4]+rec.MeasurementStartTime[5:7]+rec.MeasurementStartTime[8:10],
		"KZ", "AS9198", measurement.TraceTestName+".jsonl.gz")); err != nil {
		t.Errorf("no kzprobe_trace partition: %v", err)
	}
	journal, _ := os.ReadFile(filepath.Join(col.store, "reports.journal"))
	if !strings.Contains(string(journal), `"id":"`+rec.ReportID+`"`) || !strings.Contains(string(journal), `"closed":true`) {
		t.Errorf("the trace's report is not closed in the journal:\n%s", journal)
	}
}

// TestTraceExitCodes: an address outside --allow-net is traced as
// blocked_by_allow_net and the command exits 1 saying so (nothing is
// sent); a port nothing listens on is a trace done (exit 0): the reset
// answers at hop 1.
func TestTraceExitCodes(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	closed := closedTCP(t)
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"outside --allow-net", []string{"trace", "-q", "--sni", "x.example", "--to", "192.0.2.1", "--allow-net", "127.0.0.0/8", "-o", filepath.Join(dir, "a.jsonl")},
			exitFailure, "1 of 1 traces failed for a local reason"},
		{"a closed port", []string{"trace", "-q", "--sni", "x.example", "--to", closed, "--allow-net", "127.0.0.0/8", "--hop-timeout", "1s", "-o", filepath.Join(dir, "b.jsonl")},
			exitOK, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runWrapped(t, nil, 60*time.Second, tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit code %d, stderr %q; want %d and %q", r.code, r.stderr, tc.code, tc.want)
			}
		})
	}
}

// TestHopLookupLeavesOut: a router's network comes from the MMDB files,
// and --no-asn and --no-cc leave it out as they leave the probe's out (a
// router's network would name the volunteer's).
func TestHopLookupLeavesOut(t *testing.T) {
	r := netip.MustParseAddr("198.51.100.2")
	asnDB := writeMMDB(t, "GeoLite2-ASN", map[netip.Addr]mmdbtype.Map{r: {
		"autonomous_system_number": mmdbtype.Uint32(64501), "autonomous_system_organization": mmdbtype.String("Transit")}})
	ccDB := writeMMDB(t, "GeoLite2-Country", map[netip.Addr]mmdbtype.Map{r: {
		"country": mmdbtype.Map{"iso_code": mmdbtype.String("KZ")}}})
	db, err := vantage.Open(asnDB, ccDB)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, tc := range []struct {
		name         string
		v            VantageConfig
		asn, net, cc string
	}{
		{"all", VantageConfig{}, "AS64501", "Transit", "KZ"},
		{"--no-asn", VantageConfig{NoASN: true}, "", "", "KZ"},
		{"--no-cc", VantageConfig{NoCC: true}, "AS64501", "Transit", ""},
	} {
		info := hopLookup(db, tc.v)(r)
		if info.ASN != tc.asn || info.Network != tc.net || info.CC != tc.cc {
			t.Errorf("%s: %+v; want %s %q %s", tc.name, info, tc.asn, tc.net, tc.cc)
		}
	}
}
