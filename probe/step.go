package probe

// Steps as they happen: a Prober with an OnStep func tells it of each step
// of a measurement as it starts and as it ends, for a live debug log
// (kzprobe run -v). A target that hangs (a DNS query timing out, a
// connect that never completes, a handshake a middlebox stalls) shows what
// it waits for long before its record is complete.

import (
	"kzprobe/measurement"
	"kzprobe/probe/chain"
)

// StepKind names a step of a measurement in a [Step].
type StepKind string

// The steps reported to [Prober.OnStep], in the order a measurement takes
// them (see the package documentation's steps).
const (
	// StepDNS is one query (A or AAAA) to the local or the control
	// resolver (Step.Side), retries and fallbacks included: Step.Query.
	StepDNS StepKind = "dns"
	// StepDNSTry is one resolver asked within a query, reported as it
	// ends, when the query asks more than one (a retry after a timeout,
	// a fallback resolver): Step.Try. A query asked once has its StepDNS
	// only.
	StepDNSTry StepKind = "dns_try"
	// StepConnect is one TCP connect: Step.Connect.
	StepConnect StepKind = "connect"
	// StepHandshake is one TLS handshake, with one fingerprint at one
	// address, the small-hello retry among them: Step.Handshake.
	StepHandshake StepKind = "handshake"
	// StepControlServer is the control server's check of the addresses:
	// Step.ControlRequest as it starts, Step.Control as it ends.
	StepControlServer StepKind = "control_server"
	// StepConsistency is the comparison of the local and control answers,
	// reported as it ends: Step.Consistency.
	StepConsistency StepKind = "consistency"
	// StepChain is the judgement of one handshake's presented chain,
	// reported as it ends: Step.Handshake and Step.Chain.
	StepChain StepKind = "chain"
	// StepVerdict is the verdict rule that decided, reported as it ends:
	// Step.Decision.
	StepVerdict StepKind = "verdict"
)

// Step is one step of a measurement as it starts (Done false) or as it
// ends (Done true), told to [Prober.OnStep]. The network steps (DNS,
// connect, handshake, control server) are told both; the interpretation
// (consistency, chain, verdict), which sends nothing and takes no time
// worth waiting for, only as it ends, once the network steps are over.
//
// The records are copies, the caller's to keep: as a step starts, they
// hold what is known then (a query's name, type, resolver and engine; a
// connect's address; a handshake's address, server name, fingerprint and
// SmallHelloRetry); as it ends, the complete record, as the measurement
// keeps it.
type Step struct {
	// Kind names the step; it says which of the record fields are set.
	Kind StepKind
	// Done is false when the step starts and true when it ends.
	Done bool
	// Target is the target measured: the domain, with ":port" when the
	// port is not 443.
	Target string
	// T is when the step started or ended, in seconds since the
	// measurement's start on the Prober's clock (see [Epoch]).
	T float64
	// Side is "local" or "control" for StepDNS and StepDNSTry.
	Side string
	// Query is the DNS query of StepDNS; for StepDNSTry, the query the
	// try belongs to, as it started.
	Query *measurement.DNSQuery
	// Try is the resolver asked, for StepDNSTry.
	Try *measurement.DNSTry
	// Connect is the TCP connect of StepConnect.
	Connect *measurement.TCPConnect
	// Handshake is the TLS handshake of StepHandshake, and the one whose
	// chain StepChain judged.
	Handshake *measurement.TLSHandshake
	// Chain is the judgement of StepChain.
	Chain *chain.Judgement
	// ControlRequest is what is sent to the control server, as
	// StepControlServer starts.
	ControlRequest *measurement.ControlRequest
	// Control is the control server's report, as StepControlServer ends.
	// The probe's public address the server saw is left out, as in the
	// record, unless Envelope.ProbeIP is set.
	Control *measurement.ControlReport
	// Consistency is the DNS consistency of StepConsistency.
	Consistency *measurement.DNSConsistency
	// Decision is the verdict rule's decision of StepVerdict.
	Decision *Decision
}

// stepFunc tells one measurement's steps: a Step with Target (and, for
// DNS, Side) filled in. nil tells nothing; callers check before building a
// Step, so a Prober without OnStep spends nothing on them.
type stepFunc func(Step)

// stepper returns the stepFunc of one measurement of target, nil without
// OnStep.
func (p *Prober) stepper(target string) stepFunc {
	if p.OnStep == nil {
		return nil
	}
	return func(s Step) {
		s.Target = target
		p.OnStep(s)
	}
}

// side returns s with Side set to side for every step, nil for nil.
func (s stepFunc) side(side string) stepFunc {
	if s == nil {
		return nil
	}
	return func(st Step) {
		st.Side = side
		s(st)
	}
}
