// Package sweep finds the names a network intercepts or blocks by SNI
// alone: for every name, one TLS handshake to one neutral endpoint outside
// the network, the same address every time, with that name as the SNI.
// The endpoint's own certificate is known by its key pin
// ([chain.Pin]), so any other chain is interception on the way; a
// handshake that dies for one name while a control name succeeds right
// after it is blocking by SNI. This is OONI's sni_blocking idea
// (ts-024-sni-blocking) and Censored Planet's Hyperquack, done from
// inside and joined to kzprobe's chain judgement. It is `kzprobe sweep`
// without the command line.
//
// # Design
//
// [Sweeper.Run] reads a stream of names and writes one record per name
// through a [measurement.Writer], with bounded parallelism
// ([Sweeper.Parallel]) and rate ([Sweeper.Rate]); nothing holds the list,
// so memory is flat in its length. The TCP connect and the handshake are
// the engine's own ([probe.Connector], [probe.Handshaker]: the configured
// uTLS fingerprint, every presented certificate kept as DER), and the
// chain is judged by [chain.Analyzer.Judge] exactly as `kzprobe run`
// judges it.
//
// A control name ([Sweeper.ControlSNI], one nobody blocks) guards every
// conclusion, so that a dead, blocked or changed endpoint gives error and
// an early stop, never a list of false findings:
//
//   - at the start: a control handshake must complete with the pinned key
//     before any name is tried; otherwise Run returns an [*EndpointError]
//     saying which (unreachable, refused, blocked, pin mismatch);
//   - every [Sweeper.ControlEvery] names: one more, and a failure stops
//     the sweep the same way;
//   - after every name whose result is not clean: a control handshake
//     right after it, recorded in the name's record
//     (test_keys.sni_sweep.control). Only when it confirms the endpoint
//     is the name intercepted or blocked; otherwise its verdict is error
//     and the sweep stops.
//
// So an intercepted or blocked verdict always carries, in its own record,
// a control handshake made after it that got the pinned key: a wrong pin
// cannot yield one.
//
// # Verdicts
//
// The vocabulary is [measurement.SweepVerdicts], decided in this order
// (the rule is test_keys.sni_sweep.reason_code):
//
//	probe_fault     error                  the probe's own failure (--allow-net, out of file descriptors)
//	pin_match       clean                  the endpoint's own key, handshake completed
//	control_failed  error                  not clean, and the control after it failed too
//	connect_failed  error                  the TCP connect failed, before any SNI was sent
//	intercepted     sni_intercepted_isca   another chain, leading to an ISCA/Qaznet root (chains[0] names the
//	                                       root, the intermediates, the evidence and the expired flag)
//	intercepted     sni_intercepted_other  another chain, not the ISCA PKI
//	blocked         sni_blocked            reset, EOF, alert or timeout for this SNI (or the endpoint's own
//	                                       certificate, then a failure), the control fine right after; a
//	                                       failure before any certificate is tried a second time after the
//	                                       control, and the second try decides
//
// # Records
//
// One [measurement.Measurement] per name with test_name
// [measurement.SweepTestName] in the same OONI-style envelope as
// kzprobe_tls_mitm; measurement/sweep.go documents its test_keys and
// [measurement.SNISweep]. The caller's Writer applies the privacy
// scrubber, as for `kzprobe run`.
package sweep
