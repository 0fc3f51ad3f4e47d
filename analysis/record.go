package analysis

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"kzprobe/measurement"
	"kzprobe/probe/chain"
)

// Record is the part of one measurement that the analysis reads: the
// envelope of OONI's base data format (df-000-base), which kzprobe's own
// records share, and the TLS handshakes of df-006-tlshandshake. Decoding
// into it skips every other field, so a web_connectivity measurement of a
// megabyte costs one scan and a few small allocations.
type Record struct {
	// Input is the target: a URL for OONI's web_connectivity, a domain
	// for kzprobe.
	Input string `json:"input"`
	// MeasurementStartTime is in measurement.TimeLayout, UTC.
	MeasurementStartTime string `json:"measurement_start_time"`
	// TestStartTime is used when MeasurementStartTime is missing (some
	// older OONI tests).
	TestStartTime    string `json:"test_start_time"`
	ProbeASN         string `json:"probe_asn"`
	ProbeCC          string `json:"probe_cc"`
	ProbeNetworkName string `json:"probe_network_name"`
	TestName         string `json:"test_name"`
	SoftwareName     string `json:"software_name"`
	ReportID         string `json:"report_id"`
	// MeasurementUID is OONI's measurement_uid (kzprobe writes one too);
	// empty in older files. Stores deduplicate on it.
	MeasurementUID string `json:"measurement_uid"`
	TestKeys       Keys   `json:"test_keys"`

	// Source is where the record was read, "file:line" (or "file:@offset"
	// inside a multi-line JSON document). Set by the Reader.
	Source string `json:"-"`
	// Time is MeasurementStartTime parsed. Set by Normalize.
	Time time.Time `json:"-"`
	// Domain is the target's host name, lowercase: test_keys.domain for
	// kzprobe, the host of Input for OONI, else the first handshake's SNI.
	// Set by Normalize.
	Domain string `json:"-"`
}

// Keys is the part of test_keys the analysis reads.
type Keys struct {
	// Domain is kzprobe's target domain; OONI records have none.
	Domain string `json:"domain"`
	// TLSHandshakes are the handshakes of web_connectivity, urlgetter,
	// kzprobe and every test that follows df-006-tlshandshake.
	TLSHandshakes []Handshake `json:"tls_handshakes"`
	// Pings are tlsping's (ts-033) handshakes, one per ping.
	Pings []Ping `json:"pings"`
	// Verdict is kzprobe's verdict, empty for OONI.
	Verdict string `json:"verdict"`
	// Interception is kzprobe's own finding, which `compare` shows; the
	// analysis tables never trust it and judge the chain again. It is
	// test_keys.interception in records before format 0.2.0, and the
	// finding of the chain test_keys.interception_chain names since.
	Interception *chain.Interception `json:"interception"`
	// SNISweep is test_keys.sni_sweep of a `kzprobe sweep` record, nil in
	// others.
	SNISweep *SweepKeys `json:"sni_sweep"`
	// TraceFinding is test_keys.finding of a `kzprobe trace` record, its
	// lists cut to Limits.MaxEntries; nil in others.
	TraceFinding *measurement.TraceFinding `json:"-"`
}

// UnmarshalJSON decodes test_keys as the fast decoder does: Interception
// is test_keys.interception, else the finding of the chain
// test_keys.interception_chain names; TraceFinding is test_keys.finding,
// its lists cut to the default Limits.MaxEntries.
func (k *Keys) UnmarshalJSON(b []byte) error {
	type plain Keys // without this method
	var v struct {
		plain
		InterceptionChain *int            `json:"interception_chain"`
		Chains            json.RawMessage `json:"chains"`
		Finding           json.RawMessage `json:"finding"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*k = Keys(v.plain)
	if err := newDecoder(Limits{}).traceFinding(trimSpace(v.Finding), &k.TraceFinding); err != nil {
		return err
	}
	if v.InterceptionChain == nil || k.Interception != nil {
		return nil
	}
	return newDecoder(Limits{}).chainInterception(v.Chains, 0, *v.InterceptionChain, &k.Interception)
}

// Handshake is one TLS handshake (df-006-tlshandshake).
type Handshake struct {
	Address    string  `json:"address"`
	ServerName string  `json:"server_name"`
	Failure    *string `json:"failure"`
	// PeerCertificates is the presented chain, leaf first. Each entry is
	// OONI's BinaryData, {"data": base64, "format": "base64"}, or a plain
	// base64 string in older files.
	PeerCertificates []measurement.BinaryData `json:"peer_certificates"`
	// Withheld describes the certificates of PeerCertificates a kzprobe
	// record left out because they held the probe's address (their
	// entries are null): test_keys.tls_handshakes[].withheld_certificates.
	Withheld []measurement.WithheldCertificate `json:"withheld_certificates"`
}

// Ping is one tlsping ping. Its tls_handshake was a list before 2022-06-22
// (ts-033) and one object or null since.
type Ping struct {
	TLSHandshakes pingHandshakes `json:"tls_handshake"`
}

type pingHandshakes []Handshake

func (p *pingHandshakes) UnmarshalJSON(b []byte) error {
	b = trimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		*p = nil
		return nil
	case b[0] == '[':
		var hs []Handshake
		err := json.Unmarshal(b, &hs)
		*p = hs
		return err
	default:
		var h Handshake
		err := json.Unmarshal(b, &h)
		*p = []Handshake{h}
		return err
	}
}

// Handshakes returns every handshake of r: tls_handshakes, then tlsping's.
func (r *Record) Handshakes() []Handshake {
	if len(r.TestKeys.Pings) == 0 {
		return r.TestKeys.TLSHandshakes
	}
	hs := append([]Handshake(nil), r.TestKeys.TLSHandshakes...)
	for _, p := range r.TestKeys.Pings {
		hs = append(hs, p.TLSHandshakes...)
	}
	return hs
}

// IsKzprobe reports whether r was written by kzprobe (it then carries a
// verdict).
func (r *Record) IsKzprobe() bool {
	return r.TestName == measurement.TestName || r.SoftwareName == measurement.SoftwareName
}

// Errors from Normalize.
var (
	ErrNoTime = errors.New("analysis: no measurement_start_time")
	ErrNotObj = errors.New("analysis: not a measurement object")
)

// Normalize parses the measurement time and derives Domain and the ASN's
// canonical form ("AS0" when missing). A record without a valid time is an
// error: it cannot be placed against validity windows.
func (r *Record) Normalize() error {
	ts := r.MeasurementStartTime
	if ts == "" {
		ts = r.TestStartTime
	}
	if ts == "" {
		return ErrNoTime
	}
	t, err := parseTime(ts)
	if err != nil {
		return fmt.Errorf("analysis: measurement_start_time %q: %w", truncate(ts, 40), err)
	}
	r.Time = t
	r.ProbeASN = NormalizeASN(r.ProbeASN)
	r.Domain = strings.ToLower(r.TestKeys.Domain)
	if r.Domain == "" {
		r.Domain = hostOf(r.Input)
	}
	if r.Domain == "" {
		for _, h := range r.Handshakes() {
			if h.ServerName != "" {
				r.Domain = strings.ToLower(h.ServerName)
				break
			}
		}
	}
	return nil
}

// parseTime parses measurement.TimeLayout (UTC) with a
// fixed-position fast path, falling back to time.Parse for RFC 3339.
func parseTime(s string) (time.Time, error) {
	if len(s) == 19 && s[4] == '-' && s[7] == '-' && (s[10] == ' ' || s[10] == 'T') && s[13] == ':' && s[16] == ':' {
		n := func(i, j int) int {
			v := 0
			for k := i; k < j; k++ {
				c := s[k]
				if c < '0' || c > '9' {
					return -1
				}
				v = v*10 + int(c-'0')
			}
			return v
		}
		y, mo, d, h, mi, se := n(0, 4), n(5, 7), n(8, 10), n(11, 13), n(14, 16), n(17, 19)
		if y >= 0 && mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h >= 0 && h < 24 && mi >= 0 && mi < 60 && se >= 0 && se < 60 {
			t := time.Date(y, time.Month(mo), d, h, mi, se, 0, time.UTC)
			if t.Day() == d { // rejects 2021-02-30
				return t, nil
			}
		}
		return time.Time{}, errors.New("not a valid date and time")
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, errors.New("want \"" + measurement.TimeLayout + "\"")
	}
	return t.UTC(), nil
}

// NormalizeASN returns "AS<number>" for "AS123", "as123" or "123", and
// "AS0" for anything empty.
func NormalizeASN(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return "AS0"
	}
	if len(s) > 2 && (s[0] == 'A' || s[0] == 'a') && (s[1] == 'S' || s[1] == 's') {
		if s[0] == 'A' && s[1] == 'S' {
			return s
		}
		return "AS" + s[2:]
	}
	if _, err := strconv.ParseUint(s, 10, 32); err == nil {
		return "AS" + s
	}
	return s
}

// asnNumber is the number of an "AS123" string, for sorting; -1 when it
// has none.
func asnNumber(asn string) int64 {
	if len(asn) > 2 && asn[:2] == "AS" {
		if n, err := strconv.ParseInt(asn[2:], 10, 64); err == nil {
			return n
		}
	}
	return -1
}

// hostOf returns the lowercase host of a URL or "host[:port]" input.
func hostOf(in string) string {
	if in == "" {
		return ""
	}
	s := in
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	if i := strings.IndexAny(s, "/?#"); i >= 0 {
		s = s[:i]
	}
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		s = s[i+1:]
	}
	if strings.HasPrefix(s, "[") { // [v6]:port
		if i := strings.IndexByte(s, ']'); i > 0 {
			return strings.ToLower(s[1:i])
		}
	}
	if i := strings.LastIndexByte(s, ':'); i >= 0 && strings.Count(s, ":") == 1 {
		s = s[:i]
	}
	return strings.ToLower(s)
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// truncate shortens s to n bytes for messages, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
