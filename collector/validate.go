package collector

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
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

// bodyPrefix starts the body kzprobe's client sends; the content and a
// closing brace follow.
const bodyPrefix = `{"format":"json","content":`

// content is what parseSubmission reads of a measurement, in one pass:
// the envelope's strings (nil when missing or null), the other df-000
// keys as raw values, and the chains of test_keys.
type content struct {
	DataFormatVersion    *string `json:"data_format_version"`
	ReportID             *string `json:"report_id"`
	MeasurementUID       *string `json:"measurement_uid"`
	MeasurementStartTime *string `json:"measurement_start_time"`
	TestStartTime        *string `json:"test_start_time"`
	ProbeASN             *string `json:"probe_asn"`
	ProbeCC              *string `json:"probe_cc"`
	SoftwareName         *string `json:"software_name"`
	SoftwareVersion      *string `json:"software_version"`
	TestName             *string `json:"test_name"`
	TestVersion          *string `json:"test_version"`

	Input       json.RawMessage `json:"input"`
	TestRuntime json.RawMessage `json:"test_runtime"`
	Annotations json.RawMessage `json:"annotations"`
	TestHelpers json.RawMessage `json:"test_helpers"`
	Extensions  json.RawMessage `json:"extensions"`
	Options     json.RawMessage `json:"options"`
	ProbeIP     json.RawMessage `json:"probe_ip"`

	BackendVersion json.RawMessage `json:"backend_version"`
	BucketDate     json.RawMessage `json:"bucket_date"`
	ID             json.RawMessage `json:"id"`
	ReportFilename json.RawMessage `json:"report_filename"`

	TestKeys *struct {
		TLSHandshakes []handshake `json:"tls_handshakes"`
	} `json:"test_keys"`
}

// handshake is the part of a df-006 handshake the collector reads.
type handshake struct {
	PeerCertificates []measurement.BinaryData `json:"peer_certificates"`
}

func parseSubmission(body []byte, reportID string, now time.Time) (*Submission, *apiError) {
	// The shape kzprobe's client sends, {"format":"json","content":X},
	// is read in one pass over X; any other body is parsed whole first.
	var c content
	var raw []byte
	var err error
	if inner, ok := bytes.CutPrefix(body, []byte(bodyPrefix)); ok && bytes.HasSuffix(inner, []byte("}")) {
		raw = bytes.TrimSpace(inner[:len(inner)-1])
		err = json.Unmarshal(raw, &c)
	}
	if _, syntax := errors.AsType[*json.SyntaxError](err); raw == nil || syntax {
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
		raw = bytes.TrimSpace(env.Content)
		if len(raw) == 0 || raw[0] != '{' {
			return nil, badRequest("content is not a JSON object")
		}
		c = content{}
		err = json.Unmarshal(raw, &c)
	}
	if len(raw) == 0 || raw[0] != '{' {
		return nil, badRequest("content is not a JSON object")
	}
	if bytes.IndexByte(raw, '\n') >= 0 || bytes.IndexByte(raw, '\r') >= 0 {
		// A record is stored as one line; a JSON object spread over
		// lines would not be one.
		return nil, badRequest("content spans lines: submit each measurement as one JSON line")
	}
	// content is valid JSON here: what Unmarshal can still refuse is a
	// value of the wrong type, or peer_certificates that are not base64
	// (measurement.BinaryData's error).
	if err != nil {
		var ute *json.UnmarshalTypeError
		switch {
		case errors.As(err, &ute) && strings.HasPrefix(ute.Field, "test_keys.tls_handshakes"):
			return nil, &apiError{http.StatusBadRequest, ErrNotAChain, fmt.Sprintf("content.%s: not a list of handshakes with peer_certificates as base64 data", ute.Field)}
		case errors.As(err, &ute):
			return nil, badRequest("content.%s: a JSON %s where df-000-base wants another type", ute.Field, ute.Value)
		}
		return nil, &apiError{http.StatusBadRequest, ErrNotAChain, "content.test_keys.tls_handshakes: peer_certificates that are not base64 data: " + truncate(err.Error(), 80)}
	}
	s := &Submission{Content: raw}
	strs := []struct {
		key string
		v   *string
		re  *regexp.Regexp
		dst *string
	}{
		{"data_format_version", c.DataFormatVersion, versionRE, nil},
		{"report_id", c.ReportID, nil, &s.ReportID},
		{"measurement_uid", c.MeasurementUID, uidRE, &s.UID},
		{"measurement_start_time", c.MeasurementStartTime, nil, nil},
		{"test_start_time", c.TestStartTime, nil, nil},
		{"probe_asn", c.ProbeASN, asnRE, &s.ProbeASN},
		{"probe_cc", c.ProbeCC, ccRE, &s.ProbeCC},
		{"software_name", c.SoftwareName, softwareRE, nil},
		{"software_version", c.SoftwareVersion, softwareRE, nil},
		{"test_name", c.TestName, testNameRE, &s.TestName},
		{"test_version", c.TestVersion, softwareRE, nil},
	}
	for _, f := range strs {
		if f.v == nil {
			return nil, badRequest("content.%s is missing or null (df-000-base)", f.key)
		}
		if f.re != nil && !f.re.MatchString(*f.v) {
			return nil, badRequest("content.%s %q does not match %s", f.key, truncate(*f.v, 40), f.re)
		}
		if f.dst != nil {
			*f.dst = *f.v
		}
	}
	if s.ReportID != reportID {
		return nil, &apiError{http.StatusBadRequest, ErrReportMismatch, "content.report_id is not the report of the URL"}
	}
	if s.Start, err = time.Parse(measurement.TimeLayout, *c.MeasurementStartTime); err != nil {
		return nil, badRequest("content.measurement_start_time %q: want %s", truncate(*c.MeasurementStartTime, 40), measurement.TimeLayout)
	}
	if _, err := time.Parse(measurement.TimeLayout, *c.TestStartTime); err != nil {
		return nil, badRequest("content.test_start_time %q: want %s", truncate(*c.TestStartTime, 40), measurement.TimeLayout)
	}
	if s.Start.After(now.Add(24 * time.Hour)) {
		return nil, badRequest("content.measurement_start_time %s is in the future", *c.MeasurementStartTime)
	}
	switch {
	case c.Input == nil:
		return nil, badRequest("content.input is missing (df-000-base)")
	case string(c.Input) != "null" && !isKind(c.Input, '"'):
		return nil, badRequest("content.input: want a string or null")
	}
	if c.TestRuntime == nil || !isNumber(c.TestRuntime) {
		return nil, badRequest("content.test_runtime: want a number (df-000-base)")
	}
	for _, f := range []struct {
		key  string
		v    json.RawMessage
		kind byte
		want string
	}{
		{"annotations", c.Annotations, '{', "an object"},
		{"test_helpers", c.TestHelpers, '{', "an object"},
		{"extensions", c.Extensions, '{', "an object"},
		{"options", c.Options, '[', "a list"},
	} {
		if f.v != nil && string(f.v) != "null" && !isKind(f.v, f.kind) {
			return nil, badRequest("content.%s: want %s", f.key, f.want)
		}
	}
	for _, f := range []struct {
		key string
		v   json.RawMessage
	}{{"backend_version", c.BackendVersion}, {"bucket_date", c.BucketDate}, {"id", c.ID}, {"report_filename", c.ReportFilename}} {
		if f.v != nil {
			return nil, badRequest("content.%s is set by the collector, never by a probe", f.key)
		}
	}
	if c.ProbeIP != nil && bytes.Count(bytes.ToLower(raw), []byte(`"probe_ip"`)) > 1 {
		// Two probe_ip keys (or one in another case): one could hide
		// the other from this check.
		return nil, &apiError{http.StatusBadRequest, ErrProbeIP, "content has more than one probe_ip key"}
	}
	if c.ProbeIP != nil && string(c.ProbeIP) != "null" {
		var ip string
		if json.Unmarshal(c.ProbeIP, &ip) != nil || (ip != ProbeIPPlaceholder && ip != vantage.Scrubbed) {
			// Never echo the value: it may be the volunteer's address.
			return nil, &apiError{http.StatusBadRequest, ErrProbeIP, "content.probe_ip must be absent, null, " + ProbeIPPlaceholder + " or " + vantage.Scrubbed + ": this collector stores no probe address"}
		}
	}
	if c.TestKeys == nil {
		return nil, badRequest("content.test_keys: want an object (df-000-base)")
	}
	if s.Chains, err = chainsOf(c.TestKeys.TLSHandshakes); err != nil {
		return nil, &apiError{http.StatusBadRequest, ErrNotAChain, err.Error()}
	}
	return s, nil
}

// isNumber reports whether the JSON value v is a number.
func isNumber(v json.RawMessage) bool {
	v = bytes.TrimSpace(v)
	return len(v) > 0 && (v[0] == '-' || (v[0] >= '0' && v[0] <= '9'))
}

// chainsOf checks the peer_certificates of each handshake. A chain must
// hold at least one certificate that parses as X.509: a list of blobs none
// of which is a certificate is not a chain. A chain with some malformed
// entries among real certificates is kept: a hostile middlebox presents
// such chains, and the judgement records the parse errors.
func chainsOf(handshakes []handshake) ([][][]byte, error) {
	if len(handshakes) > maxHandshakes {
		return nil, fmt.Errorf("test_keys.tls_handshakes: %d handshakes, more than %d", len(handshakes), maxHandshakes)
	}
	var chains [][][]byte
	for i, h := range handshakes {
		if len(h.PeerCertificates) == 0 {
			continue
		}
		if len(h.PeerCertificates) > maxCertsChain {
			return nil, fmt.Errorf("test_keys.tls_handshakes[%d]: %d certificates, more than %d", i, len(h.PeerCertificates), maxCertsChain)
		}
		der := make([][]byte, 0, len(h.PeerCertificates))
		parsed := false
		for _, c := range h.PeerCertificates {
			if len(c) == 0 {
				return nil, fmt.Errorf("test_keys.tls_handshakes[%d].peer_certificates: an empty entry", i)
			}
			if !parsed && isCertificate(c) {
				parsed = true
			}
			der = append(der, c)
		}
		if !parsed {
			return nil, fmt.Errorf("test_keys.tls_handshakes[%d].peer_certificates: no entry is an X.509 certificate", i)
		}
		chains = append(chains, der)
	}
	return chains, nil
}

// knownCerts remembers the SHA-256 of certificates that parsed, so that
// the same chain submitted by many probes is parsed once. It is bounded:
// cleared when full.
var knownCerts = struct {
	sync.Mutex
	m map[[32]byte]struct{}
}{m: map[[32]byte]struct{}{}}

const maxKnownCerts = 1 << 14

// isCertificate reports whether der parses as an X.509 certificate.
func isCertificate(der []byte) bool {
	sum := sha256.Sum256(der)
	knownCerts.Lock()
	_, ok := knownCerts.m[sum]
	knownCerts.Unlock()
	if ok {
		return true
	}
	if _, err := x509.ParseCertificate(der); err != nil {
		return false
	}
	knownCerts.Lock()
	if len(knownCerts.m) >= maxKnownCerts {
		clear(knownCerts.m)
	}
	knownCerts.m[sum] = struct{}{}
	knownCerts.Unlock()
	return true
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
