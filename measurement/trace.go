package measurement

import "kzprobe/probe/chain"

// TraceTestName is the test_name of a `kzprobe trace` record: where on the
// path a TLS interception (or a reset) answers, hop by hop. Its test_keys
// are a [TraceTestKeys].
const TraceTestName = "kzprobe_trace"

// TraceTestVersion is the version of the trace record's format and
// method, bumped as [TestVersion] is.
const TraceTestVersion = "0.1.0"

// TraceExtensions names the OONI data formats a trace record's test_keys
// follow: dnst (queries), tcpconnect and tlshandshake (the handshakes of
// the iterative traces).
func TraceExtensions() map[string]int64 {
	return map[string]int64{"dnst": 0, "tcpconnect": 0, "tlshandshake": 0}
}

// Trace is one `kzprobe trace` record (test_name [TraceTestName]): one
// traced address, with the envelope of every kzprobe record.
type Trace struct {
	Envelope
	TestKeys TraceTestKeys `json:"test_keys"`
}

// TraceTestKeys are a trace's observations and its finding. Times (t0,
// t) are seconds since the measurement started.
//
// Four traces go to one address, one after the other: a TCP traceroute
// to the port (connects with the TTL, IPv6's hop limit, set to 1, 2, 3
// ...), a UDP traceroute to the address (the destination's own distance,
// which a box that takes over TCP does not change), and two iterative TLS
// traces, for the target SNI and for the control SNI (a connection at the
// normal TTL, then the ClientHello sent with TTL 1, 2, 3 ...). Every
// router is a [TraceHop]: a /24 or /48 prefix with its network, never a
// whole address, and none at all for private, CGNAT and link-local ones.
type TraceTestKeys struct {
	// Domain is the name traced: the target as given, or --sni's name.
	Domain string `json:"domain"`
	// Address is the traced "ip:port" (the server's, not the probe's).
	Address string `json:"address"`
	// SNI is the target trace's server name, ControlSNI the control
	// trace's: a name that is not expected to be intercepted.
	SNI        string `json:"sni"`
	ControlSNI string `json:"control_sni"`
	// Queries are the local resolver's answers for Domain, when the
	// target was a name; empty when the address was given (--to).
	Queries []DNSQuery `json:"queries"`
	// MaxHops is the largest TTL tried; HopTimeout the seconds waited
	// for one probe's answer.
	MaxHops    int     `json:"max_hops"`
	HopTimeout float64 `json:"hop_timeout"`
	// TCPTraceroute has one entry per TTL tried, in order, until the
	// port answered or a bound was hit.
	TCPTraceroute []TraceProbe `json:"tcp_traceroute"`
	// UDPTraceroute is the same with UDP datagrams to a closed port (as
	// traceroute(8) does): the address's own port unreachable ends it.
	UDPTraceroute []TraceProbe `json:"udp_traceroute"`
	// TargetTrace and ControlTrace are the iterative TLS traces, one
	// entry per TTL, until the hello was answered or a bound was hit.
	TargetTrace  []TLSIteration `json:"target_trace"`
	ControlTrace []TLSIteration `json:"control_trace"`
	// Finding is what the traces say, derived from the fields above
	// (trace.Interpret re-derives it offline).
	Finding TraceFinding `json:"finding"`
	// Failure is null when the traces ran; else why none could (the
	// address outside --allow-net, no socket error queue on this system).
	Failure *string `json:"failure"`
}

// The answers a probe or an iteration gets (TraceProbe.Answer,
// TLSIteration.Answer).
const (
	// AnswerRouter: an ICMP time exceeded came back from a router on the
	// way (for an iteration: an ICMP error, see TLSIteration.Hop).
	AnswerRouter = "router"
	// AnswerUnreachable: an ICMP destination unreachable from a router.
	AnswerUnreachable = "unreachable"
	// AnswerDestination: the traced address answered: TCP with a SYN-ACK
	// (Connected) or a reset, UDP with its port unreachable. For TCP this
	// is whatever answered in the address's name, maybe a proxy.
	AnswerDestination = "destination"
	// AnswerSilent: nothing came back before the hop timeout, from any
	// attempt.
	AnswerSilent = "silent"
	// AnswerServer: a server flight came back to the ClientHello (a
	// ServerHello, and the chain in Chain).
	AnswerServer = "server"
	// AnswerReset, AnswerEOF and AnswerAlert: the ClientHello was
	// answered by a TCP reset, a close, or a TLS alert.
	AnswerReset = "reset"
	AnswerEOF   = "eof"
	AnswerAlert = "alert"
	// AnswerFailure: anything else (the connect at the normal TTL
	// failed, a local error); Failure says what.
	AnswerFailure = "failure"
)

// TraceProbe is one TTL of a TCP or UDP traceroute.
type TraceProbe struct {
	// TTL is the IPv4 TTL or IPv6 hop limit the probe was sent with.
	TTL int `json:"ttl"`
	// Attempts is how many probes were sent at this TTL (a silent hop is
	// asked again once, as an ICMP rate limit may have eaten the first
	// answer).
	Attempts int `json:"attempts"`
	// Answer is one of AnswerRouter, AnswerUnreachable,
	// AnswerDestination, AnswerSilent.
	Answer string `json:"answer"`
	// Hop is who answered: the router (from the ICMP message's source)
	// or the destination; null when silent.
	Hop *TraceHop `json:"hop"`
	// ICMP is the ICMP message received, null when none.
	ICMP *ICMPMessage `json:"icmp"`
	// Connected is true when a TCP probe's connect completed (SYN-ACK).
	Connected bool `json:"connected"`
	// Failure is the connect's or send's error in OONI's strings (a
	// time exceeded reads host_unreachable, a reset connection_refused,
	// nothing generic_timeout_error); null when connected.
	Failure *string `json:"failure"`
	T0      float64 `json:"t0"`
	T       float64 `json:"t"`
}

// ICMPMessage is an ICMP (or ICMPv6) error as the kernel's socket error
// queue reported it.
type ICMPMessage struct {
	// Type and Code are the message's own (ICMP 11/0 time exceeded, 3/3
	// port unreachable; ICMPv6 3/0 and 1/4).
	Type int `json:"type"`
	Code int `json:"code"`
	// Version is 4 for ICMP, 6 for ICMPv6.
	Version int `json:"version"`
}

// The classes of a hop's address (TraceHop.Class).
const (
	// HopPublic: a global unicast address, recorded as its prefix.
	HopPublic = "public"
	// HopPrivate: RFC 1918 or IPv6 unique local (fc00::/7): the
	// volunteer's side, recorded with no address.
	HopPrivate = "private"
	// HopCGNAT: the shared address space 100.64.0.0/10, no address.
	HopCGNAT = "cgnat"
	// HopLinkLocal: 169.254.0.0/16 or fe80::/10, no address.
	HopLinkLocal = "link_local"
	// HopOther: loopback, unspecified, multicast and the like, no address.
	HopOther = "other"
	// HopVantage: a public address whose /24 (/48) holds the probe's own
	// public address: the volunteer's own network, recorded with its
	// network (ASN, country) but no prefix.
	HopVantage = "vantage"
)

// TraceHop is one hop's address as recorded: never the whole address of
// a router, and none at all on the volunteer's side. This is how OONI's
// tlsmiddlebox records routers (source_ip_prefix).
type TraceHop struct {
	// Class is one of HopPublic, HopPrivate, HopCGNAT, HopLinkLocal,
	// HopOther, HopVantage.
	Class string `json:"class"`
	// Prefix is the address's /24 (IPv4) or /48 (IPv6), for a public
	// address only (not HopVantage); "" otherwise.
	Prefix string `json:"prefix"`
	// ASN ("AS64500"), CC ("KZ") and Network (the AS's name) are the
	// prefix's, from the MMDB files configured (vantage.asn_db,
	// vantage.country_db); "" when unknown or not public.
	ASN     string `json:"asn"`
	CC      string `json:"cc"`
	Network string `json:"network"`
	// Destination is true when the address is the traced address itself.
	Destination bool `json:"destination"`
}

// TLSIteration is one TTL of an iterative TLS trace: a connection made at
// the normal TTL, then the ClientHello sent with TTL TTL.
type TLSIteration struct {
	TTL int `json:"ttl"`
	// Answer is one of AnswerRouter (an ICMP error killed the
	// connection: the hello died on the way), AnswerSilent (nothing came
	// back), AnswerServer, AnswerReset, AnswerEOF, AnswerAlert,
	// AnswerFailure.
	Answer string `json:"answer"`
	// Hop is the router of an AnswerRouter: from the ICMP message where
	// the kernel queued it (HopFrom "icmp"), else the router the TCP
	// traceroute met at the same TTL (HopFrom "tcp_traceroute"; Linux
	// reports an ICMP error on an established connection only as its
	// errno). Null when unknown.
	Hop     *TraceHop `json:"hop"`
	HopFrom string    `json:"hop_from"`
	// Connect is the connect at the normal TTL.
	Connect TCPConnect `json:"connect"`
	// Handshake is the TLS handshake begun with the TTL lowered
	// (df-006), null when the connect failed.
	Handshake *TLSHandshake `json:"handshake"`
	// Chain judges Handshake.PeerCertificates, null when none came.
	Chain *chain.Judgement `json:"chain"`
}

// The boxes' actions on the target SNI (TraceFinding.Interference).
const (
	// InterferenceChain: a chain that leads to an interception PKI, or
	// an untrusted one that differs from the control's.
	InterferenceChain = "interception"
	// InterferenceReset, InterferenceEOF and InterferenceAlert: the
	// target's hello was answered by a reset, a close or an alert
	// while the control's was not.
	InterferenceReset = "reset"
	InterferenceEOF   = "eof"
	InterferenceAlert = "alert"
	// InterferenceNone: the target's hello got a trusted chain.
	InterferenceNone = "none"
)

// TraceFinding is what the traces say. Every field is derived from the
// traces: null or "" means the traces could not tell.
type TraceFinding struct {
	// DestinationHops is the address's distance in hops: where the UDP
	// traceroute met its port unreachable (DestinationHopsFrom "udp"),
	// else where TCP was answered ("tcp", which a proxy may shorten).
	DestinationHops     *int   `json:"destination_hops"`
	DestinationHopsFrom string `json:"destination_hops_from"`
	// TCPAnswerHop is the TTL at which the port first answered.
	TCPAnswerHop *int `json:"tcp_answer_hop"`
	// TransparentProxy is true when TCP was answered before the
	// destination's distance: a box on the way takes the connection over.
	// Null when the UDP traceroute could not tell.
	TransparentProxy *bool `json:"transparent_proxy"`
	// TargetHop and TargetAnswer: where and how the target SNI's hello
	// was first answered (server, reset, eof, alert); null and "" when it
	// never was within the bound.
	TargetHop    *int   `json:"target_hop"`
	TargetAnswer string `json:"target_answer"`
	// ControlHop and ControlAnswer: the same for the control SNI.
	ControlHop    *int   `json:"control_hop"`
	ControlAnswer string `json:"control_answer"`
	// Interference is what the box did to the target SNI: one of the
	// Interference constants, "" when the target was not answered.
	Interference string `json:"interference"`
	// InterferenceHop is the hop whose box answered the target SNI with
	// Interference (not none); null otherwise.
	InterferenceHop *int `json:"interference_hop"`
	// ControlTravels says how far the control SNI went compared to the
	// target: "further" (answered at a later hop), "same_hop" (the same
	// box answered it, with ControlTrusted saying whether with a genuine
	// chain: a transparent proxy that lets it through), "shorter", or
	// "unanswered".
	ControlTravels string `json:"control_travels"`
	// ControlTrusted is whether the control's chain was trusted; null
	// when no chain came.
	ControlTrusted *bool `json:"control_trusted"`
	// AnsweringHop is the router at the interference (or target) hop, as
	// the UDP or TCP traceroute met it: the box's network; BeforeHop the
	// router one hop earlier. Null when unknown.
	AnsweringHop *TraceHop `json:"answering_hop"`
	BeforeHop    *TraceHop `json:"before_hop"`
	// SilentHops are the TTLs, up to the last one answered, at which no
	// probe of any trace got an answer: silent routers, or ICMP rate
	// limits that ate every answer.
	SilentHops []int `json:"silent_hops"`
	// Summary says the finding in one sentence.
	Summary string `json:"summary"`
}
