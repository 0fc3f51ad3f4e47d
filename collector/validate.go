package collector

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"time"

	"kzprobe/measurement"
	"kzprobe/vantage"
)

// apiError is a refusal: an HTTP status, a code and a message.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func badRequest(format string, a ...any) *apiError {
	return &apiError{http.StatusBadRequest, ErrBadRequest, fmt.Sprintf(format, a...)}
}

// The spec's patterns (bk-003, 3.1).
var (
	asnRE      = regexp.MustCompile(`^AS[0-9]{1,10}$`)
	ccRE       = regexp.MustCompile(`^[A-Z]{2}$`)
	softwareRE = regexp.MustCompile(`^[0-9A-Za-z_.+-]{1,64}$`)
	testNameRE = regexp.MustCompile(`^[a-zA-Z0-9_\- ]{1,64}$`)
	versionRE  = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+$`)
	// uidRE is this collector's rule for measurement_uid, which it
	// deduplicates on: OONI's shape and kzprobe's fit in it.
	uidRE = regexp.MustCompile(`^[0-9A-Za-z_.-]{8,128}$`)
)

// ProbeIPPlaceholder is the probe_ip a submission may carry: OONI's
// placeholder, which kzprobe writes unless the volunteer opted in (or
// vantage.Scrubbed, kzprobe's mark where the placeholder was the probe's
// own address, as on loopback). A real address is refused rather than
// stored or scrubbed: the stored record is the probe's bytes, unchanged.
const ProbeIPPlaceholder = "127.0.0.1"

// Bounds of one submission's chains.
const (
	maxHandshakes = 256
	maxCertsChain = 64
)

// backendKeys are df-000 keys that the backend sets, never a probe.
var backendKeys = []string{"backend_version", "bucket_date", "id", "report_filename"}

// parseOpen checks the body of POST /report.
func parseOpen(body []byte) (*OpenRequest, *apiError) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
		return nil, badRequest("the body is not a JSON object")
	}
	// probe_ip is dropped unread (bk-003 3.1, 5).
	delete(raw, "probe_ip")
	for _, k := range []string{"content", "input_hashes", "test_helper"} {
		if v, ok := raw[k]; ok && string(v) != "null" {
			return nil, badRequest("%s is deprecated and not supported by this collector", k)
		}
	}
	var q OpenRequest
	fields := []struct {
		key string
		dst *string
		re  *regexp.Regexp
		opt bool
	}{
		{"data_format_version", &q.DataFormatVersion, versionRE, false},
		{"format", &q.Format, nil, false},
		{"probe_asn", &q.ProbeASN, asnRE, false},
		{"probe_cc", &q.ProbeCC, ccRE, false},
		{"software_name", &q.SoftwareName, softwareRE, false},
		{"software_version", &q.SoftwareVersion, softwareRE, false},
		{"test_name", &q.TestName, testNameRE, false},
		{"test_version", &q.TestVersion, softwareRE, false},
		{"test_start_time", &q.TestStartTime, nil, true},
	}
	for _, f := range fields {
		v, ok := raw[f.key]
		if !ok {
			if f.opt {
				continue
			}
			return nil, badRequest("%s is missing", f.key)
		}
		if err := json.Unmarshal(v, f.dst); err != nil {
			return nil, badRequest("%s: want a string", f.key)
		}
		if f.re != nil && !f.re.MatchString(*f.dst) {
			return nil, badRequest("%s %q does not match %s", f.key, truncate(*f.dst, 40), f.re)
		}
	}
	if q.Format != FormatJSON {
		return nil, &apiError{http.StatusUnsupportedMediaType, ErrUnsupportedMedia, fmt.Sprintf("format %q: this collector takes json only", truncate(q.Format, 16))}
	}
	if q.TestStartTime != "" {
		if _, err := time.Parse(measurement.TimeLayout, q.TestStartTime); err != nil {
			return nil, badRequest("test_start_time %q: want %s", truncate(q.TestStartTime, 40), measurement.TimeLayout)
		}
	}
	return &q, nil
}

// Submission is one measurement of POST /report/{id}, checked.
type Submission struct {
	// Content is the measurement's JSON exactly as submitted.
	Content []byte
	// Envelope fields read from Content.
	ReportID, UID, TestName, ProbeCC, ProbeASN string
	Start                                      time.Time
	// Chains are the presented chains, DER, one per handshake that
	// presented any certificate.
	Chains [][][]byte
}

// ParseSubmission checks the body of POST /report/{id} against the spec:
// an object {"format": "json", "content": {...}} whose content has
// df-000-base's top-level keys with their types (bk-003 3.2, 3 and 4),
// the report_id of the URL, a measurement_uid, no probe_ip but the
// placeholder, a start time not in the future (a day of clock skew
// allowed), and test_keys.tls_handshakes whose peer_certificates are
// certificates. now is the collector's clock.
func ParseSubmission(body []byte, reportID string, now time.Time) (*Submission, error) {
	s, e := parseSubmission(body, reportID, now)
	if e != nil {
		return nil, e
	}
	return s, nil
}

func parseSubmission(body []byte, reportID string, now time.Time) (*Submission, *apiError) {
	var env struct {
		Format  string          `json:"format"`
		Content json.RawMessage `json:"content"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, badRequest("the body is not a JSON object with format and content: %s", truncate(err.Error(), 120))
	}
	if env.Format != FormatJSON {
		return nil, badRequest("format %q: this collector takes json only", truncate(env.Format, 16))
	}
	content := bytes.TrimSpace(env.Content)
	if len(content) == 0 || content[0] != '{' {
		return nil, badRequest("content is not a JSON object")
	}
	if bytes.IndexByte(content, '\n') >= 0 || bytes.IndexByte(content, '\r') >= 0 {
		// A record is stored as one line; a JSON object spread over
		// lines would not be one.
		return nil, badRequest("content spans lines: submit each measurement as one JSON line")
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(content, &raw); err != nil {
		return nil, badRequest("content: %s", truncate(err.Error(), 120))
	}
	s := &Submission{Content: content}
	str := func(key string, re *regexp.Regexp, dst *string) *apiError {
		v, ok := raw[key]
		if !ok {
			return badRequest("content.%s is missing (df-000-base)", key)
		}
		if err := json.Unmarshal(v, dst); err != nil || string(v) == "null" {
			return badRequest("content.%s: want a string", key)
		}
		if re != nil && !re.MatchString(*dst) {
			return badRequest("content.%s %q does not match %s", key, truncate(*dst, 40), re)
		}
		return nil
	}
	var dfv, swName, swVersion, testVersion, startTime, testStart string
	checks := []struct {
		key string
		re  *regexp.Regexp
		dst *string
	}{
		{"data_format_version", versionRE, &dfv},
		{"report_id", nil, &s.ReportID},
		{"measurement_uid", uidRE, &s.UID},
		{"measurement_start_time", nil, &startTime},
		{"test_start_time", nil, &testStart},
		{"probe_asn", asnRE, &s.ProbeASN},
		{"probe_cc", ccRE, &s.ProbeCC},
		{"software_name", softwareRE, &swName},
		{"software_version", softwareRE, &swVersion},
		{"test_name", testNameRE, &s.TestName},
		{"test_version", softwareRE, &testVersion},
	}
	for _, c := range checks {
		if e := str(c.key, c.re, c.dst); e != nil {
			return nil, e
		}
	}
	if s.ReportID != reportID {
		return nil, &apiError{http.StatusBadRequest, ErrReportMismatch, "content.report_id is not the report of the URL"}
	}
	var err error
	if s.Start, err = time.Parse(measurement.TimeLayout, startTime); err != nil {
		return nil, badRequest("content.measurement_start_time %q: want %s", truncate(startTime, 40), measurement.TimeLayout)
	}
	if _, err := time.Parse(measurement.TimeLayout, testStart); err != nil {
		return nil, badRequest("content.test_start_time %q: want %s", truncate(testStart, 40), measurement.TimeLayout)
	}
	if s.Start.After(now.Add(24 * time.Hour)) {
		return nil, badRequest("content.measurement_start_time %s is in the future", startTime)
	}
	if v, ok := raw["input"]; !ok {
		return nil, badRequest("content.input is missing (df-000-base)")
	} else if string(v) != "null" && !isKind(v, '"') {
		return nil, badRequest("content.input: want a string or null")
	}
	var runtime float64
	if v, ok := raw["test_runtime"]; !ok {
		return nil, badRequest("content.test_runtime is missing (df-000-base)")
	} else if string(v) == "null" || json.Unmarshal(v, &runtime) != nil {
		return nil, badRequest("content.test_runtime: want a number")
	}
	for _, k := range []string{"annotations", "test_helpers", "extensions"} {
		if v, ok := raw[k]; ok && string(v) != "null" && !isKind(v, '{') {
			return nil, badRequest("content.%s: want an object", k)
		}
	}
	if v, ok := raw["options"]; ok && string(v) != "null" && !isKind(v, '[') {
		return nil, badRequest("content.options: want a list")
	}
	for _, k := range backendKeys {
		if _, ok := raw[k]; ok {
			return nil, badRequest("content.%s is set by the collector, never by a probe", k)
		}
	}
	if v, ok := raw["probe_ip"]; ok && string(v) != "null" {
		var ip string
		if json.Unmarshal(v, &ip) != nil || (ip != ProbeIPPlaceholder && ip != vantage.Scrubbed) {
			// Never echo the value: it may be the volunteer's address.
			return nil, &apiError{http.StatusBadRequest, ErrProbeIP, "content.probe_ip must be absent, null, " + ProbeIPPlaceholder + " or " + vantage.Scrubbed + ": this collector stores no probe address"}
		}
	}
	tk, ok := raw["test_keys"]
	if !ok || !isKind(tk, '{') {
		return nil, badRequest("content.test_keys: want an object (df-000-base)")
	}
	if s.Chains, err = chainsOf(tk); err != nil {
		return nil, &apiError{http.StatusBadRequest, ErrNotAChain, err.Error()}
	}
	return s, nil
}

// chainsOf reads test_keys.tls_handshakes[].peer_certificates. Each entry
// must be base64 binary data (df-001's BinaryData) and a chain must hold
// at least one certificate that parses as X.509: a list of blobs none of
// which is a certificate is not a chain. A chain with some malformed
// entries among real certificates is kept: a hostile middlebox presents
// such chains, and the judgement records the parse errors.
func chainsOf(testKeys json.RawMessage) ([][][]byte, error) {
	var tk struct {
		TLSHandshakes []struct {
			PeerCertificates []measurement.BinaryData `json:"peer_certificates"`
		} `json:"tls_handshakes"`
	}
	if err := json.Unmarshal(testKeys, &tk); err != nil {
		return nil, fmt.Errorf("test_keys.tls_handshakes: not a list of handshakes with peer_certificates as base64 data: %s", truncate(err.Error(), 120))
	}
	if len(tk.TLSHandshakes) > maxHandshakes {
		return nil, fmt.Errorf("test_keys.tls_handshakes: %d handshakes, more than %d", len(tk.TLSHandshakes), maxHandshakes)
	}
	var chains [][][]byte
	for i, h := range tk.TLSHandshakes {
		if len(h.PeerCertificates) == 0 {
			continue
		}
		if len(h.PeerCertificates) > maxCertsChain {
			return nil, fmt.Errorf("test_keys.tls_handshakes[%d]: %d certificates, more than %d", i, len(h.PeerCertificates), maxCertsChain)
		}
		der := make([][]byte, 0, len(h.PeerCertificates))
		parsed := 0
		for _, c := range h.PeerCertificates {
			if len(c) == 0 {
				return nil, fmt.Errorf("test_keys.tls_handshakes[%d].peer_certificates: an empty entry", i)
			}
			if _, err := x509.ParseCertificate(c); err == nil {
				parsed++
			}
			der = append(der, c)
		}
		if parsed == 0 {
			return nil, fmt.Errorf("test_keys.tls_handshakes[%d].peer_certificates: no entry is an X.509 certificate", i)
		}
		chains = append(chains, der)
	}
	return chains, nil
}

// isKind reports whether the JSON value v starts with c: '{' an object,
// '[' a list, '"' a string.
func isKind(v json.RawMessage, c byte) bool {
	v = bytes.TrimSpace(v)
	return len(v) > 0 && v[0] == c
}

// truncate cuts s to n bytes for a message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
