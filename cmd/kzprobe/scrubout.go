package main

import (
	"io"
	"net/netip"
	"os"
	"sync/atomic"

	"kzprobe/measurement"
	"kzprobe/vantage"
)

// scrubWriter is a terminal stream of `kzprobe run` (stdout, stderr):
// every Write passes through the privacy scrubber current at the time,
// so that no message, table cell, warning or error shows the probe's
// address, whoever printed it. Each Write is scrubbed as a whole: the
// fmt functions write a message in one call, and a table writer one cell
// at a time.
type scrubWriter struct {
	w  io.Writer
	sc atomic.Pointer[vantage.Scrubber]
}

func newScrubWriter(w io.Writer) *scrubWriter { return &scrubWriter{w: w} }

// set replaces the scrubber (nil hides nothing).
func (s *scrubWriter) set(sc *vantage.Scrubber) { s.sc.Store(sc) }

// Write writes p scrubbed. It returns len(p), what the caller wrote, on
// success.
func (s *scrubWriter) Write(p []byte) (int, error) {
	if _, err := s.w.Write(s.sc.Load().ScrubBytes(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// terminalFile returns the file under w, through scrub writers, for
// deciding whether it is a terminal.
func terminalFile(w io.Writer) (*os.File, bool) {
	for {
		switch v := w.(type) {
		case *os.File:
			return v, true
		case *scrubWriter:
			w = v.w
		default:
			return nil, false
		}
	}
}

// scrubbedError is an error whose message is scrubbed; errors.Is and
// errors.As see the original.
type scrubbedError struct {
	err error
	sc  *vantage.Scrubber
}

func (e *scrubbedError) Error() string { return e.sc.Scrub(e.err.Error()) }
func (e *scrubbedError) Unwrap() error { return e.err }

// hiddenAddrs lists the addresses the scrubber hides before the public
// one is known: the bound source address and this machine's own
// addresses; none with --include-ip.
func hiddenAddrs(cfg *Config) []netip.Addr {
	if cfg.Vantage.IncludeIP {
		return nil
	}
	hide := localAddrs()
	if b, err := netip.ParseAddr(cfg.Network.Bind); err == nil {
		hide = append(hide, b)
	}
	return hide
}

// privacy is a run's scrubbing: the terminal streams and the output's
// filters, all with the same scrubber.
type privacy struct {
	hide           []netip.Addr
	sc             *vantage.Scrubber
	stdout, stderr *scrubWriter
}

// newPrivacy scrubs stdout and stderr of the addresses known before the
// run starts.
func newPrivacy(cfg *Config, stdout, stderr io.Writer) *privacy {
	p := &privacy{hide: hiddenAddrs(cfg), stdout: newScrubWriter(stdout), stderr: newScrubWriter(stderr)}
	p.update()
	return p
}

// addPublic adds the public address, once learned, to what is hidden
// (unless --include-ip: then nothing is hidden).
func (p *privacy) addPublic(cfg *Config, public netip.Addr) {
	if public.IsValid() && !cfg.Vantage.IncludeIP {
		p.hide = append(p.hide, public)
		p.update()
	}
}

func (p *privacy) update() {
	p.sc = vantage.NewScrubber(p.hide...)
	p.stdout.set(p.sc)
	p.stderr.set(p.sc)
}

// apply makes w scrub every line and withhold every raw field that holds
// a hidden address (measurement.Withhold), judged before: the verdicts
// stay as they are.
func (p *privacy) apply(w *measurement.Writer) {
	if p.sc.Empty() {
		return
	}
	sc := p.sc
	w.Filter = sc.ScrubBytes
	w.Redact = func(m *measurement.Measurement) { measurement.Withhold(m, sc.Contains) }
}

// scrubErr scrubs err's message.
func (p *privacy) scrubErr(err error) error {
	if err == nil || p.sc.Empty() {
		return err
	}
	return &scrubbedError{err: err, sc: p.sc}
}
