package probe

// The engine's side of the control server's view: a control server outside
// the local network connects to the locally resolved addresses with the
// same SNI and reports the chain it was served. The exchanged records are
// in package measurement (ControlRequest, ControlReport); the server and
// its client live in package control.

import (
	"context"
	"net/netip"

	"kzprobe/measurement"
)

// ControlServer asks a control server about one target. control.Client
// implements it. Check never fails: a transport error, an HTTP error or a
// response that does not fit the request is recorded in the report's
// Failure. t0 is the measurement's epoch (the report's T0 and T are
// t0.Since() when it is asked and when it answers).
type ControlServer interface {
	Check(ctx context.Context, req measurement.ControlRequest, t0 Epoch) *measurement.ControlReport
}

// IPValidFromControl is the consistency check that uses a control server:
// the local and control address sets do not intersect, yet the control
// server, connecting from outside to a locally resolved address with SNI =
// the domain, was served a chain valid for the domain. Its reason is
// measurement.ReasonIPValidFromControl. With a nil report or a report
// without a response it never matches.
func IPValidFromControl(r *measurement.ControlReport) ConsistencyCheck {
	return ConsistencyCheck{
		Reason: measurement.ReasonIPValidFromControl,
		Match: func(local, _ []netip.Addr) bool {
			for _, a := range local {
				if r.Endpoint(a).Trusted() {
					return true
				}
			}
			return false
		},
	}
}
