// Package bench measures the probe's speed, CPU and memory against a
// simulated network: it is `kzprobe bench` without the command line.
//
// [Run] starts a lab (package lab) with a given latency per round trip,
// writes N generated targets spread over a scenario's behaviours, has the
// real engine measure them at parallelism P, and compares the run with two
// limits measured in the same run:
//
//   - the latency bound: ceil(N/P) x the lab round trips on one target's
//     critical path (the mean over the targets) x RTT ([roundTrips] says
//     which);
//   - the CPU baseline: one handshake of the engine's own (a
//     [probe.Connector] connect, a [probe.Handshaker] handshake with the
//     Chrome fingerprint and the [chain.Analyzer] judgement of the chain)
//     against one of the lab's origins, CPU per operation.
//
// With [Config.Sweep] it benches `kzprobe sweep` instead: one handshake
// per name to the lab's neutral SNI endpoint, behind its middlebox
// ([sweepRoundTrips]: 1 round trip for a clean name, 2 for one followed
// by its confirming control, 3 for one refused before any certificate and
// tried again), and the baseline is one handshake with the
// same hello to that endpoint, its key checked against the pin, and the
// chain judged.
//
// # Design
//
// The engine is given, not built here: [Config.Engine] runs the probe over
// a targets file against the lab, and cmd/kzprobe passes its own wiring
// (the one `kzprobe lab` and `kzprobe run` use), so that what is measured
// is what users run. The lab runs in a child process ([Config.LabCommand],
// this binary in [ServeLab] mode) so that getrusage(RUSAGE_SELF) counts the
// client's CPU and memory only. Many names share few sites through the
// lab's wildcard sites (lab/wildcard.go): target i is
// t<i>.<behaviour>.bench.test.
package bench
