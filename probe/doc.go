// Package probe is the measurement engine: it measures one target (a
// domain and a port) from inside a network and decides what the network
// does to it. A [Prober] measures one target and returns the complete
// record, a [measurement.Measurement]; a [Runner] measures a stream of
// targets with bounded parallelism and writes each record as it completes.
//
// # Steps
//
// [Prober.Measure] collects first and interprets second. The steps, as
// the code numbers them:
//
//  1. Local DNS: A and AAAA through the network's own resolver
//     ([DNSResolver], [LookupAll]), keeping the raw answers, the rcode and
//     every resolver asked.
//  2. Control DNS: the same through a control resolver the network cannot
//     tamper with (DoH or DoT, pinned to an address), at the same time.
//  3. DNS consistency: the local answers against the control's
//     ([ConsistencyOptions.Check]; bogons never agree, [IsBogon]), with the
//     control server's view as a later check ([IPValidFromControl]). It is
//     computed after step 4, once the control server has answered.
//  4. TCP and TLS: to each local address (at most [Prober].MaxAddresses),
//     a connect ([Connector]) and a handshake with each ClientHello
//     fingerprint ([Handshaker], [Fingerprints]), verification off and
//     every presented certificate kept. Meanwhile a control server, when
//     one is configured ([ControlServer], implemented by control.Client),
//     tries the same addresses from outside. Where every hello is refused
//     at once, a small hello is tried ([Prober].SmallHelloRetry).
//  5. Chain analysis: each presented chain judged by probe/chain
//     ([chain.Analyzer.Judge]) at the measurement's start: trusted or not,
//     and whether it leads to the ISCA or Qaznet roots.
//  6. Verdict: [Classify], a pure function of the record, through the
//     rule table [VerdictRules]: the first rule that matches decides, and
//     its [ReasonCode] names it.
//
// Steps 3, 5 and 6 send nothing and read no clock: they read the record
// (and the chain knowledge base), so they can be run again offline.
//
// A Prober with [Prober].OnStep tells it of each step as it happens
// ([Step]): each DNS query and each resolver it asked, each connect and
// handshake, the control server's check as they start and end, then the
// consistency, each chain judgement and the verdict rule. kzprobe run -v
// prints them live, so that a target that hangs shows what it waits for.
//
// # Design
//
// Probing never fails a target: every network error is recorded, as a
// failure string of package probe/failure, in the step that met it, and
// the run goes on; errors are returned for bad input and output only. The
// records are package measurement's types, the transports package dnsx's
// ([dnsx.Exchanger]), and each dialer goes through the network guard
// (probe/guard), so nothing leaves the allowed prefixes.
//
// Dependencies are fields, nil or zero meaning the documented default: the
// resolvers, the [Connector], the [Handshaker], the [chain.Analyzer], the
// [ControlServer], the clock ([Prober].Now) and the step log
// ([Prober].OnStep). Every time in a record, and in a [Step], is read on
// that one clock: an [Epoch] is the measurement's start, and each record's
// t0 and t are seconds since it, so a record's times agree with its
// measurement_start_time whatever the clock. The engine's defaults are the
// Default* constants here ([DefaultTargetTimeout], [DefaultMaxAddresses],
// [DefaultParallel] and the rest), which kzprobe run's settings table refers
// to.
package probe
