package collector

// The wire types of OONI's collector protocol (ooni/spec
// backends/bk-003-collector.md, version 2.0.0), as this collector speaks
// it.

// Paths of the API. ReportPath opens a report; ReportPath + "/" + id
// appends a measurement; ReportPath + "/" + id + ClosePath closes it.
const (
	ReportPath = "/report"
	ClosePath  = "/close"
	HealthPath = "/health"
	// MeasurementPath takes one measurement in a report of its own
	// (bk-003 3.4).
	MeasurementPath = "/measurement"
)

// BackendVersion is the backend_version the collector answers with.
const BackendVersion = "kzprobe-collector-1.0.0"

// FormatJSON is the only report format this collector takes (the spec
// lets a collector drop YAML).
const FormatJSON = "json"

// OpenRequest is the body of POST /report (spec 3.1). Deprecated fields
// (content, input_hashes, test_helper) are refused when set, as the spec
// allows; probe_ip is read only to be dropped.
type OpenRequest struct {
	DataFormatVersion string `json:"data_format_version"`
	Format            string `json:"format"`
	ProbeASN          string `json:"probe_asn"`
	ProbeCC           string `json:"probe_cc"`
	SoftwareName      string `json:"software_name"`
	SoftwareVersion   string `json:"software_version"`
	TestName          string `json:"test_name"`
	TestStartTime     string `json:"test_start_time,omitempty"`
	TestVersion       string `json:"test_version"`
}

// OpenResponse is the answer to POST /report.
type OpenResponse struct {
	BackendVersion   string   `json:"backend_version"`
	ReportID         string   `json:"report_id"`
	SupportedFormats []string `json:"supported_formats"`
}

// UpdateResponse is the answer to POST /report/{id}. MeasurementID is the
// record's measurement_uid; Chains counts the handshakes whose chain the
// collector judged, Interception how many of those lead to an
// interception root by its own judgement (the submitted one is never
// read).
type UpdateResponse struct {
	MeasurementID string `json:"measurement_id"`
	Chains        int    `json:"chains"`
	Interception  int    `json:"interception"`
}

// SingleResponse is the answer to POST /measurement.
type SingleResponse struct {
	MeasurementID string `json:"measurement_id"`
	ReportID      string `json:"report_id"`
}

// CloseResponse is the answer to POST /report/{id}/close.
type CloseResponse struct {
	Status string `json:"status"`
}

// ErrorResponse is the body of every refusal: Error is a code from the
// list below, Message says what was wrong in words.
type ErrorResponse struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// Error codes of ErrorResponse.
const (
	ErrBadRequest       = "bad_request"        // 400: not JSON, not an object, a bad field
	ErrNotAChain        = "not_a_chain"        // 400: peer_certificates that are not certificates
	ErrProbeIP          = "probe_ip"           // 400: a probe_ip other than the placeholder
	ErrReportMismatch   = "report_mismatch"    // 400: content's report_id, test_name, probe_cc or probe_asn not the report's
	ErrUnauthorized     = "unauthorized"       // 401
	ErrNotFound         = "not_found"          // 404: no such path, or no such report
	ErrReportClosed     = "report_closed"      // 410: closed, or stale (inactive past StaleAfter)
	ErrMethodNotAllowed = "method_not_allowed" // 405
	ErrBodyTooLarge     = "body_too_large"     // 413
	ErrUnsupportedMedia = "unsupported_media"  // 415: a Content-Encoding, or YAML
	ErrRateLimited      = "rate_limited"       // 429
	ErrOverloaded       = "overloaded"         // 503: too many requests in progress
	ErrStorage          = "storage"            // 503: the store failed; nothing was acknowledged
	ErrInternal         = "internal"           // 500
)
