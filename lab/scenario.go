package lab

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/miekg/dns"
	"go.yaml.in/yaml/v3"

	"kzprobe/measurement"
)

// TLS behaviours of the middlebox, chosen per SNI (Site.TLS).
//
// To add a behaviour: add a constant here, list it in [TLSBehaviours] (or
// [HostileTLSBehaviours]), give it a case in Lab.handleMiddlebox (a
// hostile one in Lab.hostileTLS), and say in [ExpectedVerdict] what the
// probe should conclude.
const (
	// Pass splices the TCP stream to the origin untouched: the client sees
	// the origin's own chain, byte for byte.
	Pass = "pass"
	// InterceptISCA terminates TLS with a leaf forged for the SNI, chained
	// to the lab ISCA root through the current intermediate.
	InterceptISCA = "intercept_isca"
	// InterceptISCAExpired is InterceptISCA through an intermediate whose
	// validity ended days ago, as happened between the real intermediates.
	InterceptISCAExpired = "intercept_isca_expired"
	// InterceptCorporate terminates TLS with a leaf issued directly by an
	// unrelated corporate TLS-inspection root.
	InterceptCorporate = "intercept_corporate"
	// InterceptISCASNIPeek is InterceptISCA behind a middlebox that reads
	// the server name from the first KiB of the ClientHello only, as
	// sslsplit 0.5.5 does: a longer hello (any with a post-quantum key
	// share: chrome, golang) leaves it without the name, and it closes the
	// connection (FIN) as sslsplit does when its upstream, a shared host,
	// refuses a handshake without one. A hello of at most 1 KiB (the
	// "small" fingerprint) is intercepted.
	InterceptISCASNIPeek = "intercept_isca_sni_peek"
	// Reset reads the ClientHello, then closes with SO_LINGER 0, so the
	// client reads ECONNRESET.
	Reset = "reset"
	// Blackhole reads the ClientHello and everything after it and never
	// answers, until the client gives up or the lab closes.
	Blackhole = "blackhole"
	// EOF reads the ClientHello, then closes cleanly (FIN): the client reads
	// io.EOF.
	EOF = "eof"
	// Unreachable leaves the site's public address without a listener, so a
	// TCP connect is refused. It is a property of the address, not of the
	// SNI: another site's SNI sent to a reachable address passes.
	Unreachable = "unreachable"
)

// Hostile TLS behaviours: peers built to hurt the client rather than to
// censor it. Each reads the ClientHello first; those that present
// certificates forge them from the lab's ISCA PKI, so the evidence of
// interception is there whenever the client can take it (lab/hostile.go
// builds them).
const (
	// Drip terminates TLS as InterceptISCA does, but writes its flights one
	// byte per Scenario.DripInterval (1s by default): the handshake would
	// complete after minutes, so a client's deadline must cut it.
	Drip = "drip"
	// Garbage answers the ClientHello with 4 KiB of random bytes whose
	// first byte is no TLS record type, instead of a ServerHello.
	Garbage = "garbage"
	// ChainLong presents the forged ISCA leaf, the ISCA intermediate and
	// 198 more certificates issued by it: 200 certificates, about 80 KB,
	// within what TLS libraries accept.
	ChainLong = "chain_long"
	// ChainHeavy presents the forged ISCA leaf, the ISCA intermediate and
	// 20 certificates padded to 100 KiB each: a Certificate message of
	// about 2 MB, beyond the 256 KiB that TLS libraries accept.
	ChainHeavy = "chain_heavy"
	// ChainMalformed presents the forged ISCA leaf and the ISCA
	// intermediate with its outer tag changed from SEQUENCE to SET, so the
	// second certificate is not DER a parser accepts.
	ChainMalformed = "chain_malformed"
	// CertAbsurd presents a leaf issued by the ISCA intermediate with
	// absurd but well-formed fields: 10 000 DNS names (the SNI first) and a
	// notAfter of 9999-12-31 23:59:59 UTC.
	CertAbsurd = "cert_absurd"
	// CertInvalidFields presents a leaf issued (and correctly signed) by
	// the ISCA intermediate whose serial number is negative and whose
	// subject CN is a UTF8String holding invalid UTF-8: fields that
	// crypto/x509 refuses to parse.
	CertInvalidFields = "cert_invalid_fields"
	// AlertMidHandshake negotiates TLS 1.2, sends the ServerHello and the
	// forged ISCA chain, then a fatal handshake_failure alert in place of
	// the ServerKeyExchange.
	AlertMidHandshake = "alert_mid_handshake"
)

// DNS behaviours of the lab's resolvers, chosen per domain (Site.DNS).
const (
	// DNSTruthful answers the site's public address, locally and from the
	// control.
	DNSTruthful = "truthful"
	// DNSBlockpage makes the local resolver answer the block-page server's
	// address ([Lab.BlockpageAddr]); the control is truthful.
	DNSBlockpage = "blockpage"
	// DNSNXDOMAIN makes the local resolver answer NXDOMAIN; the control is
	// truthful.
	DNSNXDOMAIN = "nxdomain"
	// DNSBogon makes the local resolver answer [BogonAddr] (10.10.34.34); the
	// control is truthful. The bogon is data only: nothing in the lab dials
	// it.
	DNSBogon = "bogon"
	// DNSNonexistent is NXDOMAIN from the local resolver and from the
	// control: the name does not exist, and the lab runs no server for it.
	DNSNonexistent = "nonexistent"
	// DNSControlServfail makes the control answer SERVFAIL while the local
	// resolver is truthful.
	DNSControlServfail = "control_servfail"
)

// Hostile DNS behaviours of the local resolver, over UDP and TCP alike
// unless said otherwise. The control resolver is truthful for them. Where a
// behaviour sends a decoy, the decoy answers [BogonAddr], so a client that
// takes it ends up with inconsistent DNS.
const (
	// DNSTruncated answers over UDP with the TC bit set and no records,
	// which forces the client to TCP; over TCP it is truthful.
	DNSTruncated = "truncated"
	// DNSWrongID sends a decoy response whose message ID is the query's
	// plus one, then the truthful response.
	DNSWrongID = "wrong_id"
	// DNSWrongQuestion sends a decoy response for another name
	// ("wrong-question.lab.test"), then the truthful response.
	DNSWrongQuestion = "wrong_question"
	// DNSCompressionLoop answers with the query's ID and a question name
	// that is a compression pointer to itself, and nothing else.
	DNSCompressionLoop = "compression_loop"
	// DNSManyAnswers answers A questions with 500 A records for the site's
	// address (TTLs 1 to 500, so no two are equal). Over UDP they do not
	// fit: the response is truncated (TC) and the client must use TCP.
	DNSManyAnswers = "many_answers"
	// DNSDuplicate sends every response twice.
	DNSDuplicate = "duplicate"
	// DNSSilent never answers this name, over UDP or TCP.
	DNSSilent = "silent"
)

// Verdicts the probe gives, as used in Site.Expect: the record's verdicts
// (measurement.Verdict) as the plain strings a scenario file names.
const (
	VerdictOK           = string(measurement.VerdictOK)
	VerdictMITMISCA     = string(measurement.VerdictMITMISCA)
	VerdictMITMOther    = string(measurement.VerdictMITMOther)
	VerdictDNSTampering = string(measurement.VerdictDNSTampering)
	VerdictTLSBlocking  = string(measurement.VerdictTLSBlocking)
	VerdictTCPBlocking  = string(measurement.VerdictTCPBlocking)
	VerdictDown         = string(measurement.VerdictDown)
	VerdictError        = string(measurement.VerdictError)
)

// BogonAddr is the address DNSBogon answers, as seen in Kazakh networks.
const BogonAddr = "10.10.34.34"

// MaxSites is the most sites a scenario may have: each site takes two
// addresses of the lab's /24 (see the package documentation).
const MaxSites = 100

// MaxLatency bounds Scenario.Latency, so a typo ("5m" for "5ms") is caught.
const MaxLatency = 10 * time.Second

// DefaultDripInterval is the Drip behaviour's pace when
// Scenario.DripInterval is zero: one byte per second.
const DefaultDripInterval = time.Second

// MaxDripInterval bounds Scenario.DripInterval.
const MaxDripInterval = time.Minute

// TLSBehaviours returns every valid Site.TLS value, in documentation order:
// the censoring network's, then the hostile ones ([HostileTLSBehaviours]).
func TLSBehaviours() []string {
	return append([]string{Pass, InterceptISCA, InterceptISCAExpired, InterceptCorporate, InterceptISCASNIPeek, Reset, Blackhole, EOF, Unreachable},
		HostileTLSBehaviours()...)
}

// HostileTLSBehaviours returns the TLS behaviours of hostile peers, which
// [HostileScenario] covers and [DefaultScenario] does not.
func HostileTLSBehaviours() []string {
	return []string{Drip, Garbage, ChainLong, ChainHeavy, ChainMalformed, CertAbsurd, CertInvalidFields, AlertMidHandshake}
}

// DNSBehaviours returns every valid Site.DNS value, in documentation order:
// the censoring network's, then the hostile ones ([HostileDNSBehaviours]).
func DNSBehaviours() []string {
	return append([]string{DNSTruthful, DNSBlockpage, DNSNXDOMAIN, DNSBogon, DNSNonexistent, DNSControlServfail},
		HostileDNSBehaviours()...)
}

// HostileDNSBehaviours returns the DNS behaviours of a hostile local
// resolver, which [HostileScenario] covers and [DefaultScenario] does not.
func HostileDNSBehaviours() []string {
	return []string{DNSTruncated, DNSWrongID, DNSWrongQuestion, DNSCompressionLoop, DNSManyAnswers, DNSDuplicate, DNSSilent}
}

// Verdicts returns every valid Site.Expect value.
func Verdicts() []string {
	return []string{VerdictOK, VerdictMITMISCA, VerdictMITMOther, VerdictDNSTampering, VerdictTLSBlocking, VerdictTCPBlocking, VerdictDown, VerdictError}
}

// Site is one domain of a scenario and what the censored network does to it.
type Site struct {
	// Domain is the name, e.g. "rutracker.org". It is matched against the
	// SNI and DNS questions case-insensitively; a trailing dot is ignored.
	Domain string `yaml:"domain"`
	// TLS is the middlebox behaviour for this SNI (see [TLSBehaviours]).
	// Empty means Pass. Must be empty for DNSNonexistent.
	TLS string `yaml:"tls,omitempty"`
	// DNS is the resolvers' behaviour for this name (see [DNSBehaviours]).
	// Empty means DNSTruthful.
	DNS string `yaml:"dns,omitempty"`
	// Expect is the verdict the probe should give (see [Verdicts]). Empty
	// means [ExpectedVerdict] of TLS and DNS, which may itself be empty
	// (no expectation) for combinations the verdict table does not cover.
	Expect string `yaml:"expect,omitempty"`
	// IPv6 makes the site dual-stack: where a resolver answers the site's
	// IPv4 address for A, it answers ::1 for AAAA, and the middlebox
	// listens on [::1] too, on the lab's port, with the same behaviour for
	// the site's SNI. Loopback has one IPv6 address, so all IPv6 sites
	// share it and are told apart by SNI. Not for DNSNonexistent or
	// Unreachable, which have no listener.
	IPv6 bool `yaml:"ipv6,omitempty"`
}

// Scenario is a censored network as data: which domains exist and what
// happens to each. The YAML form is read by [LoadScenario].
type Scenario struct {
	// Name labels the scenario in output; may be empty.
	Name string `yaml:"name"`
	// Sites are the domains. Empty in a [Config] means [DefaultScenario].
	Sites []Site `yaml:"sites"`
	// Latency is added by the lab's own servers per round trip: once before
	// each DNS response, and once before each flight a TLS server (origin,
	// middlebox when it terminates TLS, block page, DoH, DoT) writes after
	// having read from the client; Reset and EOF wait it before closing.
	// The TCP handshake is done by the kernel and is not delayed, and a
	// spliced connection is delayed only by the origin. Zero means none. In
	// YAML it is a Go duration string, e.g. "50ms".
	Latency time.Duration `yaml:"latency,omitempty"`
	// DNSDrop is the probability, in [0, 1], that the local resolver
	// silently drops a query received over UDP (TCP, DoH and DoT never
	// drop). Zero means none.
	DNSDrop float64 `yaml:"dns_drop,omitempty"`
	// DripInterval is the pause between two bytes written by a [Drip]
	// site, at most MaxDripInterval. Zero means DefaultDripInterval (1s);
	// tests use a shorter one. In YAML a Go duration string, e.g. "200ms".
	DripInterval time.Duration `yaml:"drip_interval,omitempty"`
}

// ExpectedVerdict is the verdict table the probe implements, for a site's
// TLS and DNS behaviours (empty meaning Pass and DNSTruthful). It returns ""
// where the table says nothing (DNSControlServfail with a TLS behaviour that
// reaches a server).
//
// Hostile peers get the verdict of what the client can still observe: a
// hostile resolver whose genuine answer still arrives (truncated, wrong ID
// or question, many answers, duplicates) is as truthful, one that gives no
// usable answer (compression loop, silence) is tampering since the control
// answers; a TLS peer that lets the handshake complete with its ISCA chain
// (long chain, absurd leaf) is ISCA interception, and one that makes every
// handshake fail (drip, garbage, oversized or unparsable chain, alert) is
// TLS blocking, whatever chain was recovered on the way.
func ExpectedVerdict(tlsBehaviour, dnsBehaviour string) string {
	if tlsBehaviour == "" {
		tlsBehaviour = Pass
	}
	switch dnsBehaviour {
	case DNSNonexistent:
		return VerdictDown
	case DNSBlockpage, DNSNXDOMAIN, DNSBogon, DNSCompressionLoop, DNSSilent:
		return VerdictDNSTampering
	case DNSControlServfail:
		// Without the control's answer a failure cannot be told from a
		// site that is down.
		if handshakeFails(tlsBehaviour) || tlsBehaviour == Unreachable {
			return VerdictError
		}
		return ""
	case "", DNSTruthful, DNSTruncated, DNSWrongID, DNSWrongQuestion, DNSManyAnswers, DNSDuplicate:
	default:
		return ""
	}
	switch {
	case tlsBehaviour == Pass:
		return VerdictOK
	case tlsBehaviour == InterceptISCA, tlsBehaviour == InterceptISCAExpired,
		tlsBehaviour == ChainLong, tlsBehaviour == CertAbsurd:
		return VerdictMITMISCA
	case tlsBehaviour == InterceptISCASNIPeek:
		// Seen by the probe's small-hello retry.
		return VerdictMITMISCA
	case tlsBehaviour == InterceptCorporate:
		return VerdictMITMOther
	case handshakeFails(tlsBehaviour):
		return VerdictTLSBlocking
	case tlsBehaviour == Unreachable:
		return VerdictTCPBlocking
	}
	return ""
}

// handshakeFails reports whether a TLS behaviour lets no handshake
// complete once TCP has connected.
func handshakeFails(tlsBehaviour string) bool {
	switch tlsBehaviour {
	case Reset, EOF, Blackhole, Drip, Garbage, ChainHeavy, ChainMalformed, CertInvalidFields, AlertMidHandshake:
		return true
	}
	return false
}

// DefaultScenario is the built-in scenario: the 14 domains of the published
// report, most intercepted with the current ISCA intermediate and two with
// the expired one, plus reserved-name sites that exercise every other
// behaviour and every verdict at least once.
func DefaultScenario() Scenario {
	s := Scenario{
		Name: "default",
		Sites: []Site{
			// The report's 14 domains (report-facts.json "domains").
			{Domain: "360tv.ru", TLS: InterceptISCA},
			{Domain: "astrakhan.sm.news", TLS: InterceptISCA},
			{Domain: "compromat.ru", TLS: InterceptISCA},
			{Domain: "cont.ws", TLS: InterceptISCA},
			{Domain: "knews.kg", TLS: InterceptISCAExpired},
			{Domain: "kz.tsargrad.tv", TLS: InterceptISCA},
			{Domain: "regnum.ru", TLS: InterceptISCA},
			{Domain: "rutracker.org", TLS: InterceptISCA},
			{Domain: "sproot.it", TLS: InterceptISCA},
			{Domain: "stanradar.com", TLS: InterceptISCA, IPv6: true}, // dual-stack
			{Domain: "ukraina.ru", TLS: InterceptISCA},
			{Domain: "www.for.kg", TLS: InterceptISCAExpired},
			{Domain: "www.pinterest.com", TLS: InterceptISCA},
			{Domain: "xakep.ru", TLS: InterceptISCA},
			// Clean sites.
			{Domain: "clean-1.example", TLS: Pass},
			{Domain: "wikipedia.org", TLS: Pass, IPv6: true}, // dual-stack
			// One site per remaining behaviour.
			{Domain: "corp-proxy.example", TLS: InterceptCorporate},
			{Domain: "sni-peek.example", TLS: InterceptISCASNIPeek},
			{Domain: "tls-reset.example", TLS: Reset},
			{Domain: "tls-blackhole.example", TLS: Blackhole},
			{Domain: "tls-eof.example", TLS: EOF},
			{Domain: "tcp-unreachable.example", TLS: Unreachable},
			{Domain: "dns-blockpage.example", TLS: Pass, DNS: DNSBlockpage},
			{Domain: "dns-nxdomain.example", TLS: Pass, DNS: DNSNXDOMAIN},
			{Domain: "dns-bogon.example", TLS: Pass, DNS: DNSBogon},
			{Domain: "nonexistent.example", DNS: DNSNonexistent},
			{Domain: "control-servfail.example", TLS: Reset, DNS: DNSControlServfail},
		},
	}
	for i := range s.Sites {
		if s.Sites[i].DNS == "" {
			s.Sites[i].DNS = DNSTruthful
		}
		s.Sites[i].Expect = ExpectedVerdict(s.Sites[i].TLS, s.Sites[i].DNS)
	}
	return s
}

// LoadScenario reads a scenario from a YAML file, rejecting unknown keys,
// and validates it. Errors name the file and the field, with its line. The
// scenario returned is normalised as [Lab.Scenario] is: domains lowercase
// without a trailing dot, empty behaviours made explicit (Pass,
// DNSTruthful), empty Expect fields filled from [ExpectedVerdict] (which
// leaves "" where the verdict table says nothing).
func LoadScenario(path string) (Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Scenario{}, fmt.Errorf("lab: scenario: %w", err)
	}
	s, err := ParseScenario(data)
	if err != nil {
		return Scenario{}, fmt.Errorf("lab: scenario %s: %w", path, err)
	}
	return s, nil
}

// ParseScenario is [LoadScenario] on bytes; errors do not carry a file name.
func ParseScenario(data []byte) (Scenario, error) {
	var s Scenario
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		if errors.Is(err, io.EOF) {
			return Scenario{}, errors.New("empty scenario: want at least a sites: list")
		}
		return Scenario{}, cleanYAMLError(err)
	}
	// A second document in the file is a mistake, not something to ignore.
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return Scenario{}, fmt.Errorf("line %d: a second YAML document; a scenario file holds one", extra.Line)
	}
	if len(s.Sites) == 0 {
		return Scenario{}, errors.New("sites: empty; want at least one site")
	}
	if err := s.Validate(); err != nil {
		var root yaml.Node
		var ve *ValidationError
		if errors.As(err, &ve) && yaml.Unmarshal(data, &root) == nil {
			if line := fieldLine(&root, ve.Site, ve.Field); line > 0 {
				return Scenario{}, fmt.Errorf("line %d: %w", line, err)
			}
		}
		return Scenario{}, err
	}
	return s.normalized(), nil
}

// cleanYAMLError turns yaml.v3's "field x not found in type lab.Site" into
// words a scenario author knows.
func cleanYAMLError(err error) error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: ")
	msg = strings.ReplaceAll(msg, "unmarshal errors:\n  ", "")
	msg = strings.ReplaceAll(msg, "\n  ", "; ")
	msg = strings.ReplaceAll(msg, "not found in type lab.Site", "unknown in a site (want domain, tls, dns, expect)")
	msg = strings.ReplaceAll(msg, "not found in type lab.Scenario", "unknown at the top level (want name, sites, latency, dns_drop, drip_interval)")
	msg = strings.ReplaceAll(msg, "into time.Duration", "into a duration (want a string such as \"50ms\")")
	msg = strings.ReplaceAll(msg, "into lab.Scenario", "into a scenario (want a mapping with name, sites, latency, dns_drop, drip_interval)")
	msg = strings.ReplaceAll(msg, "into []lab.Site", "into sites (want a list of mappings with domain, tls, dns, expect)")
	msg = strings.ReplaceAll(msg, "into lab.Site", "into a site (want a mapping with domain, tls, dns, expect)")
	return errors.New(msg)
}

// fieldLine finds the line of a top-level field (site < 0), or of
// sites[site].field (or of sites[site]), in a parsed YAML document; 0 when
// not found.
func fieldLine(root *yaml.Node, site int, field string) int {
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	value := func(m *yaml.Node, key string) (k, v *yaml.Node) {
		if m.Kind != yaml.MappingNode {
			return nil, nil
		}
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value == key {
				return m.Content[i], m.Content[i+1]
			}
		}
		return nil, nil
	}
	if site < 0 {
		if k, _ := value(root, field); k != nil {
			return k.Line
		}
		return 0
	}
	_, seq := value(root, "sites")
	if seq == nil || seq.Kind != yaml.SequenceNode || site >= len(seq.Content) {
		return 0
	}
	if k, _ := value(seq.Content[site], field); k != nil {
		return k.Line
	}
	return seq.Content[site].Line
}

// ValidationError is a scenario field that is wrong.
type ValidationError struct {
	// Site is the index in Sites, or -1 for a top-level field.
	Site int
	// Field is the YAML key, e.g. "tls" or "latency".
	Field string
	// Msg says what is wrong and what is wanted.
	Msg string
	// Domain is the site's domain, when known.
	Domain string
}

func (e *ValidationError) Error() string {
	if e.Site < 0 {
		return fmt.Sprintf("%s: %s", e.Field, e.Msg)
	}
	if e.Domain != "" {
		return fmt.Sprintf("sites[%d] (%s).%s: %s", e.Site, e.Domain, e.Field, e.Msg)
	}
	return fmt.Sprintf("sites[%d].%s: %s", e.Site, e.Field, e.Msg)
}

// Validate checks every field: known behaviours and verdicts, valid and
// distinct domain names, at most [MaxSites], a latency in [0, MaxLatency],
// a drop probability in [0, 1] and a drip interval in [0,
// MaxDripInterval]. It returns a *[ValidationError] naming the first wrong
// field. An empty scenario is valid (Start then uses
// [DefaultScenario]).
func (s Scenario) Validate() error {
	if s.Latency < 0 || s.Latency > MaxLatency {
		return &ValidationError{Site: -1, Field: "latency", Msg: fmt.Sprintf("%v out of range; want a duration from 0 to %v, e.g. \"50ms\"", s.Latency, MaxLatency)}
	}
	if !(s.DNSDrop >= 0 && s.DNSDrop <= 1) { // also rejects NaN
		return &ValidationError{Site: -1, Field: "dns_drop", Msg: fmt.Sprintf("%v out of range; want a probability from 0 to 1", s.DNSDrop)}
	}
	if s.DripInterval < 0 || s.DripInterval > MaxDripInterval {
		return &ValidationError{Site: -1, Field: "drip_interval", Msg: fmt.Sprintf("%v out of range; want a duration from 0 (meaning %v) to %v, e.g. \"200ms\"", s.DripInterval, DefaultDripInterval, MaxDripInterval)}
	}
	if len(s.Sites) > MaxSites {
		return &ValidationError{Site: -1, Field: "sites", Msg: fmt.Sprintf("%d sites; the lab holds at most %d", len(s.Sites), MaxSites)}
	}
	seen := make(map[string]int, len(s.Sites))
	for i, site := range s.Sites {
		bad := func(field, msg string) error {
			return &ValidationError{Site: i, Field: field, Msg: msg, Domain: site.Domain}
		}
		name, err := canonicalSiteName(site.Domain)
		if err != nil {
			return bad("domain", err.Error())
		}
		if isReservedName(name) {
			return bad("domain", "names under lab.test are the lab's own; pick another")
		}
		if j, dup := seen[name]; dup {
			return bad("domain", fmt.Sprintf("duplicate of sites[%d]", j))
		}
		seen[name] = i
		if site.TLS != "" && !oneOf(site.TLS, TLSBehaviours()) {
			return bad("tls", fmt.Sprintf("unknown behaviour %q; want one of %s", site.TLS, strings.Join(TLSBehaviours(), ", ")))
		}
		if site.DNS != "" && !oneOf(site.DNS, DNSBehaviours()) {
			return bad("dns", fmt.Sprintf("unknown behaviour %q; want one of %s", site.DNS, strings.Join(DNSBehaviours(), ", ")))
		}
		if site.DNS == DNSNonexistent && site.TLS != "" {
			return bad("tls", "a nonexistent domain has no server; leave tls empty")
		}
		if site.IPv6 && site.DNS == DNSNonexistent {
			return bad("ipv6", "a nonexistent domain has no address; drop ipv6")
		}
		if site.IPv6 && site.TLS == Unreachable {
			return bad("ipv6", "an unreachable site has no listener; drop ipv6")
		}
		if site.Expect != "" && !oneOf(site.Expect, Verdicts()) {
			return bad("expect", fmt.Sprintf("unknown verdict %q; want one of %s", site.Expect, strings.Join(Verdicts(), ", ")))
		}
	}
	return nil
}

// canonicalName lowercases a domain and drops one trailing dot, and checks
// that it is a hostname: letters, digits, '-' and '_' in labels of 1 to 63
// bytes, at least two labels, at most 253 bytes.
func canonicalName(domain string) (string, error) {
	name := strings.ToLower(strings.TrimSuffix(domain, "."))
	if name == "" {
		return "", errors.New("empty; want a name such as example.org")
	}
	if len(name) > 253 {
		return "", fmt.Errorf("%d bytes; a name has at most 253", len(name))
	}
	if _, ok := dns.IsDomainName(name); !ok {
		return "", fmt.Errorf("%q is not a domain name", domain)
	}
	labels := strings.Split(name, ".")
	if len(labels) < 2 {
		return "", fmt.Errorf("%q has one label; want a name such as example.org", domain)
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return "", fmt.Errorf("%q has an empty or over-long label", domain)
		}
		for _, c := range []byte(l) {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return "", fmt.Errorf("%q: character %q not allowed in a hostname", domain, c)
			}
		}
	}
	return name, nil
}

// isReservedName reports whether name belongs to the lab's own zone.
func isReservedName(name string) bool {
	return name == labZone || strings.HasSuffix(name, "."+labZone)
}

func oneOf(s string, list []string) bool {
	for _, v := range list {
		if s == v {
			return true
		}
	}
	return false
}

// normalized returns the scenario with the documented defaults filled in:
// DefaultScenario for no sites, Pass and DNSTruthful for empty behaviours,
// lowercase domains.
func (s Scenario) normalized() Scenario {
	if len(s.Sites) == 0 {
		d := DefaultScenario()
		d.Latency, d.DNSDrop, d.DripInterval = s.Latency, s.DNSDrop, s.DripInterval
		if s.Name != "" {
			d.Name = s.Name
		}
		s = d
	}
	sites := make([]Site, len(s.Sites))
	for i, site := range s.Sites {
		site.Domain, _ = canonicalSiteName(site.Domain)
		if site.DNS == "" {
			site.DNS = DNSTruthful
		}
		if site.TLS == "" && site.DNS != DNSNonexistent {
			site.TLS = Pass
		}
		if site.Expect == "" {
			site.Expect = ExpectedVerdict(site.TLS, site.DNS)
		}
		sites[i] = site
	}
	s.Sites = sites
	return s
}

// encode writes the scenario as YAML that LoadScenario reads back
// (time.Duration becomes a string such as "50ms").
func (s Scenario) encode() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString("# kzprobe lab scenario; see the lab package documentation.\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(s); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
