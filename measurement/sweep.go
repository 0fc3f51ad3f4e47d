package measurement

// The records of `kzprobe sweep` (package sweep): the same envelope and
// the same test_keys as kzprobe_tls_mitm, under a test name of their own,
// with the sweep's facts in test_keys.sni_sweep and a verdict of their own
// vocabulary.
//
// A sweep record's test_keys hold, for one name:
//
//   - domain: the name, sent as the SNI; port: the endpoint's port;
//   - queries, control_queries, dns_consistency, control: null (a sweep
//     resolves nothing);
//   - tcp_connect: the connect to the endpoint; tls_handshakes: the
//     handshake with that SNI (server_name), every presented certificate
//     as DER; chains: its judgement by package chain, as in
//     kzprobe_tls_mitm (null when no certificate came);
//     interception_chain: the chain with an interception finding, null
//     when none. A handshake that failed before any certificate (reset,
//     EOF, alert, timeout) is tried a second time once the control
//     answered: then each list has two entries, and the second decides;
//   - sni_sweep ([SNISweep]): the endpoint, its pin, the pin of what was
//     presented, the control SNI and the control handshake that confirmed
//     a verdict other than clean;
//   - verdict: one of [SweepVerdicts]; verdict_reason, a few words why.

// SweepTestName is the test_name of `kzprobe sweep`'s records.
const SweepTestName = "kzprobe_sni_sweep"

// SweepTestVersion is the version of the sweep's record format and
// method; bump it as TestVersion.
const SweepTestVersion = "0.1.0"

// The sweep's verdicts (test_keys.verdict of a kzprobe_sni_sweep record).
// The vocabulary is closed and stable: readers may switch on it.
const (
	// VerdictSNIInterceptedISCA: for this SNI the endpoint's address
	// presented a chain that is not the endpoint's (the pin does not
	// match) and that leads to a known ISCA/Qaznet root, while the
	// control SNI got the endpoint's own certificate. The chain's
	// judgement (chains[0]) names the root, the intermediates, the
	// evidence and whether a browser errs even with the root installed.
	VerdictSNIInterceptedISCA Verdict = "sni_intercepted_isca"
	// VerdictSNIInterceptedOther: a chain that is not the endpoint's and
	// not the ISCA PKI, while the control SNI got the endpoint's own.
	VerdictSNIInterceptedOther Verdict = "sni_intercepted_other"
	// VerdictSNIBlocked: the handshake for this SNI failed (reset, EOF,
	// alert, timeout) while a control handshake right after it succeeded
	// with the endpoint's own certificate.
	VerdictSNIBlocked Verdict = "sni_blocked"
	// VerdictClean: the endpoint's own certificate (the pin matches), and
	// the handshake completed.
	VerdictClean Verdict = "clean"
	// VerdictError (shared with kzprobe_tls_mitm): the sweep could not
	// decide: the control SNI failed too (a dead, blocked or changed
	// endpoint), the TCP connect failed before any SNI was sent, or the
	// probe's own failure (--allow-net, out of file descriptors).
)

// SweepVerdicts returns the sweep's verdict vocabulary.
func SweepVerdicts() []Verdict {
	return []Verdict{VerdictSNIInterceptedISCA, VerdictSNIInterceptedOther, VerdictSNIBlocked, VerdictClean, VerdictError}
}

// Sweep reason codes (SNISweep.ReasonCode): which of the sweep's rules
// decided the verdict.
const (
	// SweepPinMatch: the endpoint's own certificate, handshake done (clean).
	SweepPinMatch = "pin_match"
	// SweepIntercepted: another certificate, the control confirmed the
	// endpoint (sni_intercepted_isca or sni_intercepted_other).
	SweepIntercepted = "intercepted"
	// SweepBlocked: the handshake failed, the control succeeded after it
	// (sni_blocked).
	SweepBlocked = "blocked"
	// SweepControlFailed: the control SNI failed too, or got another
	// certificate, so nothing can be said about this name (error).
	SweepControlFailed = "control_failed"
	// SweepConnectFailed: the TCP connect failed, before any SNI was sent
	// (error).
	SweepConnectFailed = "connect_failed"
	// SweepProbeFault: the probe's own failure, not the network's: its
	// guard refused the endpoint, it ran out of file descriptors (error).
	SweepProbeFault = "probe_fault"
)

// SNISweep is a sweep record's own facts (test_keys.sni_sweep; absent in
// kzprobe_tls_mitm records).
type SNISweep struct {
	// Endpoint is the neutral endpoint's "ip:port", the same for every
	// name of a sweep.
	Endpoint string `json:"endpoint"`
	// EndpointPin is the endpoint's key pin, "sha256:<base64>" (the
	// SHA-256 of its certificate's SubjectPublicKeyInfo, chain.Pin).
	EndpointPin string `json:"endpoint_pin"`
	// PinSource says where the pin came from: "control_server" (the
	// control API's GET /v1/sni-endpoint) or "flag" (--endpoint-pin).
	PinSource string `json:"pin_source"`
	// PresentedPin is the pin of the first certificate presented for
	// this SNI, "" when none came (or it did not parse).
	PresentedPin string `json:"presented_pin"`
	// PinMatch is whether PresentedPin is EndpointPin; null when no
	// certificate came.
	PinMatch *bool `json:"pin_match"`
	// Hello is the ClientHello sent: a fingerprint name (chrome, ...), or
	// "tls12" (TLS 1.2 only: the certificate comes in clear).
	Hello string `json:"hello"`
	// ControlSNI is the sweep's control name, one nobody blocks.
	ControlSNI string `json:"control_sni"`
	// Control is the control handshake made right after this name's, to
	// confirm the endpoint when this name's result was not clean; null
	// when none was needed.
	Control *SweepControl `json:"control"`
	// ReasonCode is the rule that decided the verdict (the Sweep*
	// constants: pin_match, intercepted, blocked, control_failed,
	// connect_failed, probe_fault).
	ReasonCode string `json:"reason_code"`
}

// SweepControl is one control handshake: the control SNI to the same
// endpoint, with the same hello.
type SweepControl struct {
	// TCPConnect and TLSHandshake are the control's connect and
	// handshake; TLSHandshake is null when the connect failed. Its
	// peer_certificates are left out (null) when the pin matched: they
	// are the endpoint's own.
	TCPConnect   TCPConnect    `json:"tcp_connect"`
	TLSHandshake *TLSHandshake `json:"tls_handshake"`
	// PresentedPin and PinMatch are as in SNISweep, for the control.
	PresentedPin string `json:"presented_pin"`
	PinMatch     *bool  `json:"pin_match"`
	// OK is whether the control confirmed the endpoint: the handshake
	// completed with the endpoint's own certificate.
	OK bool `json:"ok"`
}
