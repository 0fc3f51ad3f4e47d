package analysistest

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"kzprobe/measurement"
	"kzprobe/probe/chain"
)

// Sighting is one planned measurement of the fixture.
type Sighting struct {
	// Inter indexes ReportIntermediates; -1 is a clean (public) chain.
	Inter int
	// Time is the measurement time, in measurement.TimeLayout, UTC.
	Time   string
	ASN    string
	Domain string
	// Handshakes is how many handshakes presented the chain (0 means 1):
	// one measurement, several addresses.
	Handshakes int
	// File is the fixture file it goes to (see WriteReportFixture).
	File string
}

// Fixture file names, relative to the fixture folder.
const (
	FileOONI2021   = "ooni/2021.jsonl"       // JSONL, a corrupt line 3
	FileOONI2023   = "ooni/2023.jsonl.gz"    // gzip of JSONL
	FileOONIReport = "ooni/2024-03-17.json"  // one pretty-printed measurement
	FileOONI2024   = "ooni/2024.json.gz"     // gzip of a pretty JSON array
	FileKzprobe    = "kzprobe/2024-09.jsonl" // kzprobe's own JSONL, last line cut
	FileRoots      = "roots.pem"             // the four test roots
	FileReadme     = "README.txt"            // not a measurement: skipped in a walk
)

// ReportPlan is the fixture: each of the report's intermediates seen on
// the day the report names (SeenIn), plus sightings on other networks and
// domains so that all 19 networks and 14 domains appear, and sightings
// after expiry: in every gap between windows, and one outside its own
// window while another intermediate was valid (not in a gap). The last
// entry is a clean chain on a report network.
var ReportPlan = []Sighting{
	{Inter: 0, Time: "2021-06-20 08:00:00", ASN: "AS9198", Domain: "rutracker.org", File: FileOONI2021},
	{Inter: 0, Time: "2021-07-14 10:30:00", ASN: "AS21299", Domain: "regnum.ru", File: FileOONI2021},
	{Inter: 0, Time: "2021-08-08 01:57:58", ASN: "AS9198", Domain: "xakep.ru", File: FileOONI2021},
	{Inter: 0, Time: "2021-09-10 09:00:00", ASN: "AS29355", Domain: "knews.kg", File: FileOONI2021}, // expired; 90f9… valid
	{Inter: 1, Time: "2021-08-25 12:00:00", ASN: "AS50482", Domain: "compromat.ru", File: FileOONI2021},
	{Inter: 1, Time: "2021-09-14 08:07:02", ASN: "AS41798", Domain: "cont.ws", File: FileOONI2021},
	{Inter: 1, Time: "2021-10-30 23:59:59", ASN: "AS8200", Domain: "360tv.ru", File: FileOONI2021},
	{Inter: 1, Time: "2021-12-15 06:00:00", ASN: "AS9198", Domain: "rutracker.org", File: FileOONI2021},              // gap 1
	{Inter: 1, Time: "2022-06-01 12:00:00", ASN: "AS35104", Domain: "ukraina.ru", Handshakes: 2, File: FileOONI2021}, // gap 1
	{Inter: 2, Time: "2023-08-09 06:33:35", ASN: "AS39824", Domain: "stanradar.com", File: FileOONI2023},             // at NotBefore
	{Inter: 2, Time: "2023-10-16 13:06:00", ASN: "AS9123", Domain: "kz.tsargrad.tv", File: FileOONI2023},
	{Inter: 2, Time: "2023-10-28 10:00:00", ASN: "AS43370", Domain: "www.for.kg", File: FileOONI2023}, // gap 2
	{Inter: 3, Time: "2023-11-18 14:01:34", ASN: "AS15736", Domain: "sproot.it", File: FileOONI2023},
	{Inter: 3, Time: "2024-01-10 07:00:00", ASN: "AS29555", Domain: "astrakhan.sm.news", File: FileOONI2023},
	{Inter: 3, Time: "2024-01-20 07:00:00", ASN: "AS48503", Domain: "www.pinterest.com", File: FileOONI2023}, // expired; dfcd… valid
	{Inter: 4, Time: "2023-12-05 00:00:00", ASN: "AS41124", Domain: "regnum.ru", File: FileOONI2024},
	{Inter: 4, Time: "2024-03-01 00:00:00", ASN: "AS43994", Domain: "rutracker.org", File: FileOONI2024}, // gap 3
	{Inter: 4, Time: "2024-03-17 05:28:21", ASN: "AS44477", Domain: "xakep.ru", File: FileOONIReport},    // gap 3
	{Inter: 5, Time: "2024-04-18 13:38:19", ASN: "AS48502", Domain: "360tv.ru", File: FileOONI2024},
	{Inter: 5, Time: "2024-07-01 12:00:00", ASN: "AS48716", Domain: "knews.kg", File: FileOONI2024}, // gap 4
	{Inter: 6, Time: "2024-09-01 15:14:13", ASN: "AS206026", Domain: "ukraina.ru", File: FileKzprobe},
	{Inter: 6, Time: "2024-11-20 09:00:00", ASN: "AS9198", Domain: "compromat.ru", File: FileKzprobe}, // after the last window
	{Inter: -1, Time: "2024-09-02 10:00:00", ASN: "AS9198", Domain: "www.pinterest.com", File: FileKzprobe},
}

// Fixture is a written fixture.
type Fixture struct {
	// Dir is the fixture folder.
	Dir string
	// PKI made its chains.
	PKI *PKI
	// RootsPEM is the path of the test roots' PEM file.
	RootsPEM string
}

// Path returns the path of a fixture file.
func (f *Fixture) Path(name string) string { return filepath.Join(f.Dir, filepath.FromSlash(name)) }

// WriteReportFixture writes ReportPlan under dir in every input format the
// analysis reads: OONI JSONL with a corrupt line, gzipped JSONL, one
// pretty-printed OONI measurement, a gzipped JSON array, and kzprobe JSONL
// whose last line was cut by a "crash"; plus the test roots and a file
// that is not a measurement.
func WriteReportFixture(dir string) (*Fixture, error) {
	p, err := NewReportPKI()
	if err != nil {
		return nil, err
	}
	f := &Fixture{Dir: dir, PKI: p, RootsPEM: filepath.Join(dir, FileRoots)}
	byFile := map[string][]Sighting{}
	for _, s := range ReportPlan {
		byFile[s.File] = append(byFile[s.File], s)
	}
	write := func(name string, data []byte) error {
		path := f.Path(name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		return os.WriteFile(path, data, 0o644)
	}
	ooniLines := func(ss []Sighting) ([][]byte, error) {
		var out [][]byte
		for _, s := range ss {
			b, err := json.Marshal(p.OONIMeasurement(s))
			if err != nil {
				return nil, err
			}
			out = append(out, b)
		}
		return out, nil
	}

	// ooni/2021.jsonl: JSONL with a corrupt third line and a blank line.
	lines, err := ooniLines(byFile[FileOONI2021])
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	for i, l := range lines {
		if i == 2 {
			b.WriteString(`{"probe_asn": "AS9198", "test_keys": {"tls_handshakes": [{"peer_certificates": [{"data": "MIIB` + "\x00\x01garbage\n")
			b.WriteString("\n")
		}
		b.Write(l)
		b.WriteByte('\n')
	}
	if err := write(FileOONI2021, b.Bytes()); err != nil {
		return nil, err
	}

	// ooni/2023.jsonl.gz
	if lines, err = ooniLines(byFile[FileOONI2023]); err != nil {
		return nil, err
	}
	if err := write(FileOONI2023, gz(bytes.Join(append(lines, nil), []byte("\n")))); err != nil {
		return nil, err
	}

	// ooni/2024-03-17.json: one measurement, pretty-printed as OONI's
	// API returns it.
	one, err := json.MarshalIndent(p.OONIMeasurement(byFile[FileOONIReport][0]), "", "  ")
	if err != nil {
		return nil, err
	}
	if err := write(FileOONIReport, append(one, '\n')); err != nil {
		return nil, err
	}

	// ooni/2024.json.gz: a gzipped JSON array.
	var arr []any
	for _, s := range byFile[FileOONI2024] {
		arr = append(arr, p.OONIMeasurement(s))
	}
	ab, err := json.MarshalIndent(arr, "", " ")
	if err != nil {
		return nil, err
	}
	if err := write(FileOONI2024, gz(ab)); err != nil {
		return nil, err
	}

	// kzprobe/2024-09.jsonl: kzprobe's records, the last one cut.
	b.Reset()
	for _, s := range byFile[FileKzprobe] {
		m, err := p.KzprobeMeasurement(s)
		if err != nil {
			return nil, err
		}
		line, err := json.Marshal(m)
		if err != nil {
			return nil, err
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	b.WriteString(`{"input":"regnum.ru","measurement_start_time":"2024-11-21 00:00:00","test_name":"kzprobe_tls_mitm","test_keys":{"tls_hands`)
	if err := write(FileKzprobe, b.Bytes()); err != nil {
		return nil, err
	}

	if err := write(FileRoots, p.RootsPEM()); err != nil {
		return nil, err
	}
	if err := write(FileReadme, []byte("Not a measurement: a walk of this folder skips it.\n")); err != nil {
		return nil, err
	}
	return f, nil
}

func gz(b []byte) []byte {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(b)
	zw.Close()
	return out.Bytes()
}

// ooniBinary is OONI's BinaryData.
type ooniBinary struct {
	Data   string `json:"data"`
	Format string `json:"format"`
}

// OONIMeasurement returns s as an OONI web_connectivity measurement
// (df-000-base envelope, ts-017 test keys, df-006 handshakes), in the shape
// of the real ooniprobe-android measurement in ooni-samples (the Iranian
// one, whose handshake failed and still kept the peer certificate).
func (p *PKI) OONIMeasurement(s Sighting) map[string]any {
	der, err := p.Chain(s.Inter, s.Domain)
	if err != nil {
		panic(err) // generated from constants; tested
	}
	certs := make([]ooniBinary, len(der))
	for i, d := range der {
		certs[i] = ooniBinary{Data: encodeBase64(d), Format: "base64"}
	}
	failure := "ssl_unknown_authority"
	if s.Inter < 0 {
		failure = ""
	}
	n := max(s.Handshakes, 1)
	var hs, tcp []map[string]any
	for i := range n {
		addr := fmt.Sprintf("192.0.2.%d", 10+i)
		h := map[string]any{
			"address":             addr + ":443",
			"cipher_suite":        "TLS_AES_128_GCM_SHA256",
			"failure":             nullable(failure),
			"negotiated_protocol": "",
			"no_tls_verify":       false,
			"peer_certificates":   certs,
			"server_name":         s.Domain,
			"t":                   1.5 + float64(i),
			"tags":                []string{"tcptls_experiment"},
			"tls_version":         "TLSv1.3",
		}
		hs = append(hs, h)
		tcp = append(tcp, map[string]any{"ip": addr, "port": 443, "status": map[string]any{"blocked": false, "failure": nil, "success": true}, "t": 1.2})
	}
	t := utc(s.Time)
	asnNum := strings.TrimPrefix(s.ASN, "AS")
	return map[string]any{
		"annotations":            map[string]string{"engine_name": "ooniprobe-engine", "engine_version": "3.15.2", "platform": "android", "network_type": "mobile"},
		"data_format_version":    "0.2.0",
		"input":                  "https://" + s.Domain + "/",
		"measurement_start_time": s.Time,
		"probe_asn":              s.ASN,
		"probe_cc":               "KZ",
		"probe_ip":               "127.0.0.1",
		"probe_network_name":     NetworkName(s.ASN),
		"report_id":              t.Format("20060102T150405Z") + "_webconnectivity_KZ_" + asnNum + "_n1_analysistest",
		"resolver_asn":           s.ASN,
		"resolver_ip":            "192.0.2.53",
		"resolver_network_name":  NetworkName(s.ASN),
		"software_name":          "ooniprobe-android",
		"software_version":       "3.7.0",
		"test_helpers":           map[string]any{"backend": map[string]string{"address": "https://0.th.ooni.org", "type": "https"}},
		"test_keys": map[string]any{
			"agent":                   "redirect",
			"client_resolver":         "192.0.2.53",
			"queries":                 []any{map[string]any{"answers": []any{map[string]any{"answer_type": "A", "ipv4": "192.0.2.10", "ttl": nil}}, "engine": "system", "failure": nil, "hostname": s.Domain, "query_type": "A"}},
			"dns_experiment_failure":  nil,
			"dns_consistency":         "consistent",
			"control_failure":         nil,
			"tcp_connect":             tcp,
			"tls_handshakes":          hs,
			"http_experiment_failure": nullable(failure),
			"blocking":                blocking(failure),
			"accessible":              failure == "",
		},
		"test_name":       "web_connectivity",
		"test_runtime":    2.4,
		"test_start_time": s.Time,
		"test_version":    "0.4.1",
	}
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func blocking(failure string) any {
	if failure == "" {
		return false
	}
	return "http-failure"
}

// KzprobeMeasurement returns s as kzprobe's own record, judged as the
// probe judges: the chain analysed at the measurement time with the test
// roots as interception roots.
func (p *PKI) KzprobeMeasurement(s Sighting) (*measurement.Measurement, error) {
	der, err := p.Chain(s.Inter, s.Domain)
	if err != nil {
		return nil, err
	}
	kb, err := chain.Default()
	if err != nil {
		return nil, err
	}
	if _, err := kb.AddRootsPEM(p.RootsPEM(), "analysistest"); err != nil {
		return nil, err
	}
	trust := newPool(p.PublicRoot)
	a := chain.NewAnalyzer(trust, kb)
	t := utc(s.Time)
	m := &measurement.Measurement{
		Envelope: fixtureEnvelope("", measurement.TestName, measurement.TestVersion, s.ASN, s.Domain, t),
		TestKeys: measurement.TestKeys{Domain: s.Domain, Port: 443},
	}
	n := max(s.Handshakes, 1)
	for i := range n {
		h := measurement.TLSHandshake{
			Network:     "tcp",
			Address:     fmt.Sprintf("192.0.2.%d:443", 10+i),
			ServerName:  s.Domain,
			Fingerprint: "chrome",
			TLSVersion:  "TLSv1.3",
			CipherSuite: "TLS_AES_128_GCM_SHA256",
			NoTLSVerify: true,
		}
		for _, d := range der {
			h.PeerCertificates = append(h.PeerCertificates, measurement.BinaryData(d))
		}
		m.TestKeys.TLSHandshakes = append(m.TestKeys.TLSHandshakes, h)
		m.TestKeys.Chains = append(m.TestKeys.Chains, a.Judge(der, s.Domain, t))
	}
	m.TestKeys.SetInterception(chain.Strongest(m.TestKeys.Chains))
	if m.TestKeys.Interception != nil {
		m.TestKeys.Verdict = measurement.VerdictMITMISCA
		m.TestKeys.VerdictReason = "chain leads to an ISCA root"
	} else {
		m.TestKeys.Verdict = measurement.VerdictOK
		m.TestKeys.VerdictReason = "trusted chain"
	}
	return m, nil
}

// Time parses a plan time.
func Time(s string) time.Time { return utc(s) }

// fixtureEnvelope is the envelope of a fixture record of testName and
// testVersion for domain, measured at t from network asn, in the fixture's
// report of kind ("" for kzprobe run's, "sweep", "trace"), which also
// names its measurement_uid.
func fixtureEnvelope(kind, testName, testVersion, asn, domain string, t time.Time) measurement.Envelope {
	report, uid := "analysistest-", ""
	if kind != "" {
		report, uid = report+kind+"-", kind+"_"
	}
	return measurement.Envelope{
		Input:                domain,
		ReportID:             report + asn,
		MeasurementUID:       fmt.Sprintf("%s_%s_%s%s", t.Format("20060102T150405Z"), asn, uid, domain),
		MeasurementStartTime: t.Format(measurement.TimeLayout),
		TestStartTime:        t.Format(measurement.TimeLayout),
		TestName:             testName,
		TestVersion:          testVersion,
		SoftwareName:         measurement.SoftwareName,
		SoftwareVersion:      "0.1.0-analysistest",
		ProbeASN:             asn,
		ProbeCC:              "KZ",
		ProbeNetworkName:     NetworkName(asn),
		ProbeIP:              "127.0.0.1",
		Annotations:          map[string]string{},
	}
}
