package analysis

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"kzprobe/measurement"
	"kzprobe/probe/chain"
)

// Limits bounds what one record may decode, whatever its size in bytes. The
// line bound (Reader.MaxLineBytes) counts bytes, not what they decode to: a
// 64 MiB line of `{},` is 22 million empty handshakes, 5 GB of structs. What
// is past a count bound is skipped, the record keeps the rest, and a warning
// names the record and what was left out; a string longer than its bound
// makes the record bad. The zero value means the defaults, which hold any
// measurement kzprobe or OONI writes.
type Limits struct {
	// MaxHandshakes bounds the TLS handshakes of one record,
	// tls_handshakes and tlsping's pings together (and the pings). Zero
	// means DefaultMaxHandshakes.
	MaxHandshakes int
	// MaxCertificates bounds the certificates of one handshake; the chain
	// is cut after it. Zero means DefaultMaxCertificates.
	MaxCertificates int
	// MaxCertificateBytes bounds one certificate (DER); the chain is cut
	// before a larger one. Zero means DefaultMaxCertificateBytes.
	MaxCertificateBytes int
	// MaxRecordCertificateBytes bounds the certificates of one record
	// together; chains are cut where it is reached. Zero means
	// DefaultMaxRecordCertificateBytes.
	MaxRecordCertificateBytes int
	// MaxEntries bounds each list inside test_keys.interception (its
	// intermediates, rules and reasons). Zero means DefaultMaxEntries.
	MaxEntries int
	// MaxStringBytes bounds each string decoded (an input URL, a network
	// name, a server name, a failure); a longer one makes the record bad.
	// Zero means DefaultMaxStringBytes.
	MaxStringBytes int
}

// Defaults of Limits. kzprobe records at most 32 certificates and 256 KiB
// of chain per handshake (probe.DefaultMaxCerts, DefaultMaxChainBytes);
// OONI's web_connectivity makes a handshake per address, a few dozen at
// most.
const (
	DefaultMaxHandshakes             = 256
	DefaultMaxCertificates           = 64
	DefaultMaxCertificateBytes       = 64 << 10
	DefaultMaxRecordCertificateBytes = 16 << 20
	DefaultMaxEntries                = 64
	DefaultMaxStringBytes            = 8 << 10
)

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.MaxHandshakes, DefaultMaxHandshakes)
	def(&l.MaxCertificates, DefaultMaxCertificates)
	def(&l.MaxCertificateBytes, DefaultMaxCertificateBytes)
	def(&l.MaxRecordCertificateBytes, DefaultMaxRecordCertificateBytes)
	def(&l.MaxEntries, DefaultMaxEntries)
	def(&l.MaxStringBytes, DefaultMaxStringBytes)
	return l
}

// decoder decodes one record within its Limits, counting what it skips.
type decoder struct {
	lim Limits

	handshakes int // handshakes kept so far
	certBytes  int // certificate bytes kept so far

	// What was skipped.
	handshakesSkipped int
	pingsSkipped      int
	chainsCutCount    int // chains cut at MaxCertificates
	certsTooBig       int // certificates over MaxCertificateBytes
	chainsCutBytes    int // chains cut at MaxRecordCertificateBytes
	entriesSkipped    int // interception list entries
	withheldSkipped   int // withheld_certificates entries past MaxCertificates
}

func newDecoder(lim Limits) *decoder { return &decoder{lim: lim.withDefaults()} }

// skipped says what the record lost to the bounds, "" when nothing.
func (d *decoder) skipped() string {
	var parts []string
	add := func(n int, format string, a ...any) {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d "+format, append([]any{n}, a...)...))
		}
	}
	add(d.handshakesSkipped, "handshake(s) past the first %d", d.lim.MaxHandshakes)
	add(d.pingsSkipped, "ping(s) past the first %d", d.lim.MaxHandshakes)
	add(d.chainsCutCount, "chain(s) cut at %d certificates", d.lim.MaxCertificates)
	add(d.certsTooBig, "certificate(s) over %d bytes (chain cut before)", d.lim.MaxCertificateBytes)
	add(d.chainsCutBytes, "chain(s) cut at %d certificate bytes per record", d.lim.MaxRecordCertificateBytes)
	add(d.entriesSkipped, "test_keys.interception list entries past the first %d", d.lim.MaxEntries)
	add(d.withheldSkipped, "withheld certificate(s) past the first %d of a handshake", d.lim.MaxCertificates)
	if len(parts) == 0 {
		return ""
	}
	return "record over the decoding bounds, read in part; skipped: " + strings.Join(parts, ", ")
}

// record fills rec from the measurement object b.
func (d *decoder) record(b []byte, rec *Record) error {
	return scanObject(b, 0, func(key, val []byte, off int) error {
		var dst *string
		switch string(key) {
		case "input":
			dst = &rec.Input
		case "measurement_start_time":
			dst = &rec.MeasurementStartTime
		case "test_start_time":
			dst = &rec.TestStartTime
		case "probe_asn":
			dst = &rec.ProbeASN
		case "probe_cc":
			dst = &rec.ProbeCC
		case "probe_network_name":
			dst = &rec.ProbeNetworkName
		case "test_name":
			dst = &rec.TestName
		case "software_name":
			dst = &rec.SoftwareName
		case "report_id":
			dst = &rec.ReportID
		case "measurement_uid":
			dst = &rec.MeasurementUID
		case "test_keys":
			if string(val) == "null" {
				return nil
			}
			var chains []byte
			chainsOff := 0
			var interceptionChain *int
			err := scanObject(val, off, func(key, val []byte, off int) error {
				tk := &rec.TestKeys
				switch string(key) {
				case "domain":
					return d.str("test_keys.", key, val, &tk.Domain)
				case "verdict":
					return d.str("test_keys.", key, val, &tk.Verdict)
				case "tls_handshakes":
					return d.handshakeList("test_keys.tls_handshakes", val, off, &tk.TLSHandshakes)
				case "pings":
					return d.pings(val, off, &tk.Pings)
				case "interception":
					return d.interception(val, &tk.Interception)
				case "finding":
					return d.traceFinding(val, &tk.TraceFinding)
				case "sni_sweep":
					return d.sweepKeys(val, off, &tk.SNISweep)
				case "interception_chain":
					return unmarshalField("test_keys.", key, val, &interceptionChain)
				case "chains":
					chains, chainsOff = val, off
				}
				return nil
			})
			if err != nil || interceptionChain == nil || rec.TestKeys.Interception != nil {
				return err
			}
			return d.chainInterception(chains, chainsOff, *interceptionChain, &rec.TestKeys.Interception)
		default:
			return nil
		}
		return d.str("", key, val, dst)
	})
}

// str decodes the string val into dst, refusing one over the bound.
func (d *decoder) str(prefix string, key, val []byte, dst *string) error {
	if len(val) > d.lim.MaxStringBytes+2 {
		return fmt.Errorf("field %s%s: %d bytes, over the %d-byte bound of a string", prefix, key, len(val), d.lim.MaxStringBytes)
	}
	if s, ok := plainString(val); ok {
		*dst = s
		return nil
	}
	return unmarshalField(prefix, key, val, dst)
}

// plainString returns the JSON string val when it is printable ASCII
// without escapes (almost every string of a measurement), which needs no
// decoding; ok is false for anything else, left to encoding/json.
func plainString(val []byte) (s string, ok bool) {
	if len(val) < 2 || val[0] != '"' || val[len(val)-1] != '"' {
		return "", false
	}
	for _, c := range val[1 : len(val)-1] {
		if c < 0x20 || c >= 0x80 || c == '\\' || c == '"' {
			return "", false
		}
	}
	return string(val[1 : len(val)-1]), true
}

// decodeCertificate decodes one entry of peer_certificates, a
// measurement.BinaryData: base64 as a string or as {"data": ...,
// "format": "base64"}. Plain base64 is decoded here; anything else
// (escapes, null data, another format) by BinaryData's own UnmarshalJSON.
func decodeCertificate(val []byte) (measurement.BinaryData, error) {
	data := val
	if val[0] == '{' {
		data = nil
		plain := true
		err := scanObject(val, 0, func(key, v []byte, _ int) error {
			switch string(key) {
			case "data":
				data = v
			case "format":
				plain = plain && string(v) == `"base64"`
			}
			return nil
		})
		if err != nil || !plain || data == nil {
			data = nil
		}
	}
	if len(data) >= 2 && data[0] == '"' && data[len(data)-1] == '"' {
		b64 := data[1 : len(data)-1]
		if !bytes.ContainsAny(b64, "\\\"") {
			out := make([]byte, base64.StdEncoding.DecodedLen(len(b64)))
			n, err := base64.StdEncoding.Decode(out, b64)
			if err == nil {
				return out[:n:n], nil
			}
		}
	}
	var c measurement.BinaryData
	err := json.Unmarshal(val, &c)
	return c, err
}

// typeError is encoding/json's message for a value of the wrong kind.
func typeError(name string, val []byte, want string) error {
	kind := "value"
	switch val[0] {
	case '{':
		kind = "object"
	case '[':
		kind = "array"
	case '"':
		kind = "string"
	case 't', 'f':
		kind = "bool"
	default:
		if val[0] == '-' || val[0] >= '0' && val[0] <= '9' {
			kind = "number"
		}
	}
	return fmt.Errorf("field %s: cannot read a JSON %s as %s", name, kind, want)
}

// handshakeList decodes a list of handshakes, up to the record's bound.
func (d *decoder) handshakeList(name string, val []byte, off int, dst *[]Handshake) error {
	if string(val) == "null" {
		*dst = nil
		return nil
	}
	if val[0] != '[' {
		return typeError(name, val, "a list of handshakes")
	}
	hs := []Handshake{}
	err := scanArray(val, off, func(elem []byte, off int) error {
		if d.handshakes >= d.lim.MaxHandshakes {
			d.handshakesSkipped++
			return nil
		}
		d.handshakes++
		var h Handshake
		if err := d.handshake(name, elem, off, &h); err != nil {
			return err
		}
		hs = append(hs, h)
		return nil
	})
	if err != nil {
		return err
	}
	*dst = hs
	return nil
}

// handshake decodes one handshake object.
func (d *decoder) handshake(name string, val []byte, off int, h *Handshake) error {
	if string(val) == "null" {
		return nil
	}
	if val[0] != '{' {
		return typeError(name, val, "a handshake")
	}
	prefix := name + "."
	return scanObject(val, off, func(key, val []byte, off int) error {
		switch string(key) {
		case "address":
			return d.str(prefix, key, val, &h.Address)
		case "server_name":
			return d.str(prefix, key, val, &h.ServerName)
		case "failure":
			if string(val) == "null" {
				h.Failure = nil
				return nil
			}
			var s string
			if err := d.str(prefix, key, val, &s); err != nil {
				return err
			}
			h.Failure = &s
		case "peer_certificates":
			return d.chain(prefix+"peer_certificates", val, off, &h.PeerCertificates)
		case "withheld_certificates":
			return d.withheld(prefix+"withheld_certificates", val, off, &h.Withheld)
		}
		return nil
	})
}

// withheld decodes a handshake's withheld_certificates: at most
// MaxCertificates of them, each string within MaxStringBytes.
func (d *decoder) withheld(name string, val []byte, off int, dst *[]measurement.WithheldCertificate) error {
	if string(val) == "null" {
		*dst = nil
		return nil
	}
	if val[0] != '[' {
		return typeError(name, val, "a list of withheld certificates")
	}
	ws := []measurement.WithheldCertificate{}
	err := scanArray(val, off, func(elem []byte, off int) error {
		if len(ws) >= d.lim.MaxCertificates {
			d.withheldSkipped++
			return nil
		}
		// Twelve strings and a few numbers, with room for escapes.
		if len(elem) > 16*(d.lim.MaxStringBytes+64) {
			return fmt.Errorf("field %s: an entry of %d bytes, over the bound of its strings", name, len(elem))
		}
		var w measurement.WithheldCertificate
		if err := unmarshalField("", []byte(name), elem, &w); err != nil {
			return err
		}
		for _, s := range []string{w.Reason, w.SHA256, w.Subject, w.Issuer, w.Serial, w.SerialHex, w.NotBefore, w.NotAfter,
			w.SPKISHA256, w.SHA1, w.SignerRootSHA1, w.SignerRootName, w.RootName, w.RootSHA1} {
			if len(s) > d.lim.MaxStringBytes {
				return fmt.Errorf("field %s: a string of %d bytes, over the %d-byte bound", name, len(s), d.lim.MaxStringBytes)
			}
		}
		ws = append(ws, w)
		return nil
	})
	if err != nil {
		return err
	}
	*dst = ws
	return nil
}

// chain decodes a presented chain, cutting it at the bounds: its count, a
// certificate's size, and the record's certificate bytes.
func (d *decoder) chain(name string, val []byte, off int, dst *[]measurement.BinaryData) error {
	if string(val) == "null" {
		*dst = nil
		return nil
	}
	if val[0] != '[' {
		return typeError(name, val, "a list of certificates")
	}
	// A certificate's raw JSON over this is over the size bound whatever
	// it holds (base64 is 4/3, and room for escapes and the wrapper).
	maxRaw := 3*d.lim.MaxCertificateBytes + 64
	certs := []measurement.BinaryData{}
	cut := false
	err := scanArray(val, off, func(elem []byte, off int) error {
		switch {
		case cut:
			return nil
		case len(certs) >= d.lim.MaxCertificates:
			cut = true
			d.chainsCutCount++
			return nil
		case len(elem) > maxRaw:
			cut = true
			d.certsTooBig++
			return nil
		}
		c, err := decodeCertificate(elem)
		if err != nil {
			return fmt.Errorf("field %s: %v", name, err)
		}
		switch {
		case len(c) > d.lim.MaxCertificateBytes:
			cut = true
			d.certsTooBig++
			return nil
		case d.certBytes+len(c) > d.lim.MaxRecordCertificateBytes:
			cut = true
			d.chainsCutBytes++
			return nil
		}
		d.certBytes += len(c)
		certs = append(certs, c)
		return nil
	})
	if err != nil {
		return err
	}
	*dst = certs
	return nil
}

// pings decodes tlsping's pings, each with its handshake(s).
func (d *decoder) pings(val []byte, off int, dst *[]Ping) error {
	const name = "test_keys.pings"
	if string(val) == "null" {
		*dst = nil
		return nil
	}
	if val[0] != '[' {
		return typeError(name, val, "a list of pings")
	}
	ps := []Ping{}
	err := scanArray(val, off, func(elem []byte, off int) error {
		if len(ps) >= d.lim.MaxHandshakes {
			d.pingsSkipped++
			return nil
		}
		var p Ping
		if string(elem) != "null" {
			if elem[0] != '{' {
				return typeError(name, elem, "a ping")
			}
			err := scanObject(elem, off, func(key, val []byte, off int) error {
				if string(key) != "tls_handshake" {
					return nil
				}
				return d.pingHandshakes(name+".tls_handshake", val, off, &p.TLSHandshakes)
			})
			if err != nil {
				return err
			}
		}
		ps = append(ps, p)
		return nil
	})
	if err != nil {
		return err
	}
	*dst = ps
	return nil
}

// pingHandshakes decodes a ping's tls_handshake: a list before
// 2022-06-22 (ts-033), one object or null since (see Ping).
func (d *decoder) pingHandshakes(name string, val []byte, off int, dst *pingHandshakes) error {
	switch {
	case string(val) == "null":
		*dst = nil
		return nil
	case val[0] == '[':
		return d.handshakeList(name, val, off, (*[]Handshake)(dst))
	}
	if d.handshakes >= d.lim.MaxHandshakes {
		d.handshakesSkipped++
		*dst = nil
		return nil
	}
	d.handshakes++
	var h Handshake
	if err := d.handshake(name, val, off, &h); err != nil {
		return err
	}
	*dst = []Handshake{h}
	return nil
}

// interception decodes kzprobe's own finding with each of its lists cut
// to MaxEntries (trimArrays), so that a list of 22 million `{}` costs a
// scan, not gigabytes.
func (d *decoder) interception(val []byte, dst **chain.Interception) error {
	const name = "test_keys.interception"
	if string(val) == "null" {
		*dst = nil
		return nil
	}
	if val[0] != '{' {
		return typeError(name, val, "an object")
	}
	trimmed, cut, err := trimArrays(val, d.lim.MaxEntries, d.lim.MaxStringBytes)
	if err != nil {
		return fmt.Errorf("field %s: %v", name, err)
	}
	d.entriesSkipped += cut
	in := *dst
	if in == nil {
		in = new(chain.Interception)
	}
	if err := unmarshalField("test_keys.", []byte("interception"), trimmed, in); err != nil {
		return err
	}
	*dst = in
	return nil
}

// chainInterception decodes, as interception does, the finding of
// chains[i], where chains (at offset off of the line; nil when absent) is
// test_keys.chains of a kzprobe record of format 0.2.0 or later, whose
// test_keys.interception_chain is i (earlier records wrote the finding a
// second time, as test_keys.interception). Only that chain's finding is
// decoded.
func (d *decoder) chainInterception(chains []byte, off, i int, dst **chain.Interception) error {
	n := 0
	var elem []byte
	if chains != nil && string(chains) != "null" {
		err := scanArray(chains, off, func(e []byte, _ int) error {
			if n == i {
				elem = e
			}
			n++
			return nil
		})
		if err != nil {
			return fmt.Errorf("field test_keys.chains: %w", err)
		}
	}
	var found []byte
	if elem != nil && elem[0] == '{' {
		err := scanObject(elem, 0, func(key, val []byte, _ int) error {
			if string(key) == "interception" {
				found = val
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("field test_keys.chains[%d]: %w", i, err)
		}
	}
	if found == nil || string(found) == "null" {
		return fmt.Errorf("field test_keys.interception_chain: %d names no chain with an interception finding (%d chains)", i, n)
	}
	return d.interception(found, dst)
}

// maxTrimDepth bounds the nesting trimArrays follows; kzprobe's
// interception object is three deep.
const maxTrimDepth = 32

// trimArrays copies the JSON value b keeping at most max elements of each
// array at any depth, and returns how many it left out. A string longer
// than maxString bytes, or nesting deeper than maxTrimDepth, is an error.
// It checks the structure only as far as it must to find elements;
// encoding/json checks the copy.
func trimArrays(b []byte, max, maxString int) (out []byte, cut int, err error) {
	out = make([]byte, 0, len(b))
	// Each open container: whether it is an array, and its elements.
	type level struct {
		array bool
		n     int
	}
	var stack []level
	i := 0
	for i < len(b) {
		c := b[i]
		if isSpace(c) {
			i++
			continue
		}
		top := len(stack) - 1
		inArray := top >= 0 && stack[top].array
		switch c {
		case ',':
			if !inArray { // in an array, written before each element kept
				out = append(out, c)
			}
			i++
			continue
		case ':':
			out = append(out, c)
			i++
			continue
		case ']', '}':
			if top < 0 || stack[top].array != (c == ']') {
				return nil, 0, fmt.Errorf("mismatched %q", c)
			}
			stack = stack[:top]
			out = append(out, c)
			i++
			continue
		}
		// The start of a value, or of an object's key.
		if inArray {
			if stack[top].n >= max {
				end, err := skipValue(b, i)
				if err != nil {
					return nil, 0, err
				}
				cut++
				i = end
				continue
			}
			if stack[top].n > 0 {
				out = append(out, ',')
			}
			stack[top].n++
		}
		switch c {
		case '[', '{':
			if len(stack) >= maxTrimDepth {
				return nil, 0, fmt.Errorf("nested deeper than %d", maxTrimDepth)
			}
			stack = append(stack, level{array: c == '['})
			out = append(out, c)
			i++
		case '"':
			end, err := skipString(b, i)
			if err != nil {
				return nil, 0, err
			}
			if end-i > maxString+2 {
				return nil, 0, fmt.Errorf("a string of %d bytes, over the %d-byte bound", end-i, maxString)
			}
			out = append(out, b[i:end]...)
			i = end
		default:
			end, err := skipLiteral(b, i)
			if err != nil {
				return nil, 0, err
			}
			out = append(out, b[i:end]...)
			i = end
		}
	}
	return out, cut, nil
}
