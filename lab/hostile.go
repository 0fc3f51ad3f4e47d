package lab

// Hostile peers: a TLS server and a local resolver that do not censor but
// misbehave on purpose, to prove that a client finishes within its deadline,
// records a precise failure and holds a bounded amount of what it was sent.
// Which site gets what is data ([HostileTLSBehaviours],
// [HostileDNSBehaviours]); [HostileScenario] has one site per behaviour.
//
// The hostile TLS peers terminate TLS in the middlebox's goroutine with a
// crypto/tls server of their own (not the interception HTTP server), and
// end when the client goes away or the lab closes. Their certificates come
// from the lab's ISCA PKI, built on first use per SNI and kept in the
// PKI's cache of forged leaves: building the 2 MB chain costs more than
// serving it, ten times more under the race detector.

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Sizes of the hostile chains and certificates.
const (
	// ChainLongCerts is how many certificates ChainLong presents.
	ChainLongCerts = 200
	// ChainHeavyPadded is how many padded certificates ChainHeavy adds to
	// the leaf and the intermediate, and ChainHeavyPad the padding of
	// each, in bytes: about 2 MB in all.
	ChainHeavyPadded = 20
	ChainHeavyPad    = 100 << 10
	// CertAbsurdSANs is how many DNS names CertAbsurd's leaf carries.
	CertAbsurdSANs = 10000
	// garbageSize is how many random bytes Garbage sends.
	garbageSize = 4 << 10
)

// CertAbsurdNotAfter is CertAbsurd's notAfter: the RFC 5280 section
// 4.1.2.5 value for "no well-defined expiration date".
var CertAbsurdNotAfter = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)

// WrongQuestionName is the name a DNSWrongQuestion decoy answers.
const WrongQuestionName = "wrong-question." + labZone

// alertHandshakeFailure is a TLS 1.2 record holding a fatal
// handshake_failure alert (RFC 5246 section 7.2: level 2, description 40).
var alertHandshakeFailure = []byte{21, 3, 3, 0, 2, 2, 40}

// HostileScenario is a scenario with one site per hostile behaviour. The
// TLS ones have a truthful resolver; the DNS ones are intercepted with the
// ISCA PKI, so that a probe that survives the resolver still has something
// to find. Drip sites drip at [DefaultDripInterval]; set DripInterval to
// go faster.
func HostileScenario() Scenario {
	s := Scenario{
		Name: "hostile",
		Sites: []Site{
			{Domain: "drip.example", TLS: Drip},
			{Domain: "garbage.example", TLS: Garbage},
			{Domain: "chain-long.example", TLS: ChainLong},
			{Domain: "chain-heavy.example", TLS: ChainHeavy},
			{Domain: "chain-malformed.example", TLS: ChainMalformed},
			{Domain: "cert-absurd.example", TLS: CertAbsurd},
			{Domain: "cert-invalid-fields.example", TLS: CertInvalidFields},
			{Domain: "alert-mid-handshake.example", TLS: AlertMidHandshake},
			{Domain: "dns-truncated.example", TLS: InterceptISCA, DNS: DNSTruncated},
			{Domain: "dns-wrong-id.example", TLS: InterceptISCA, DNS: DNSWrongID},
			{Domain: "dns-wrong-question.example", TLS: InterceptISCA, DNS: DNSWrongQuestion},
			{Domain: "dns-compression-loop.example", TLS: InterceptISCA, DNS: DNSCompressionLoop},
			{Domain: "dns-many-answers.example", TLS: InterceptISCA, DNS: DNSManyAnswers},
			{Domain: "dns-duplicate.example", TLS: InterceptISCA, DNS: DNSDuplicate},
			{Domain: "dns-silent.example", TLS: InterceptISCA, DNS: DNSSilent},
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

// dripInterval is the Drip pace of the running scenario.
func (l *Lab) dripInterval() time.Duration {
	if d := l.Scenario.DripInterval; d > 0 {
		return d
	}
	return DefaultDripInterval
}

// hostileTLS runs a hostile TLS behaviour on c, whose first flight raw
// (the ClientHello) has been read, for the SNI name.
func (l *Lab) hostileTLS(c net.Conn, raw []byte, name, behaviour string) {
	defer c.Close()
	if behaviour == Garbage {
		if !sleep(l.latency, l.done) {
			return
		}
		c.Write(garbage())
		io.Copy(io.Discard, c) // until the client gives up or Close ends it
		return
	}
	cert, err := l.hostileCertificate(name, behaviour)
	if err != nil {
		l.errorLog.Printf("lab: %s for %s: %v", behaviour, name, err)
		return
	}
	var conn net.Conn = &replayConn{Conn: c, replay: raw}
	if l.latency > 0 {
		conn = &latencyConn{Conn: conn, d: l.latency, done: l.done}
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{*cert}, NextProtos: []string{"h2", "http/1.1"}}
	switch behaviour {
	case Drip:
		conn = &dripConn{Conn: conn, every: l.dripInterval(), done: l.done}
	case AlertMidHandshake:
		// In TLS 1.2 the Certificate message is plaintext and an alert
		// can follow it before any key is agreed; in TLS 1.3 everything
		// after the ServerHello is encrypted.
		cfg.MaxVersion = tls.VersionTLS12
		conn = &alertConn{Conn: conn}
	}
	tc := tls.Server(conn, cfg)
	if err := tc.Handshake(); err != nil {
		return
	}
	io.Copy(io.Discard, tc) // until the client closes
}

// garbage returns random bytes whose first byte is no TLS content type
// (20 to 24), so that every TLS client fails on the first record header
// rather than waiting for a record length it read from noise.
func garbage() []byte {
	b := make([]byte, garbageSize)
	rand.Read(b)
	b[0] = 0x99
	return b
}

// hostileCertificate returns the certificate (chain and key) a hostile
// behaviour presents for name, from the PKI's cache of forged leaves
// (keyed by name and behaviour, so it never collides with an interception
// mode) or built and cached.
func (l *Lab) hostileCertificate(name, behaviour string) (*tls.Certificate, error) {
	return l.PKI.cached(forgeKey{name, behaviour}, func() (*tls.Certificate, error) {
		return l.PKI.buildHostile(name, behaviour)
	})
}

// buildHostile builds the certificate a hostile behaviour presents for name.
func (p *PKI) buildHostile(name, behaviour string) (*tls.Certificate, error) {
	forged, err := p.Forge(name, InterceptISCA)
	if err != nil {
		return nil, err
	}
	out := *forged
	out.Leaf = nil
	out.Certificate = append([][]byte(nil), forged.Certificate...) // leaf, ISCA intermediate
	// Fillers all certify the leaf's key: one key generated per filler
	// would only cost time.
	pub := forged.PrivateKey.(crypto.Signer).Public()
	switch behaviour {
	case Drip, AlertMidHandshake:
	case ChainLong:
		for i := len(out.Certificate); i < ChainLongCerts; i++ {
			der, err := p.filler(pub, i, 0)
			if err != nil {
				return nil, err
			}
			out.Certificate = append(out.Certificate, der)
		}
	case ChainHeavy:
		for i := range ChainHeavyPadded {
			der, err := p.filler(pub, i, ChainHeavyPad)
			if err != nil {
				return nil, err
			}
			out.Certificate = append(out.Certificate, der)
		}
	case ChainMalformed:
		bad := bytes.Clone(out.Certificate[1])
		bad[0] = 0x31 // SET instead of SEQUENCE
		out.Certificate[1] = bad
	case CertAbsurd:
		leaf, key, err := p.absurdLeaf(name)
		if err != nil {
			return nil, err
		}
		out.Certificate[0], out.PrivateKey = leaf, key
	case CertInvalidFields:
		leaf, key, err := p.invalidFieldsLeaf(name)
		if err != nil {
			return nil, err
		}
		out.Certificate[0], out.PrivateKey = leaf, key
	default:
		return nil, fmt.Errorf("%q is not a hostile TLS behaviour that presents certificates", behaviour)
	}
	return &out, nil
}

// filler issues a certificate for pub from the ISCA intermediate, numbered
// i, with an opaque private extension of pad bytes when pad > 0.
func (p *PKI) filler(pub crypto.PublicKey, i, pad int) ([]byte, error) {
	tmpl := &x509.Certificate{
		SerialNumber:   big.NewInt(int64(1000 + i)),
		Subject:        pkix.Name{CommonName: fmt.Sprintf("kzprobe lab filler %d", i)},
		NotBefore:      p.Now.Add(-backdate),
		NotAfter:       p.Now.Add(leafValidity),
		AuthorityKeyId: p.ISCAIntermediate.SubjectKeyId,
	}
	if pad > 0 {
		tmpl.ExtraExtensions = []pkix.Extension{{
			Id:    asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 32473, 1}, // documentation OID (RFC 5612)
			Value: bytes.Repeat([]byte{0xAB}, pad),
		}}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ISCAIntermediate, pub, p.iscaIntKey)
	if err != nil {
		return nil, fmt.Errorf("lab: pki: filler %d: %w", i, err)
	}
	return der, nil
}

// absurdLeaf issues CertAbsurd's leaf for name from the ISCA intermediate:
// name and CertAbsurdSANs-1 more DNS names, valid until year 9999.
func (p *PKI) absurdLeaf(name string) ([]byte, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("lab: pki: %w", err)
	}
	names := make([]string, 0, CertAbsurdSANs)
	names = append(names, name)
	for i := 1; len(names) < CertAbsurdSANs; i++ {
		names = append(names, fmt.Sprintf("n%d.test", i)) // short: 10 000 of them stay under 256 KiB
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             p.Now.Add(-time.Hour),
		NotAfter:              CertAbsurdNotAfter,
		DNSNames:              names,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		AuthorityKeyId:        p.ISCAIntermediate.SubjectKeyId,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ISCAIntermediate, key.Public(), p.iscaIntKey)
	if err != nil {
		return nil, nil, fmt.Errorf("lab: pki: absurd leaf: %w", err)
	}
	return der, key, nil
}

// invalidFieldsLeaf issues CertInvalidFields's leaf for name from the ISCA
// intermediate: a negative serial number and a subject CN that is a
// UTF8String of invalid UTF-8. crypto/x509 creates neither, so the
// certificate is created with a positive serial and the raw subject, then
// the serial's sign bit is set in the DER and the TBSCertificate signed
// again: the signature is valid, the fields are not.
func (p *PKI) invalidFieldsLeaf(name string) ([]byte, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("lab: pki: %w", err)
	}
	subject, err := asn1.Marshal(pkix.RDNSequence{{{
		Type:  asn1.ObjectIdentifier{2, 5, 4, 3},
		Value: asn1.RawValue{Tag: asn1.TagUTF8String, Bytes: []byte("ISCA \xff\xfe\xc0\xaf invalid UTF-8")},
	}}})
	if err != nil {
		return nil, nil, fmt.Errorf("lab: pki: %w", err)
	}
	// 16 bytes, the first below 0x80: one content byte per serial byte,
	// no leading zero, so setting bit 7 of the first makes it negative.
	serialBytes := make([]byte, 16)
	rand.Read(serialBytes)
	serialBytes[0] = 0x11
	tmpl := &x509.Certificate{
		SerialNumber:   new(big.Int).SetBytes(serialBytes),
		RawSubject:     subject,
		NotBefore:      p.Now.Add(-time.Hour),
		NotAfter:       p.Now.Add(leafValidity),
		DNSNames:       []string{name},
		KeyUsage:       x509.KeyUsageDigitalSignature,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		AuthorityKeyId: p.ISCAIntermediate.SubjectKeyId,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ISCAIntermediate, key.Public(), p.iscaIntKey)
	if err != nil {
		return nil, nil, fmt.Errorf("lab: pki: invalid-fields leaf: %w", err)
	}
	der, err = negateSerial(der, p.iscaIntKey)
	if err != nil {
		return nil, nil, fmt.Errorf("lab: pki: invalid-fields leaf: %w", err)
	}
	return der, key, nil
}

// negateSerial sets the sign bit of a certificate's serial number and
// signs the TBSCertificate again with signer (ECDSA with SHA-256, the
// algorithm the certificate names for a P-256 issuer).
func negateSerial(der []byte, signer crypto.Signer) ([]byte, error) {
	input := cryptobyte.String(der)
	var cert, tbs, tbsBody, sigAlg cryptobyte.String
	if !input.ReadASN1(&cert, cbasn1.SEQUENCE) ||
		!cert.ReadASN1Element(&tbs, cbasn1.SEQUENCE) ||
		!cert.ReadASN1Element(&sigAlg, cbasn1.SEQUENCE) {
		return nil, errors.New("certificate does not parse")
	}
	tbsBody = tbs
	if !tbsBody.ReadASN1(&tbsBody, cbasn1.SEQUENCE) {
		return nil, errors.New("TBSCertificate does not parse")
	}
	off := len(tbs) - len(tbsBody) // start of the TBS contents
	var version cryptobyte.String
	versionTag := cbasn1.Tag(0).Constructed().ContextSpecific()
	if tbsBody.PeekASN1Tag(versionTag) {
		before := len(tbsBody)
		if !tbsBody.ReadASN1Element(&version, versionTag) {
			return nil, errors.New("version does not parse")
		}
		off += before - len(tbsBody)
	}
	var serial cryptobyte.String
	if !tbsBody.ReadASN1Element(&serial, cbasn1.INTEGER) || len(serial) < 3 || serial[1] >= 0x80 {
		return nil, errors.New("serial is not a short-form INTEGER")
	}
	newTBS := bytes.Clone(tbs)
	newTBS[off+2] |= 0x80
	digest := sha256.Sum256(newTBS)
	sig, err := signer.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return nil, err
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(newTBS)
		b.AddBytes(sigAlg)
		b.AddASN1BitString(sig)
	})
	return b.Bytes()
}

// dripConn writes one byte per interval, until the lab closes.
type dripConn struct {
	net.Conn
	every time.Duration
	done  <-chan struct{}
}

func (c *dripConn) Write(b []byte) (int, error) {
	for i := range b {
		if _, err := c.Conn.Write(b[i : i+1]); err != nil {
			return i, err
		}
		if !sleep(c.every, c.done) {
			return i + 1, net.ErrClosed
		}
	}
	return len(b), nil
}

// errAlerted is what alertConn returns once it has sent its alert, so that
// the TLS server's handshake stops there.
var errAlerted = errors.New("lab: handshake_failure alert sent")

// alertConn passes a TLS server's records through until the record that
// completes its Certificate handshake message, then sends a fatal
// handshake_failure alert in place of the rest and fails every later
// write. It expects plaintext handshake records (TLS 1.2).
type alertConn struct {
	net.Conn
	pending []byte // the start of a record not yet whole
	hs      []byte // handshake bytes passed, not yet whole messages
	alerted bool
}

func (c *alertConn) Write(b []byte) (int, error) {
	if c.alerted {
		return 0, errAlerted
	}
	c.pending = append(c.pending, b...)
	var out []byte
	for len(c.pending) >= 5 && !c.alerted {
		n := 5 + int(binary.BigEndian.Uint16(c.pending[3:5]))
		if len(c.pending) < n {
			break
		}
		rec := c.pending[:n]
		out = append(out, rec...)
		c.pending = c.pending[n:]
		if rec[0] == 22 && c.certificateDone(rec[5:]) {
			out = append(out, alertHandshakeFailure...)
			c.alerted = true
		}
	}
	if len(out) > 0 {
		if _, err := c.Conn.Write(out); err != nil {
			return 0, err
		}
	}
	if c.alerted {
		return len(b), errAlerted
	}
	return len(b), nil
}

// certificateDone adds a handshake record's body to the messages seen and
// reports whether a whole Certificate message (type 11) is among them.
func (c *alertConn) certificateDone(body []byte) bool {
	c.hs = append(c.hs, body...)
	for len(c.hs) >= 4 {
		n := 4 + (int(c.hs[1])<<16 | int(c.hs[2])<<8 | int(c.hs[3]))
		if len(c.hs) < n {
			return false
		}
		typ := c.hs[0]
		c.hs = c.hs[n:]
		if typ == 11 {
			return true
		}
	}
	return false
}

// hostileDNS returns the hostile DNS behaviour of the site req asks about,
// or "" when there is none.
func (l *Lab) hostileDNS(req *dns.Msg) string {
	if req.Opcode != dns.OpcodeQuery || len(req.Question) != 1 {
		return ""
	}
	name := strings.ToLower(strings.TrimSuffix(req.Question[0].Name, "."))
	i, ok := l.byName[name]
	if !ok {
		return ""
	}
	switch b := l.sites[i].DNS; b {
	case DNSTruncated, DNSWrongID, DNSWrongQuestion, DNSCompressionLoop, DNSManyAnswers, DNSDuplicate, DNSSilent:
		return b
	}
	return ""
}

// addManyAnswers fills m, the truthful answer to an A question, with
// 500 A records for the same address, TTLs 1 to 500.
func addManyAnswers(m *dns.Msg) {
	if len(m.Answer) != 1 {
		return
	}
	a, ok := m.Answer[0].(*dns.A)
	if !ok {
		return
	}
	m.Answer = m.Answer[:0]
	for ttl := uint32(1); ttl <= 500; ttl++ {
		rr := *a
		rr.Hdr.Ttl = ttl
		m.Answer = append(m.Answer, &rr)
	}
	m.Compress = true
}

// writeHostileDNS sends what a hostile behaviour sends in answer to req, m
// being the truthful answer (already truncated for UDP). DNSSilent and
// DNSManyAnswers are handled before: the one sends nothing, the other is a
// truthful answer that is merely large.
func writeHostileDNS(w dns.ResponseWriter, req, m *dns.Msg, behaviour string, udp bool) {
	switch behaviour {
	case DNSTruncated:
		if udp {
			tc := m.Copy()
			tc.Truncated = true
			tc.Answer, tc.Ns = nil, nil
			w.WriteMsg(tc)
			return
		}
	case DNSWrongID:
		decoy := bogonDecoy(m, m.Question[0].Name)
		decoy.Id = m.Id + 1
		w.WriteMsg(decoy)
	case DNSWrongQuestion:
		decoy := bogonDecoy(m, dns.Fqdn(WrongQuestionName))
		decoy.Question[0].Name = dns.Fqdn(WrongQuestionName)
		w.WriteMsg(decoy)
	case DNSCompressionLoop:
		w.Write(compressionLoop(req))
		return
	case DNSDuplicate:
		w.WriteMsg(m)
	}
	w.WriteMsg(m)
}

// bogonDecoy is a copy of m whose answer, for an A question, is owner A
// BogonAddr.
func bogonDecoy(m *dns.Msg, owner string) *dns.Msg {
	d := m.Copy()
	d.Rcode = dns.RcodeSuccess
	d.Truncated = false
	d.Answer = nil
	if len(d.Question) == 1 && d.Question[0].Qtype == dns.TypeA {
		d.Answer = []dns.RR{&dns.A{
			Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: dnsTTL},
			A:   net.ParseIP(BogonAddr).To4(),
		}}
	}
	return d
}

// compressionLoop is a response to req whose question name is a
// compression pointer to itself (offset 12 points to offset 12), as raw
// bytes: no DNS library would build it.
func compressionLoop(req *dns.Msg) []byte {
	b := make([]byte, 12, 18)
	binary.BigEndian.PutUint16(b[0:], req.Id)
	flags := uint16(1<<15 | 1<<7) // QR, RA
	if req.RecursionDesired {
		flags |= 1 << 8
	}
	binary.BigEndian.PutUint16(b[2:], flags)
	binary.BigEndian.PutUint16(b[4:], 1) // QDCOUNT
	qtype, qclass := uint16(dns.TypeA), uint16(dns.ClassINET)
	if len(req.Question) == 1 {
		qtype, qclass = req.Question[0].Qtype, req.Question[0].Qclass
	}
	b = append(b, 0xC0, 0x0C)
	b = binary.BigEndian.AppendUint16(b, qtype)
	return binary.BigEndian.AppendUint16(b, qclass)
}
