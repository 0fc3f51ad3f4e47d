package measurement

// The control server's view: a control server outside the local network
// connects to the locally resolved addresses with the same SNI and reports
// the chain it was served. These are the types of that exchange as the
// measurement records it (test_keys.control) and as the server sends it
// (control/API.md); the server and its client live in package control, the
// engine's side of the exchange (probe.ControlServer) in probe.

import (
	"net/netip"

	"kzprobe/probe/chain"
	"kzprobe/probe/failure"
)

// ControlAPIVersion is the version of the control server's JSON API that
// [ControlResponse] is (control/API.md).
const ControlAPIVersion = 1

// Sources of a [ControlEndpoint] address.
const (
	// ControlSourceClient: the probe submitted the address (a local
	// resolver's answer).
	ControlSourceClient = "client"
	// ControlSourceDNS: the control server's own resolver answered it.
	ControlSourceDNS = "dns"
)

// ControlRequest is what the probe asks a control server about one target.
type ControlRequest struct {
	// Domain is the target, sent as the SNI.
	Domain string
	// Port is the TLS port.
	Port int
	// Addresses are the locally resolved addresses to try from outside.
	Addresses []netip.Addr
	// Fingerprint is the ClientHello fingerprint the server uses; empty
	// means the server's default ("chrome").
	Fingerprint string
	// NotChecked are the locally resolved addresses the caller left out
	// (special-purpose ones), for the report to record.
	NotChecked []ControlNotChecked
}

// ControlNotChecked is a locally resolved address that the probe did not
// submit to the control server, and why: the server would refuse the
// whole request for it (403), or could only reach something else there.
type ControlNotChecked struct {
	// Address is the IP address.
	Address string `json:"address"`
	// Reason is one of the NotChecked* reasons.
	Reason string `json:"reason"`
}

// Reasons a locally resolved address is not submitted to a control server.
const (
	// NotCheckedSpecialPurpose: a special-purpose address (a bogon:
	// loopback, private, link-local, documentation, ...), which a control
	// server does not connect to.
	NotCheckedSpecialPurpose = "special_purpose"
	// NotCheckedIPv6Transition: an IPv6 address that embeds an IPv4 one
	// (NAT64, 6to4, Teredo, IPv4-compatible, IPv4-translated). It names
	// a gateway or relay of the probe's network rather than the site, so
	// the outside view of it says nothing of the site; the server's own
	// answers give the site's addresses instead.
	NotCheckedIPv6Transition = "ipv6_transition"
	// NotCheckedOverLimit: beyond the most addresses one request may
	// submit.
	NotCheckedOverLimit = "over_limit"
)

// ControlReport is test_keys.control: what one control server said about
// the target, or why it said nothing.
type ControlReport struct {
	// Server is the URL of the control server asked.
	Server string `json:"server"`
	// Addresses are the addresses submitted, in order.
	Addresses []string `json:"addresses"`
	// NotChecked are the locally resolved addresses not submitted, each
	// with its reason; the server's own answers may still include them.
	NotChecked []ControlNotChecked `json:"not_checked"`
	// Failure is null when the server answered with a response for this
	// target. Otherwise it is the transport failure (e.g.
	// generic_timeout_error, ssl_unknown_authority) or "unknown_failure:
	// control server answered HTTP <status> (<error code>)".
	Failure *string `json:"failure"`
	// StatusCode is the HTTP status of the last answer, 0 when none arrived.
	StatusCode int `json:"status_code"`
	// ErrorCode is the server's JSON error code ("rate_limited", ...) when
	// it refused the request, "" otherwise.
	ErrorCode string `json:"error_code"`
	// Attempts counts the requests sent (a 429 or 503 with Retry-After
	// within the deadline is retried).
	Attempts int `json:"attempts"`
	// T0 and T are seconds since measurement start.
	T0 float64 `json:"t0"`
	T  float64 `json:"t"`
	// Response is the server's answer as it gave it, null on failure.
	Response *ControlResponse `json:"response"`
}

// ControlResponse is a control server's answer to POST /v1/check, API
// version 1 (control/API.md). Times inside (t0, t) are seconds since the
// server started on the request.
type ControlResponse struct {
	// Version is ControlAPIVersion.
	Version int `json:"version"`
	// Domain, Port and Fingerprint are the request's, normalised.
	Domain      string `json:"domain"`
	Port        int    `json:"port"`
	Fingerprint string `json:"fingerprint"`
	// ClientAddress is the client's address as the server saw it. The
	// probe's record keeps it only when the user opted in to recording the
	// probe's address (Envelope.ProbeIP, --include-ip); otherwise the
	// engine empties it before the record is written.
	ClientAddress string `json:"client_address"`
	// Queries are the server's own DNS round trips for Domain (A and
	// AAAA), through its configured resolver.
	Queries []DNSQuery `json:"queries"`
	// Endpoints are the addresses tried: the submitted ones in request
	// order, then the server's own answers not already among them.
	Endpoints []ControlEndpoint `json:"endpoints"`
	// TestRuntime is the seconds the server spent on the request.
	TestRuntime float64 `json:"test_runtime"`
}

// ControlEndpoint is one address a control server tried: a TCP connect
// and, when it succeeded, one TLS handshake with SNI = the domain, and the
// server's judgement of the chain presented.
type ControlEndpoint struct {
	// Address is the IP address.
	Address string `json:"address"`
	// Sources say where the address came from: ControlSourceClient,
	// ControlSourceDNS or both.
	Sources []string `json:"sources"`
	// TCPConnect is the connect. An address in a special-purpose range
	// that the server does not admit fails as blocked_by_allow_net,
	// without a packet sent.
	TCPConnect TCPConnect `json:"tcp_connect"`
	// TLSHandshake is null when the connect failed.
	TLSHandshake *TLSHandshake `json:"tls_handshake"`
	// Chain is the server's judgement of the presented chain against its
	// own trust store, at its own clock; null when no certificate came.
	Chain *chain.Judgement `json:"chain"`
}

// Endpoint returns the endpoint for ip, nil when the server did not try
// it or gave no response.
func (r *ControlReport) Endpoint(ip netip.Addr) *ControlEndpoint {
	if r == nil || r.Response == nil {
		return nil
	}
	ip = ip.Unmap()
	for i := range r.Response.Endpoints {
		e := &r.Response.Endpoints[i]
		if a, err := netip.ParseAddr(e.Address); err == nil && a.Unmap() == ip {
			return e
		}
	}
	return nil
}

// Trusted reports whether the endpoint presented a chain that the server
// verified for the domain.
func (e *ControlEndpoint) Trusted() bool {
	return e != nil && e.Chain != nil && e.Chain.Trusted
}

// Attempted reports whether the server tried the endpoint at all, i.e. did
// not refuse it by its own policy (blocked_by_allow_net).
func (e *ControlEndpoint) Attempted() bool {
	f := e.TCPConnect.Status.Failure
	return f == nil || *f != failure.BlockedByAllowNet
}

// Completed reports whether the endpoint's TLS handshake completed.
func (e *ControlEndpoint) Completed() bool {
	return e.TLSHandshake != nil && e.TLSHandshake.Failure == nil
}

// Leaf returns the endpoint's first presented certificate, nil when none.
func (e *ControlEndpoint) Leaf() []byte {
	if e == nil || e.TLSHandshake == nil || len(e.TLSHandshake.PeerCertificates) == 0 {
		return nil
	}
	return e.TLSHandshake.PeerCertificates[0]
}

// Failure returns the endpoint's failure: the connect's, else the
// handshake's, else "" when both succeeded.
func (e *ControlEndpoint) Failure() string {
	if f := e.TCPConnect.Status.Failure; f != nil {
		return *f
	}
	if e.TLSHandshake != nil && e.TLSHandshake.Failure != nil {
		return *e.TLSHandshake.Failure
	}
	return ""
}
