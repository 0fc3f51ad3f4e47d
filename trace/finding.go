package trace

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"kzprobe/measurement"
)

// Interpret derives a trace's finding from its four traces. It is a pure
// function of the record (no network, no clock), so a finding can be
// derived again offline from records already written.
func Interpret(tk *measurement.TraceTestKeys) measurement.TraceFinding {
	f := measurement.TraceFinding{SilentHops: silentHops(tk)}
	tcpHop := firstAnswer(tk.TCPTraceroute)
	udpHop := firstAnswer(tk.UDPTraceroute)
	f.TCPAnswerHop = tcpHop
	switch {
	case udpHop != nil:
		f.DestinationHops, f.DestinationHopsFrom = udpHop, "udp"
	case tcpHop != nil:
		f.DestinationHops, f.DestinationHopsFrom = tcpHop, "tcp"
	}
	switch {
	case tcpHop != nil && udpHop != nil:
		f.TransparentProxy = ptr(*tcpHop < *udpHop)
	case tcpHop != nil && probeAt(tk.UDPTraceroute, *tcpHop, measurement.AnswerRouter) != nil:
		// The UDP probe of the same TTL died at a router there: the
		// path goes on past the box that answered TCP.
		f.TransparentProxy = ptr(true)
	}

	target, control := firstHello(tk.TargetTrace), firstHello(tk.ControlTrace)
	if target != nil {
		f.TargetHop, f.TargetAnswer = ptr(target.TTL), target.Answer
	}
	if control != nil {
		f.ControlHop, f.ControlAnswer = ptr(control.TTL), control.Answer
		if control.Chain != nil {
			f.ControlTrusted = ptr(control.Chain.Trusted)
		}
	}
	f.Interference = interference(target, control)
	if f.Interference != "" && f.Interference != measurement.InterferenceNone {
		f.InterferenceHop = ptr(target.TTL)
	}
	switch {
	case target == nil:
	case control == nil:
		f.ControlTravels = "unanswered"
	case control.TTL > target.TTL:
		f.ControlTravels = "further"
	case control.TTL == target.TTL:
		f.ControlTravels = "same_hop"
	default:
		f.ControlTravels = "shorter"
	}
	if h := f.TargetHop; h != nil {
		f.AnsweringHop = hopAt(tk, *h)
		if *h > 1 {
			f.BeforeHop = hopAt(tk, *h-1)
		}
	}
	f.Summary = summary(&f)
	return f
}

// interference says what the box that answered the target SNI did, with
// the control's answer as reference: a chain of an interception PKI, or
// an untrusted chain where the control's was trusted, is interception; a
// reset, close or alert that the control did not get at the same hop is
// that action; a trusted chain is none. "" when the target was not
// answered or the two answers do not tell (both reset at the same hop:
// the server's own doing, or a block by address).
func interference(target, control *measurement.TLSIteration) string {
	if target == nil {
		return ""
	}
	sameAsControl := control != nil && control.TTL == target.TTL && control.Answer == target.Answer
	switch target.Answer {
	case measurement.AnswerServer:
		c := target.Chain
		switch {
		case c == nil:
			return ""
		case c.Interception != nil:
			return measurement.InterferenceChain
		case c.Trusted:
			return measurement.InterferenceNone
		case control != nil && control.Chain != nil && control.Chain.Trusted && !sameLeaf(target, control):
			return measurement.InterferenceChain
		}
		return ""
	case measurement.AnswerReset:
		if !sameAsControl {
			return measurement.InterferenceReset
		}
	case measurement.AnswerEOF:
		if !sameAsControl {
			return measurement.InterferenceEOF
		}
	case measurement.AnswerAlert:
		if !sameAsControl {
			return measurement.InterferenceAlert
		}
	}
	return ""
}

// sameLeaf reports whether two iterations were presented the same leaf. A
// leaf the record withheld (it held the probe's address) is compared by
// the SHA-256 kept of it.
func sameLeaf(a, b *measurement.TLSIteration) bool {
	if a.Handshake == nil || b.Handshake == nil || len(a.Handshake.PeerCertificates) == 0 || len(b.Handshake.PeerCertificates) == 0 {
		return false
	}
	la, lb := a.Handshake.PeerCertificates[0], b.Handshake.PeerCertificates[0]
	if la != nil && lb != nil {
		return bytes.Equal(la, lb)
	}
	sa, sb := leafSHA256(a.Handshake), leafSHA256(b.Handshake)
	return sa != "" && sa == sb
}

// leafSHA256 is the hex SHA-256 of h's leaf, as kept of it when withheld.
func leafSHA256(h *measurement.TLSHandshake) string {
	if der := h.PeerCertificates[0]; der != nil {
		s := sha256.Sum256(der)
		return hex.EncodeToString(s[:])
	}
	for _, w := range h.WithheldCertificates {
		if w.Index == 0 {
			return w.SHA256
		}
	}
	return ""
}

// firstAnswer is the TTL of the first probe the destination answered.
func firstAnswer(ps []measurement.TraceProbe) *int {
	for _, p := range ps {
		if p.Answer == measurement.AnswerDestination {
			return ptr(p.TTL)
		}
	}
	return nil
}

// firstHello is the first iteration whose hello was answered by
// something that holds the connection: a server flight, a reset, a close
// or an alert.
func firstHello(its []measurement.TLSIteration) *measurement.TLSIteration {
	for i := range its {
		switch its[i].Answer {
		case measurement.AnswerServer, measurement.AnswerReset, measurement.AnswerEOF, measurement.AnswerAlert:
			return &its[i]
		}
	}
	return nil
}

// probeAt is the probe at ttl with the given answer ("" for any), nil
// when none.
func probeAt(ps []measurement.TraceProbe, ttl int, answer string) *measurement.TraceProbe {
	for i := range ps {
		if ps[i].TTL == ttl && (answer == "" || ps[i].Answer == answer) {
			return &ps[i]
		}
	}
	return nil
}

// hopAt is who is at ttl, as the traceroutes met it: the UDP probe's
// router or destination (the TCP probe of a TTL where a box answers
// names only the address it answered for), else the TCP probe's router.
func hopAt(tk *measurement.TraceTestKeys, ttl int) *measurement.TraceHop {
	if p := probeAt(tk.UDPTraceroute, ttl, ""); p != nil && p.Hop != nil {
		return p.Hop
	}
	if p := probeAt(tk.TCPTraceroute, ttl, measurement.AnswerRouter); p != nil {
		return p.Hop
	}
	return nil
}

// silentHops lists the TTLs, up to the last that anything answered, at
// which every probe and iteration of every trace was silent.
func silentHops(tk *measurement.TraceTestKeys) []int {
	answered := map[int]bool{}
	tried := map[int]bool{}
	last := 0
	note := func(ttl int, silent bool) {
		tried[ttl] = true
		if !silent {
			answered[ttl] = true
			last = max(last, ttl)
		}
	}
	for _, ps := range [][]measurement.TraceProbe{tk.TCPTraceroute, tk.UDPTraceroute} {
		for _, p := range ps {
			note(p.TTL, p.Answer == measurement.AnswerSilent || p.Answer == measurement.AnswerFailure)
		}
	}
	for _, its := range [][]measurement.TLSIteration{tk.TargetTrace, tk.ControlTrace} {
		for _, it := range its {
			note(it.TTL, it.Answer == measurement.AnswerSilent || it.Answer == measurement.AnswerFailure)
		}
	}
	out := []int{}
	for ttl := 1; ttl < last; ttl++ {
		if tried[ttl] && !answered[ttl] {
			out = append(out, ttl)
		}
	}
	return out
}

// summary says the finding in one sentence or two, for the record and
// the terminal.
func summary(f *measurement.TraceFinding) string {
	var s []string
	where := func(h *int) string {
		w := fmt.Sprintf("hop %d", *h)
		if hop := f.AnsweringHop; hop != nil && hop.Prefix != "" {
			w += " (" + strings.TrimSpace(hop.Prefix+" "+hop.ASN+" "+hop.CC) + ")"
		}
		return w
	}
	switch {
	case f.TargetHop == nil:
		s = append(s, "The target SNI's hello was answered at no hop within the bound.")
	case f.InterferenceHop != nil:
		what := map[string]string{
			measurement.InterferenceChain: "an interception chain",
			measurement.InterferenceReset: "a reset",
			measurement.InterferenceEOF:   "a close",
			measurement.InterferenceAlert: "a TLS alert",
		}[f.Interference]
		s = append(s, fmt.Sprintf("The target SNI was answered with %s at %s.", what, where(f.InterferenceHop)))
	case f.Interference == measurement.InterferenceNone:
		s = append(s, fmt.Sprintf("The target SNI got a trusted chain at %s.", where(f.TargetHop)))
	default:
		s = append(s, fmt.Sprintf("The target SNI was answered (%s) at %s, as the control was.", f.TargetAnswer, where(f.TargetHop)))
	}
	switch {
	case f.TransparentProxy != nil && *f.TransparentProxy && f.DestinationHopsFrom == "udp":
		s = append(s, fmt.Sprintf("TCP was answered at hop %d, before the destination at hop %d: a transparent proxy.", *f.TCPAnswerHop, *f.DestinationHops))
	case f.TransparentProxy != nil && *f.TransparentProxy:
		s = append(s, fmt.Sprintf("TCP was answered at hop %d while the path goes on: a transparent proxy.", *f.TCPAnswerHop))
	case f.DestinationHops != nil:
		hops := "hops"
		if *f.DestinationHops == 1 {
			hops = "hop"
		}
		s = append(s, fmt.Sprintf("The destination is %d %s away.", *f.DestinationHops, hops))
	}
	if f.TargetHop != nil {
		switch f.ControlTravels {
		case "same_hop":
			switch {
			case f.InterferenceHop == nil:
				s = append(s, "The control SNI was answered at the same hop.")
			case f.ControlTrusted != nil && *f.ControlTrusted:
				s = append(s, "The same box answered the control SNI with a trusted chain: it lets other names through.")
			default:
				s = append(s, "The same box answered the control SNI.")
			}
		case "further":
			s = append(s, fmt.Sprintf("The control SNI went further, to hop %d.", *f.ControlHop))
		case "unanswered":
			s = append(s, "The control SNI was not answered.")
		}
	}
	if len(f.SilentHops) > 0 {
		hops := make([]string, len(f.SilentHops))
		for i, h := range f.SilentHops {
			hops[i] = fmt.Sprint(h)
		}
		s = append(s, "Silent hops: "+strings.Join(hops, ", ")+".")
	}
	return strings.Join(slices.Clip(s), " ")
}

func ptr[T any](v T) *T { return &v }
