package measurement

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"

	"kzprobe/probe/chain"
)

// TestName is the test_name of every kzprobe measurement.
const TestName = "kzprobe_tls_mitm"

// TestVersion is the version of the measurement format and method, in
// semantic versioning. Bump it when a field is added, removed or renamed,
// or its type or meaning changes. 0.2.0: OONI's base data format version,
// test helpers, options and extensions; OONI's report_id and
// measurement_uid shapes; input as given; DNS raw_response a base64 string
// and the message ID named message_id; tls_handshakes' tags; serials in hex
// too; test_keys.interception replaced by interception_chain.
const TestVersion = "0.2.0"

// SoftwareName is the software_name of every kzprobe measurement.
const SoftwareName = "kzprobe"

// DataFormatVersion is the version of OONI's base data format
// (df-000-base) that the envelope follows.
const DataFormatVersion = "0.2.0"

// Extensions names the versions of OONI's test-template data formats that
// test_keys follow, as OONI writes them in "extensions": dnst
// (df-002-dnst: queries), tcpconnect (df-005-tcpconnect: tcp_connect) and
// tlshandshake (df-006-tlshandshake: tls_handshakes).
func Extensions() map[string]int64 {
	return map[string]int64{"dnst": 0, "tcpconnect": 0, "tlshandshake": 0}
}

// TimeLayout is the layout of the record's times (measurement_start_time,
// test_start_time), always UTC, as OONI writes them.
const TimeLayout = "2006-01-02 15:04:05"

// FormatTime formats t as the record does: UTC, in TimeLayout.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// Measurement is one target's record: one JSON object, one line of the
// output. Its envelope follows OONI's base data format (df-000-base) so OONI
// tooling reads it; TestKeys holds kzprobe's observations. The envelope's
// fields are promoted from [Envelope], so the JSON object is flat, its keys
// in the order of Envelope's fields, then test_keys.
type Measurement struct {
	Envelope
	TestKeys TestKeys `json:"test_keys"`
}

// Envelope is a record's envelope without its test_keys, as OONI's base
// data format (df-000-base) has it: the fields every kzprobe record shares,
// [Measurement] as [Trace], so that a reader of the envelope (report_id,
// probe_asn, test_name) reads every kind of record alike.
type Envelope struct {
	// DataFormatVersion is DataFormatVersion.
	DataFormatVersion string `json:"data_format_version"`
	// Input is the target as it was given: a domain, "domain:port" or a
	// URL with its scheme and path ("https://example.kz/news"). The name
	// measured is TestKeys.Domain, the port TestKeys.Port.
	Input string `json:"input"`
	// ReportID identifies the run; every measurement of one run shares
	// it. It has the shape of the IDs OONI's collectors assign (see
	// probe.NewReportID).
	ReportID string `json:"report_id"`
	// MeasurementUID identifies this record, for deduplication on merge,
	// in the shape of OONI's measurement_uid: the start time to the
	// microsecond, the country, the test name without underscores and a
	// random part.
	MeasurementUID string `json:"measurement_uid"`
	// MeasurementStartTime is when this target started, in TimeLayout.
	MeasurementStartTime string `json:"measurement_start_time"`
	// TestStartTime is when the run started, same format.
	TestStartTime   string `json:"test_start_time"`
	TestName        string `json:"test_name"`
	TestVersion     string `json:"test_version"`
	SoftwareName    string `json:"software_name"`
	SoftwareVersion string `json:"software_version"`
	// ProbeASN is "AS<number>", "AS0" when unknown.
	ProbeASN string `json:"probe_asn"`
	// ProbeCC is the ISO 3166 country code, "ZZ" when unknown.
	ProbeCC string `json:"probe_cc"`
	// ProbeNetworkName is the network's name, empty when unknown.
	ProbeNetworkName string `json:"probe_network_name"`
	// ProbeIP is the probe's address; "127.0.0.1" unless the user opted in.
	ProbeIP string `json:"probe_ip"`
	// ResolverASN, ResolverIP and ResolverNetworkName describe the local
	// resolver as OONI does.
	ResolverASN         string `json:"resolver_asn"`
	ResolverIP          string `json:"resolver_ip"`
	ResolverNetworkName string `json:"resolver_network_name"`
	// TestRuntime is the seconds this target took.
	TestRuntime float64 `json:"test_runtime"`
	// Options are the settings that shape what was measured, as
	// "name=value" strings in a fixed order (fingerprints, port, ...):
	// OONI's options, the test's arguments. Never null.
	Options []string `json:"options"`
	// TestHelpers are the services outside the probe's network that the
	// measurement asked, by role ("control_resolver", "control_server"),
	// empty when none. Never null.
	TestHelpers map[string]TestHelper `json:"test_helpers"`
	// Extensions are the OONI data formats test_keys follow: Extensions()
	// in a Measurement, TraceExtensions() in a Trace.
	Extensions map[string]int64 `json:"extensions"`
	// Annotations carries free-form key/values (e.g. how the vantage was
	// found). Never null.
	Annotations map[string]string `json:"annotations"`
}

// TestHelper is one entry of test_helpers: where a helper is and how it
// is spoken to, as OONI writes its test helpers.
type TestHelper struct {
	// Address is the helper's URL, or "ip:port".
	Address string `json:"address"`
	// Type is the protocol: "https" for the control server, the DNS
	// engine ("doh", "dot", "udp", "tcp") for the control resolver.
	Type string `json:"type"`
}

// TestKeys are the observations and their interpretation. All times (t0, t)
// are seconds since the measurement started.
type TestKeys struct {
	// Domain and Port are the target.
	Domain string `json:"domain"`
	Port   int    `json:"port"`
	// Queries are the local resolver's DNS round trips.
	Queries []DNSQuery `json:"queries"`
	// ControlQueries are the control resolver's DNS round trips.
	ControlQueries []DNSQuery `json:"control_queries"`
	// DNSConsistency compares local and control answers.
	DNSConsistency *DNSConsistency `json:"dns_consistency"`
	// TCPConnect has one entry per address dialled.
	TCPConnect []TCPConnect `json:"tcp_connect"`
	// TLSHandshakes has one entry per address and fingerprint.
	TLSHandshakes []TLSHandshake `json:"tls_handshakes"`
	// Chains[i] judges TLSHandshakes[i].PeerCertificates (null where the
	// handshake presented no certificate), each with the interception it
	// found.
	Chains []*chain.Judgement `json:"chains"`
	// InterceptionChain is the index in Chains of the strongest
	// interception finding over all handshakes (chain.Strongest), null
	// when none. Set it with SetInterception.
	InterceptionChain *int `json:"interception_chain"`
	// Interception is Chains[InterceptionChain].Interception, the
	// strongest finding, nil when none. It is not written: the chain's own
	// copy stands for it (records before format 0.2.0 wrote it a second
	// time as test_keys.interception, which is still read).
	Interception *chain.Interception `json:"-"`
	// Control is what the control server said about this target (its own
	// DNS answers, the chain it was served at each address), null when no
	// control server is configured.
	Control *ControlReport `json:"control"`
	// Verdict is one of the Verdict constants.
	Verdict Verdict `json:"verdict"`
	// VerdictReason says in a few words why.
	VerdictReason string `json:"verdict_reason"`
	// SNISweep holds a kzprobe_sni_sweep record's own facts (sweep.go);
	// absent from kzprobe_tls_mitm records.
	SNISweep *SNISweep `json:"sni_sweep,omitempty"`
}

// DNSQuery is one DNS round trip, in the shape of OONI's
// ArchivalDNSLookupResult (df-002-dnst).
type DNSQuery struct {
	// Engine is "udp", "tcp", "doh", "dot".
	Engine string `json:"engine"`
	// ResolverAddress is "ip:port" or the DoH URL.
	ResolverAddress string `json:"resolver_address"`
	Hostname        string `json:"hostname"`
	// QueryType is "A" or "AAAA".
	QueryType string `json:"query_type"`
	// Answers are the records in the answer section.
	Answers []DNSAnswer `json:"answers"`
	// AnswersTruncated is true when the response had more answers than
	// are recorded (MaxRecordedAnswers); RawResponse has them all.
	AnswersTruncated bool `json:"answers_truncated"`
	// CNAMEs is the CNAME chain followed, in order.
	CNAMEs []string `json:"cnames"`
	// Rcode is the numeric response code; absent when no response
	// arrived (df-002: an optional integer).
	Rcode *int `json:"rcode,omitempty"`
	// Failure is null on success.
	Failure *string `json:"failure"`
	// RawResponse is the response message as received, a base64 string
	// as df-002 writes it; null when none arrived or when it was withheld
	// (RawResponseWithheld).
	RawResponse Base64Bytes `json:"raw_response"`
	// RawResponseWithheld, present only then, stands for a response left
	// out because it holds the probe's address ([Withhold]).
	RawResponseWithheld *Withheld `json:"raw_response_withheld,omitempty"`
	// MessageID is the DNS message ID used (RFC 1035's ID). It is not
	// OONI's transaction_id, which groups the events of one transaction:
	// records before format 0.2.0 wrote it under that name.
	MessageID uint16 `json:"message_id"`
	// Attempts counts the tries this round trip took (retries, TCP fallback).
	Attempts int `json:"attempts"`
	// Tries lists each resolver asked, in order, with its own outcome:
	// every retry and, for a control resolver with fallbacks, every
	// resolver tried. The fields above describe the last; a failure of an
	// earlier try is only here. Absent in records of kzprobe before 0.2.
	Tries []DNSTry `json:"tries,omitempty"`
	// T0 and T are seconds since measurement start.
	T0 float64 `json:"t0"`
	T  float64 `json:"t"`
}

// DNSTry is one resolver asked for a DNSQuery.
type DNSTry struct {
	// Engine is "udp", "tcp", "doh", "dot": the transport of the try's
	// last round trip (a UDP query truncated and asked again over TCP is
	// "tcp").
	Engine string `json:"engine"`
	// ResolverAddress is "ip:port" or the DoH URL.
	ResolverAddress string `json:"resolver_address"`
	// Failure is the transport's failure, null when the resolver answered
	// (an NXDOMAIN or SERVFAIL is an answer; DNSQuery.Failure says what it
	// meant).
	Failure *string `json:"failure"`
	// T0 and T are seconds since measurement start.
	T0 float64 `json:"t0"`
	T  float64 `json:"t"`
}

// DNSAnswer is one answer record.
type DNSAnswer struct {
	// AnswerType is "A", "AAAA", "CNAME", ...
	AnswerType string `json:"answer_type"`
	IPv4       string `json:"ipv4,omitempty"`
	IPv6       string `json:"ipv6,omitempty"`
	Hostname   string `json:"hostname,omitempty"`
	// TTL in seconds.
	TTL uint32 `json:"ttl"`
}

// ConsistencyStatus is the outcome of comparing the local and control DNS
// answers of one target (DNSConsistency.Status).
type ConsistencyStatus string

// The consistency statuses.
const (
	// Consistent: the local answers agree with the control (or failed the
	// same way).
	Consistent ConsistencyStatus = "consistent"
	// Inconsistent: the local answers are evidence of a lie (a bogon, a
	// denied name the control resolves, disjoint address sets).
	Inconsistent ConsistencyStatus = "inconsistent"
	// Unknown: the comparison cannot decide (a side failed, the address
	// families differ).
	Unknown ConsistencyStatus = "unknown"
)

// Consistency reasons (DNSConsistency.Reason), each recorded with one
// status. probe.ConsistencyOptions.Check documents the order in which they
// are decided.
const (
	// ReasonBogon: a local answer is in a bogon or private range
	// (Inconsistent).
	ReasonBogon = "bogon"
	// ReasonSameFailure: neither side has an address and both failed the
	// same way, e.g. both NXDOMAIN (Consistent).
	ReasonSameFailure = "same_failure"
	// ReasonBothFailed: neither side has an address and they failed
	// differently (Unknown).
	ReasonBothFailed = "both_failed"
	// ReasonLocalNXDOMAIN: the local resolver says the name does not
	// exist while the control resolves it (Inconsistent).
	ReasonLocalNXDOMAIN = "local_nxdomain"
	// ReasonLocalNoAnswer: the local resolver answers NOERROR without any
	// address while the control resolves the name (Inconsistent).
	ReasonLocalNoAnswer = "local_no_answer"
	// ReasonLocalFailed: only the control has addresses and the local
	// resolver failed in a way that is no evidence of a lie, e.g. a
	// timeout or SERVFAIL (Unknown).
	ReasonLocalFailed = "local_failed"
	// ReasonControlFailed: only the local side has addresses (Unknown).
	ReasonControlFailed = "control_failed"
	// ReasonIntersection: the local and control address sets share an
	// address (Consistent).
	ReasonIntersection = "intersection"
	// ReasonIPValidFromControl: the sets are disjoint, but the control
	// server was served a chain valid for the domain at a locally resolved
	// address (Consistent).
	ReasonIPValidFromControl = "ip_valid_from_control"
	// ReasonASNMatch: the sets are disjoint, but the addresses are in the
	// same autonomous system (Consistent).
	ReasonASNMatch = "asn_match"
	// ReasonFamiliesDiffer: both sides resolved, but only in different
	// address families (e.g. local IPv4 only, control IPv6 only), so the
	// sets cannot be compared (Unknown).
	ReasonFamiliesDiffer = "address_families_differ"
	// ReasonNoIntersection: the sets share no address and no later check
	// vouched for the local ones (Inconsistent).
	ReasonNoIntersection = "no_intersection"
)

// DNSConsistency is the comparison of local and control DNS.
type DNSConsistency struct {
	// Status is Consistent, Inconsistent or Unknown.
	Status ConsistencyStatus `json:"status"`
	// Reason is one of the Reason constants.
	Reason string `json:"reason"`
	// LocalAddrs and ControlAddrs are the address sets compared.
	LocalAddrs   []string `json:"local_addrs"`
	ControlAddrs []string `json:"control_addrs"`
	// Bogons lists local answers in bogon or private ranges.
	Bogons []string `json:"bogons"`
}

// TCPConnect is one TCP connect, in OONI's shape.
type TCPConnect struct {
	IP     string           `json:"ip"`
	Port   int              `json:"port"`
	Status TCPConnectStatus `json:"status"`
	T0     float64          `json:"t0"`
	T      float64          `json:"t"`
}

// TCPConnectStatus is the outcome of a TCP connect.
type TCPConnectStatus struct {
	Failure *string `json:"failure"`
	Success bool    `json:"success"`
}

// TLSHandshake is one TLS handshake, in the shape of OONI's
// ArchivalTLSOrQUICHandshakeResult (df-006-tlshandshake), plus the
// fingerprint used.
type TLSHandshake struct {
	Network            string `json:"network"`
	Address            string `json:"address"`
	ServerName         string `json:"server_name"`
	Fingerprint        string `json:"fingerprint"`
	TLSVersion         string `json:"tls_version"`
	CipherSuite        string `json:"cipher_suite"`
	NegotiatedProtocol string `json:"negotiated_protocol"`
	// Tags are df-006's labels of the part of a measurement an event
	// belongs to; kzprobe's handshakes are all one part: empty, never
	// null.
	Tags []string `json:"tags"`
	// NoTLSVerify is always true: the chain is judged afterwards.
	NoTLSVerify bool `json:"no_tls_verify"`
	// PeerCertificates is the presented chain, in order, every certificate;
	// an entry is null where the certificate was withheld
	// (WithheldCertificates).
	PeerCertificates []BinaryData `json:"peer_certificates"`
	// WithheldCertificates, present only then, stands for the certificates
	// left out because they hold the probe's address ([Withhold]).
	WithheldCertificates []WithheldCertificate `json:"withheld_certificates,omitempty"`
	// PeerCertificatesTruncated is true when the chain was cut to the
	// configured bounds (count or bytes).
	PeerCertificatesTruncated bool    `json:"peer_certificates_truncated"`
	Failure                   *string `json:"failure"`
	// SmallHelloRetry is true for the handshake made with the "small"
	// fingerprint after every configured one was refused at this address
	// (Prober.SmallHelloRetry).
	SmallHelloRetry bool    `json:"small_hello_retry"`
	T0              float64 `json:"t0"`
	T               float64 `json:"t"`
}

// SetInterception records in as the strongest interception finding:
// Interception, and InterceptionChain, the index of the first chain whose
// finding in is (nil in clears both). in must be one of Chains' findings,
// as chain.Strongest returns it; otherwise both are cleared.
func (tk *TestKeys) SetInterception(in *chain.Interception) {
	tk.Interception, tk.InterceptionChain = nil, nil
	if in == nil {
		return
	}
	for i, j := range tk.Chains {
		if j != nil && j.Interception == in {
			tk.Interception, tk.InterceptionChain = in, &i
			return
		}
	}
}

// UnmarshalJSON reads test_keys and sets Interception from
// interception_chain, or from test_keys.interception in records written
// before format 0.2.0 (whose InterceptionChain it then points at the
// first chain with that finding).
func (tk *TestKeys) UnmarshalJSON(b []byte) error {
	type plain TestKeys // without this method
	var v struct {
		plain
		Interception *chain.Interception `json:"interception"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*tk = TestKeys(v.plain)
	if i := tk.InterceptionChain; i != nil {
		if *i < 0 || *i >= len(tk.Chains) || tk.Chains[*i] == nil || tk.Chains[*i].Interception == nil {
			return fmt.Errorf("measurement: interception_chain %d names no chain with an interception finding (%d chains)", *i, len(tk.Chains))
		}
		tk.Interception = tk.Chains[*i].Interception
		return nil
	}
	if in := v.Interception; in != nil {
		tk.Interception = in // a finding no chain holds stays as it was read
		for _, j := range tk.Chains {
			if j != nil && reflect.DeepEqual(j.Interception, in) {
				tk.SetInterception(j.Interception)
				break
			}
		}
	}
	return nil
}

// Base64Bytes is bytes that serialize as a plain base64 string, as
// df-002-dnst writes a DNS raw_response.
type Base64Bytes []byte

// MarshalJSON encodes b as a base64 string; nil as null.
func (b Base64Bytes) MarshalJSON() ([]byte, error) {
	if b == nil {
		return []byte("null"), nil
	}
	return json.Marshal([]byte(b))
}

// UnmarshalJSON accepts a base64 string, OONI's {"data","format":"base64"}
// (kzprobe's records before format 0.2.0) and null.
func (b *Base64Bytes) UnmarshalJSON(p []byte) error {
	return (*BinaryData)(b).UnmarshalJSON(p)
}

// BinaryData is bytes that serialize as OONI's {"data": base64, "format":
// "base64"}.
type BinaryData []byte

// MarshalJSON encodes b as {"data": ..., "format": "base64"}; nil as null.
func (b BinaryData) MarshalJSON() ([]byte, error) {
	if b == nil {
		return []byte("null"), nil
	}
	return json.Marshal(struct {
		Data   string `json:"data"`
		Format string `json:"format"`
	}{base64.StdEncoding.EncodeToString(b), "base64"})
}

// UnmarshalJSON accepts {"data","format":"base64"}, a plain base64 string
// (older OONI files) and null.
func (b *BinaryData) UnmarshalJSON(p []byte) error {
	if string(p) == "null" {
		*b = nil
		return nil
	}
	var s string
	if len(p) > 0 && p[0] == '"' {
		if err := json.Unmarshal(p, &s); err != nil {
			return err
		}
	} else {
		var v struct {
			Data   string `json:"data"`
			Format string `json:"format"`
		}
		if err := json.Unmarshal(p, &v); err != nil {
			return err
		}
		if v.Format != "" && v.Format != "base64" {
			return errors.New("measurement: binary data format is not base64")
		}
		s = v.Data
	}
	d, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return err
	}
	*b = d
	return nil
}

// Verdict is the one-word conclusion for a target.
type Verdict string

// The verdict vocabulary; probe.Classify decides which one applies.
const (
	// VerdictOK: consistent DNS and a chain trusted for the domain.
	VerdictOK Verdict = "ok"
	// VerdictMITMISCA: consistent DNS, chain leads to an ISCA/Qaznet root.
	VerdictMITMISCA Verdict = "mitm_isca"
	// VerdictMITMOther: consistent DNS, untrusted chain that is not ISCA
	// (and differs from what the control sees, when a control server is used).
	VerdictMITMOther Verdict = "mitm_other"
	// VerdictDNSTampering: the local answers are inconsistent with the control.
	VerdictDNSTampering Verdict = "dns_tampering"
	// VerdictTLSBlocking: TCP connects but every TLS handshake fails.
	VerdictTLSBlocking Verdict = "tls_blocking"
	// VerdictTCPBlocking: no TCP connect succeeds.
	VerdictTCPBlocking Verdict = "tcp_blocking"
	// VerdictDown: the name fails from the control too.
	VerdictDown Verdict = "down"
	// VerdictError: the probe could not decide.
	VerdictError Verdict = "error"
)

// Verdicts returns the verdict vocabulary, in the order of the constants
// above.
func Verdicts() []Verdict {
	return []Verdict{VerdictOK, VerdictMITMISCA, VerdictMITMOther, VerdictDNSTampering,
		VerdictTLSBlocking, VerdictTCPBlocking, VerdictDown, VerdictError}
}
