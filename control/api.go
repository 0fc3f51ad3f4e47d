package control

// The control server's JSON API, version 1 (API.md in this folder is the
// reference a deployer reads; this file is the schema).

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"kzprobe/measurement"
	"kzprobe/probe"
	"kzprobe/targets"
)

// APIVersion is the version of the JSON API: requests carry it (or omit
// it), every answer carries it.
const APIVersion = measurement.ControlAPIVersion

// Paths served.
const (
	// CheckPath is the one measuring endpoint: POST a [CheckRequest].
	CheckPath = "/v1/check"
	// HealthPath answers GET with {"version": 1, "status": "ok"}, for a
	// load balancer; it does no work and needs no token.
	HealthPath = "/v1/health"
	// WhoAmIPath answers GET with a [WhoAmIResponse]: the client's address
	// as the server sees it, for a probe that wants to know its public
	// address (the vantage). Rate limit and token apply.
	WhoAmIPath = "/v1/whoami"
	// SNIEndpointPath answers GET with an [SNIEndpointResponse]: where
	// the server's neutral SNI endpoint listens and its key pin, for
	// `kzprobe sweep --control-server`. Rate limit and token apply; a
	// server without an endpoint answers 404 not_found.
	SNIEndpointPath = "/v1/sni-endpoint"
)

// SNIEndpointResponse is the answer to GET /v1/sni-endpoint.
type SNIEndpointResponse struct {
	// Version is APIVersion.
	Version int `json:"version"`
	// Address is the endpoint's IP address when it listens on one; empty
	// when it listens on every address of the server (":443"): the
	// client then dials the address it reached the control server at.
	Address string `json:"address"`
	// Port is the endpoint's TCP port.
	Port int `json:"port"`
	// Pin is the SHA-256 of the endpoint certificate's
	// SubjectPublicKeyInfo, "sha256:<base64>" (chain.Pin).
	Pin string `json:"pin"`
}

// WhoAmIResponse is the answer to GET /v1/whoami.
type WhoAmIResponse struct {
	// Version is APIVersion.
	Version int `json:"version"`
	// ClientAddress is the client's IP address as the server sees it.
	ClientAddress string `json:"client_address"`
}

// CheckRequest is the body of POST /v1/check.
type CheckRequest struct {
	// Version is APIVersion; zero (absent) means APIVersion.
	Version int `json:"version,omitempty"`
	// Domain is the name to hand-shake for (the SNI) and to resolve: an
	// ASCII host name with at least two labels (IDNs in their xn-- form),
	// not an IP literal; case and a trailing dot are ignored.
	Domain string `json:"domain"`
	// Port is the TLS port; zero (absent) means 443. It must be one of
	// the server's configured ports.
	Port int `json:"port,omitempty"`
	// Addresses are the IP addresses the probe's own resolver gave, at
	// most the server's limit (8 by default). Empty means: only the
	// server's own DNS answers are tried.
	Addresses []string `json:"addresses"`
	// Fingerprint is the ClientHello fingerprint (probe.Fingerprints());
	// empty means "chrome".
	Fingerprint string `json:"fingerprint,omitempty"`
}

// CheckResponse is the answer to a valid request, HTTP 200. It is the
// same type the probe records as test_keys.control.response, so the
// record keeps exactly what the server said; the type lives with the
// record format, in package measurement.
type CheckResponse = measurement.ControlResponse

// ErrorResponse is the body of every answer other than 200.
type ErrorResponse struct {
	// Version is APIVersion.
	Version int `json:"version"`
	// Error is one of the Err* codes.
	Error string `json:"error"`
	// Message says what was wrong, for a human.
	Message string `json:"message"`
}

// Error codes, each with its HTTP status (API.md has the table).
const (
	ErrBadRequest         = "bad_request"            // 400: not JSON, unknown field, bad domain, address or fingerprint
	ErrUnsupportedVersion = "unsupported_version"    // 400: version other than 1
	ErrTooManyAddresses   = "too_many_addresses"     // 400: more addresses than the server's limit
	ErrUnauthorized       = "unauthorized"           // 401: token missing or wrong
	ErrAddressNotAllowed  = "address_not_allowed"    // 403: a special-purpose address not admitted by --allow-net
	ErrPortNotAllowed     = "port_not_allowed"       // 403: a port other than the configured ones
	ErrNotFound           = "not_found"              // 404
	ErrMethodNotAllowed   = "method_not_allowed"     // 405
	ErrBodyTooLarge       = "body_too_large"         // 413
	ErrUnsupportedMedia   = "unsupported_media_type" // 415: Content-Type is not application/json
	ErrRateLimited        = "rate_limited"           // 429, with Retry-After
	ErrTooManyChecks      = "too_many_checks"        // 429, with Retry-After: the client's share of the checks in progress is taken
	ErrInternal           = "internal_error"         // 500
	ErrOverloaded         = "overloaded"             // 503, with Retry-After
)

// apiError is a refusal: its status, code and message.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func badRequest(code, format string, a ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: code, message: fmt.Sprintf(format, a...)}
}

// checkLimits are what a request is validated against.
type checkLimits struct {
	maxAddresses int
	ports        []int
	policy       *addressPolicy
}

// checkQuery is a validated request.
type checkQuery struct {
	domain      string
	port        int
	addresses   []netip.Addr // unique, unmapped, in request order
	fingerprint string
}

// parseCheckRequest decodes and validates a request body that is already
// bounded in size. Every failure is an *apiError; it never panics.
func parseCheckRequest(body io.Reader, lim checkLimits) (checkQuery, *apiError) {
	var req CheckRequest
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return checkQuery{}, &apiError{status: http.StatusRequestEntityTooLarge, code: ErrBodyTooLarge,
				message: fmt.Sprintf("request body larger than %d bytes", tooLarge.Limit)}
		}
		return checkQuery{}, badRequest(ErrBadRequest, "request body is not a JSON check request: %s", jsonErrorText(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return checkQuery{}, &apiError{status: http.StatusRequestEntityTooLarge, code: ErrBodyTooLarge,
				message: fmt.Sprintf("request body larger than %d bytes", tooLarge.Limit)}
		}
		return checkQuery{}, badRequest(ErrBadRequest, "request body holds more than one JSON value")
	}
	return validateCheckRequest(req, lim)
}

// validateCheckRequest checks a decoded request against the limits.
func validateCheckRequest(req CheckRequest, lim checkLimits) (checkQuery, *apiError) {
	if req.Version != 0 && req.Version != APIVersion {
		return checkQuery{}, badRequest(ErrUnsupportedVersion, "API version %d is not supported; this server speaks version %d", req.Version, APIVersion)
	}
	domain, err := canonicalDomain(req.Domain)
	if err != nil {
		return checkQuery{}, badRequest(ErrBadRequest, "domain: %v", err)
	}
	q := checkQuery{domain: domain, port: req.Port}
	if q.port == 0 {
		q.port = 443
	}
	if q.port < 0 || q.port > 65535 {
		return checkQuery{}, badRequest(ErrBadRequest, "port %d is not 1-65535", req.Port)
	}
	if !slices.Contains(lim.ports, q.port) {
		return checkQuery{}, &apiError{status: http.StatusForbidden, code: ErrPortNotAllowed,
			message: fmt.Sprintf("port %d is not served here; allowed: %s", q.port, joinInts(lim.ports))}
	}
	if len(req.Addresses) > lim.maxAddresses {
		return checkQuery{}, badRequest(ErrTooManyAddresses, "%d addresses; at most %d per request", len(req.Addresses), lim.maxAddresses)
	}
	for _, s := range req.Addresses {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return checkQuery{}, badRequest(ErrBadRequest, "address %q is not an IP address", truncate(s, 64))
		}
		a = a.Unmap()
		if !lim.policy.allowed(a) {
			return checkQuery{}, &apiError{status: http.StatusForbidden, code: ErrAddressNotAllowed,
				message: fmt.Sprintf("address %s is in a special-purpose range (loopback, private, link-local, multicast, CGNAT, documentation, ...) that this server does not connect to", a)}
		}
		if !slices.Contains(q.addresses, a) {
			q.addresses = append(q.addresses, a)
		}
	}
	fp := req.Fingerprint
	if fp == "" {
		fp = probe.DefaultFingerprint
	}
	if fp, err = probe.ParseFingerprint(fp); err != nil {
		return checkQuery{}, badRequest(ErrBadRequest, "fingerprint %q: want one of %s", truncate(req.Fingerprint, 32), strings.Join(probe.Fingerprints(), ", "))
	}
	q.fingerprint = fp
	return q, nil
}

// canonicalDomain lower-cases s, drops a trailing dot and accepts it only
// when it is already a normalised host name (targets.Normalize leaves it
// unchanged): no URL, port, IP literal, single label or Unicode form.
func canonicalDomain(s string) (string, error) {
	if s == "" {
		return "", errors.New("missing")
	}
	if len(s) > 254 {
		return "", errors.New("longer than 253 bytes")
	}
	d := strings.TrimSuffix(strings.ToLower(s), ".")
	t, err := targets.Normalize(d)
	if err != nil {
		return "", fmt.Errorf("%q: %w", truncate(s, 64), err)
	}
	if t.Domain != d || t.Port != 0 {
		return "", fmt.Errorf("%q is not a bare host name in ASCII form (did you mean %q?)", truncate(s, 64), t.Domain)
	}
	return d, nil
}

// jsonErrorText shortens a decoding error for the client.
func jsonErrorText(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return "empty body"
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q: want %s, got JSON %s", te.Field, te.Type, te.Value)
	}
	return truncate(err.Error(), 200)
}

// truncate cuts s to n bytes for messages that echo client input.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ",")
}

// encodeCheckRequest is the body a client sends.
func encodeCheckRequest(req CheckRequest) []byte {
	var b bytes.Buffer
	json.NewEncoder(&b).Encode(req) // cannot fail: strings and ints only
	return b.Bytes()
}
