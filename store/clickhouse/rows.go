package clickhouse

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"

	"kzprobe/analysis"
	"kzprobe/measurement"
)

// measurementRow is one row of TableMeasurements, as JSONEachRow.
type measurementRow struct {
	UID          string `json:"uid"`
	TS           int64  `json:"ts"`
	ReportID     string `json:"report_id"`
	TestName     string `json:"test_name"`
	SoftwareName string `json:"software_name"`
	ProbeCC      string `json:"probe_cc"`
	ProbeASN     string `json:"probe_asn"`
	NetworkName  string `json:"network_name"`
	Domain       string `json:"domain"`
	Input        string `json:"input"`
	Verdict      string `json:"verdict"`
	Handshakes   uint32 `json:"handshakes"`
	Intercepted  uint8  `json:"intercepted"`
	// For compare's matrix: whether kzprobe wrote it, its column
	// (analysis.VantageKey), the file's own interception finding (its
	// first intermediate, and whether a browser with the root installed
	// errs), and the same from the first chain judged intercepted now.
	Kzprobe            uint8  `json:"kzprobe"`
	Vantage            string `json:"vantage"`
	FileInterception   uint8  `json:"file_interception"`
	FileInterSHA1      string `json:"file_inter_sha1"`
	FileBrowserError   uint8  `json:"file_browser_error"`
	JudgedInterSHA1    string `json:"judged_inter_sha1"`
	JudgedBrowserError uint8  `json:"judged_browser_error"`
	Source             string `json:"source"`
	HasRaw             uint8  `json:"has_raw"`
	Raw                string `json:"raw"`
	// The side tables' parts: a sweep record's endpoint ("ip:port") and,
	// when it found the name intercepted or blocked, the SHA-1s of the
	// interception intermediates its chains lead through (judged now);
	// a trace record's test_keys.finding, as JSON ("" without one).
	Endpoint    string   `json:"endpoint"`
	SweepInters []string `json:"sweep_inters"`
	Finding     string   `json:"finding"`
	// Format is rowFormat: 0 in rows stored before the side tables'
	// columns were.
	Format uint8 `json:"format"`
}

// rowFormat is the format of the rows stored now: 1 since they keep the
// side tables' columns (endpoint, sweep_inters, finding).
const rowFormat = 1

// sightingRow is one row of TableSightings: one handshake with a chain.
type sightingRow struct {
	UID             string   `json:"uid"`
	HS              uint16   `json:"hs"`
	TS              int64    `json:"ts"`
	ProbeCC         string   `json:"probe_cc"`
	ProbeASN        string   `json:"probe_asn"`
	NetworkName     string   `json:"network_name"`
	Domain          string   `json:"domain"`
	ServerName      string   `json:"server_name"`
	Address         string   `json:"address"`
	Intercepted     uint8    `json:"intercepted"`
	Evidence        string   `json:"evidence"`
	RootSHA1        string   `json:"root_sha1"`
	Verdict         string   `json:"verdict"`
	Expired         uint8    `json:"expired"`
	InterSHA1       []string `json:"inter_sha1"`
	InterSHA256     []string `json:"inter_sha256"`
	InterSerial     []string `json:"inter_serial"`
	InterSubject    []string `json:"inter_subject"`
	InterIssuer     []string `json:"inter_issuer"`
	InterNotBefore  []int64  `json:"inter_not_before"`
	InterNotAfter   []int64  `json:"inter_not_after"`
	InterSignerSHA1 []string `json:"inter_signer_sha1"`
	InterSignerName []string `json:"inter_signer_name"`
	InterKnown      []int    `json:"inter_known"` // 0 or 1 ([]uint8 would be base64)
	Source          string   `json:"source"`
}

// RecordUID is the key a record is deduplicated on: its measurement_uid,
// or for records without one (older OONI files), a hash of the fields
// that tell two measurements apart (report, test, time, network, input,
// and each handshake's address, server name and certificate sizes),
// prefixed "h:". The certificates' bytes are not hashed: that doubled the
// hashing of an ingest, and two records equal in all the rest are one.
func RecordUID(rec *analysis.Record) string {
	if rec.MeasurementUID != "" {
		return rec.MeasurementUID
	}
	h := sha256.New()
	for _, s := range []string{rec.ReportID, rec.TestName, rec.MeasurementStartTime, rec.TestStartTime, rec.ProbeASN, rec.ProbeCC, rec.Input} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	var n [8]byte
	for _, hs := range rec.Handshakes() {
		h.Write([]byte(hs.Address))
		h.Write([]byte{0})
		h.Write([]byte(hs.ServerName))
		h.Write([]byte{0})
		for _, c := range hs.PeerCertificates {
			binary.BigEndian.PutUint64(n[:], uint64(len(c)))
			h.Write(n[:])
		}
		h.Write([]byte{1})
	}
	return "h:" + hex.EncodeToString(h.Sum(nil)[:16])
}

// rows judges rec's chains with j and appends its rows, as JSON lines, to
// the two buffers. raw, when not nil, is the record's JSON (the
// collector's), kept in the measurements row.
func rows(rec *analysis.Record, j *analysis.Judge, raw []byte, mbuf, sbuf []byte) ([]byte, []byte) {
	uid := RecordUID(rec)
	ts := rec.Time.Unix()
	m := measurementRow{
		UID: uid, TS: ts, ReportID: rec.ReportID, TestName: rec.TestName, SoftwareName: rec.SoftwareName,
		ProbeCC: rec.ProbeCC, ProbeASN: rec.ProbeASN, NetworkName: rec.ProbeNetworkName,
		Domain: rec.Domain, Input: rec.Input, Verdict: rec.TestKeys.Verdict, Source: rec.Source,
	}
	if raw != nil {
		m.HasRaw, m.Raw = 1, strings.TrimSpace(string(raw))
	}
	m.Format, m.SweepInters = rowFormat, []string{}
	if rec.IsSweep() {
		m.Endpoint, m.SweepInters = sweepColumns(rec, j)
	}
	if rec.IsTrace() && rec.TestKeys.TraceFinding != nil {
		b, err := json.Marshal(rec.TestKeys.TraceFinding)
		if err != nil {
			// Strings, numbers, booleans and their pointers: cannot fail.
			panic("clickhouse: encoding a trace finding: " + err.Error())
		}
		m.Finding = string(b)
	}
	m.Vantage = analysis.VantageKey(rec)
	if rec.IsKzprobe() {
		m.Kzprobe = 1
	}
	if in := rec.TestKeys.Interception; in != nil {
		m.FileInterception = 1
		if in.BrowserErrorEvenWithRootInstalled {
			m.FileBrowserError = 1
		}
		if len(in.Intermediates) > 0 {
			m.FileInterSHA1 = in.Intermediates[0].SHA1
		}
	}
	judged := false
	// The records of kzprobe sweep and kzprobe trace are kept (the
	// collector's), but are in none of the tables the queries compute
	// (see notInTables): no sightings.
	sidetable := rec.IsSweep() || rec.IsTrace()
	for i, h := range rec.Handshakes() {
		if len(h.PeerCertificates) == 0 || sidetable {
			continue
		}
		m.Handshakes++
		f := j.HandshakeFacts(&h)
		s := sightingRow{
			UID: uid, HS: uint16(min(i, 65535)), TS: ts, ProbeCC: rec.ProbeCC, ProbeASN: rec.ProbeASN,
			NetworkName: rec.ProbeNetworkName, Domain: rec.Domain, ServerName: h.ServerName, Address: h.Address,
			Verdict: rec.TestKeys.Verdict, Source: rec.Source,
			InterSHA1: []string{}, InterSHA256: []string{}, InterSerial: []string{}, InterSubject: []string{},
			InterIssuer: []string{}, InterNotBefore: []int64{}, InterNotAfter: []int64{},
			InterSignerSHA1: []string{}, InterSignerName: []string{}, InterKnown: []int{},
		}
		if s.Domain == "" {
			s.Domain = h.ServerName // as Analysis.Add does
		}
		if in := f.Interception; in != nil {
			m.Intercepted = 1
			if !judged {
				// The first chain judged intercepted, as compare's
				// rejudge takes it.
				judged = true
				if len(in.Intermediates) > 0 {
					m.JudgedInterSHA1 = in.Intermediates[0].SHA1
				}
				for _, w := range f.Windows {
					if !w.Contains(rec.Time) {
						m.JudgedBrowserError = 1
					}
				}
			}
			s.Intercepted, s.Evidence, s.RootSHA1 = 1, in.Evidence, in.RootSHA1
			for k, im := range in.Intermediates {
				w := f.Windows[k]
				known := 0
				if im.Known {
					known = 1
				}
				s.InterSHA1 = append(s.InterSHA1, im.SHA1)
				s.InterSHA256 = append(s.InterSHA256, im.SHA256)
				s.InterSerial = append(s.InterSerial, im.Serial)
				s.InterSubject = append(s.InterSubject, im.Subject)
				s.InterIssuer = append(s.InterIssuer, im.Issuer)
				s.InterNotBefore = append(s.InterNotBefore, w.NotBefore.Unix())
				s.InterNotAfter = append(s.InterNotAfter, w.NotAfter.Unix())
				s.InterSignerSHA1 = append(s.InterSignerSHA1, im.SignerRootSHA1)
				s.InterSignerName = append(s.InterSignerName, im.SignerRootName)
				s.InterKnown = append(s.InterKnown, known)
				if !w.Contains(rec.Time) {
					s.Expired = 1
				}
			}
			if s.Verdict == "" {
				s.Verdict = analysis.DerivedISCA
			}
		} else if s.Verdict == "" {
			s.Verdict = analysis.DerivedNoISCA
		}
		sbuf = appendJSON(sbuf, &s)
	}
	mbuf = appendJSON(mbuf, &m)
	return mbuf, sbuf
}

// sweepColumns returns a sweep record's endpoint and, when it found the
// name intercepted or blocked, the distinct SHA-1s of the interception
// intermediates of its chains, judged by j (as the analysis judges a
// sweep's findings only).
func sweepColumns(rec *analysis.Record, j *analysis.Judge) (endpoint string, inters []string) {
	inters = []string{}
	if sk := rec.TestKeys.SNISweep; sk != nil {
		endpoint = sk.Endpoint
	}
	switch measurement.Verdict(rec.TestKeys.Verdict) {
	case measurement.VerdictSNIInterceptedISCA, measurement.VerdictSNIInterceptedOther, measurement.VerdictSNIBlocked:
	default:
		return endpoint, inters
	}
	hs := rec.Handshakes()
	for i := range hs {
		f := j.HandshakeFacts(&hs[i]) // withheld certificates judged from their facts
		if f == nil || f.Interception == nil {
			continue
		}
		in := f.Interception
		for _, im := range in.Intermediates {
			if !slices.Contains(inters, im.SHA1) {
				inters = append(inters, im.SHA1)
			}
		}
	}
	return endpoint, inters
}

func appendJSON(buf []byte, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Only strings, numbers and slices of them: cannot fail.
		panic("clickhouse: encoding a row: " + err.Error())
	}
	buf = append(buf, b...)
	return append(buf, '\n')
}
