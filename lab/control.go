package lab

import (
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/miekg/dns"
)

// The control resolver: DNS-over-HTTPS (RFC 8484) on [Lab.DoHURL] and
// DNS-over-TLS (RFC 7858) on [Lab.DoTAddr], with a certificate from the
// public test root for [Lab.ControlServerName] and both IP addresses. It
// stands for a resolver outside the censored network: the middlebox never
// sees its traffic.

// dohPath is the DoH endpoint's path.
const dohPath = "/dns-query"

// dnsMessageType is the media type of RFC 8484.
const dnsMessageType = "application/dns-message"

// serveDoH answers RFC 8484 GET (?dns=base64url) and POST
// (application/dns-message) requests.
func (l *Lab) serveDoH(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != dohPath {
		http.NotFound(w, r)
		return
	}
	var wire []byte
	switch r.Method {
	case http.MethodGet:
		q := r.URL.Query().Get("dns")
		if q == "" {
			http.Error(w, "missing dns parameter", http.StatusBadRequest)
			return
		}
		if len(q) > 2*dns.MaxMsgSize {
			http.Error(w, "dns parameter too long", http.StatusRequestURITooLong)
			return
		}
		// RFC 8484 4.1: base64url without padding; be lenient about it.
		b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(q, "="))
		if err != nil {
			http.Error(w, "dns parameter is not base64url", http.StatusBadRequest)
			return
		}
		wire = b
	case http.MethodPost:
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != dnsMessageType {
			http.Error(w, "want Content-Type "+dnsMessageType, http.StatusUnsupportedMediaType)
			return
		}
		b, err := io.ReadAll(io.LimitReader(r.Body, dns.MaxMsgSize+1))
		if err != nil {
			http.Error(w, "reading body", http.StatusBadRequest)
			return
		}
		if len(b) > dns.MaxMsgSize {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		wire = b
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	req := new(dns.Msg)
	if err := req.Unpack(wire); err != nil || req.Response {
		http.Error(w, "not a DNS query", http.StatusBadRequest)
		return
	}
	m := l.respond(req, viewControl)
	l.logDNS("control resolver (DoH)", req, m, remoteAddr(r.RemoteAddr), "")
	out, err := m.Pack()
	if err != nil {
		http.Error(w, "packing answer", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", dnsMessageType)
	w.Header().Set("Cache-Control", fmt.Sprintf("max-age=%d", dnsTTL))
	w.Write(out)
}

// remoteAddr is an HTTP request's client address for the request log.
type remoteAddr string

func (a remoteAddr) Network() string { return "tcp" }
func (a remoteAddr) String() string  { return string(a) }
