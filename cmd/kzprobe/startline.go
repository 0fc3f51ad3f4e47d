package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"kzprobe/targets"
)

// startConsole starts the console of a run (out: the result lines and
// the table; errw: messages and progress), counts the targets when the
// list can be counted before it is measured, and says what will be done:
// how many targets, the resolvers and fingerprints, where the
// measurements go, and how to label a run whose network is unknown.
func startConsole(out, errw io.Writer, cfg *Config, w *wiring, src *targetSource, outPath string, start time.Time) *console {
	c := newConsole(out, errw, cfg, start)
	n, counted := src.count()
	if counted {
		c.setCounted(n)
	}
	lines := startLines(cfg, w, src, n, counted, outPath).lines(c.errWidth() - 1)
	if hint := labelHint(cfg, w); hint != "" {
		lines = append(lines, wrapWords("kzprobe: "+hint, c.errWidth()-1)...)
	}
	c.info(lines...)
	return c
}

// startBlock is what a command says before it starts: a line, then
// details (label, value) aligned under it.
type startBlock struct {
	head    string
	details [][2]string
}

// lines are b's lines, "kzprobe: " before the head, fitted to width
// columns (0 or less: no limit): the head broken between words, each
// value broken between words with its later lines under the value's
// start, so that nothing wraps mid-word on a narrow terminal.
func (b startBlock) lines(width int) []string {
	out := wrapWords("kzprobe: "+b.head, width)
	label := 0
	for _, d := range b.details {
		label = max(label, textWidth(d[0]))
	}
	indent := strings.Repeat(" ", 2+label+2)
	for _, d := range b.details {
		first := "  " + padText(d[0], label) + "  "
		w := 0
		if width > 0 {
			w = max(width-len(indent), 20)
		}
		for i, l := range wrapWords(d[1], w) {
			if i == 0 {
				out = append(out, first+l)
				continue
			}
			out = append(out, indent+strings.TrimPrefix(l, "  "))
		}
	}
	return out
}

// startLines says what a run will do: a line, then the resolvers and
// the output aligned under it.
func startLines(cfg *Config, w *wiring, src *targetSource, n int, counted bool, outPath string) startBlock {
	what := "the targets of " + strings.Join(listNames(src.files), ", ")
	if counted {
		what = plural(n, "target")
		if len(src.files) > 0 {
			what += " from " + strings.Join(listNames(src.files), ", ")
		}
	}
	fp := "fingerprint "
	if len(cfg.TLS.Fingerprints) > 1 {
		fp = "fingerprints "
	}
	head := fmt.Sprintf("measuring %s, %d at once, %s%s", what, cfg.Run.Parallel, fp, strings.Join(cfg.TLS.Fingerprints, ", "))

	resolver := cfg.DNS.Resolver
	if p := w.prober; p != nil && p.Local != nil && p.Local.Exchanger != nil {
		resolver = p.Local.Exchanger.Address()
	}
	specs := cfg.Control.Specs()
	control := specs[0].URL + " (no fallback)"
	if len(specs) > 1 {
		var fb []string
		for _, s := range specs[1:] {
			fb = append(fb, s.URL)
		}
		control = specs[0].URL + " (falls back to " + strings.Join(fb, ", ") + ")"
	}
	output := displayPath(outPath)
	if outPath == "-" {
		output = "stdout"
	}
	detail := [][2]string{{"local resolver", resolver}, {"control", control}}
	if cfg.Control.Server != "" {
		detail = append(detail, [2]string{"control server", cfg.Control.Server})
	}
	detail = append(detail, [2]string{"output", output})
	return startBlock{head: head, details: detail}
}

// listNames names target lists as the messages do ("-" is stdin).
func listNames(files []string) []string {
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = f
		if f == targets.StdinName {
			out[i] = "stdin"
		}
	}
	return out
}

// labelHint says how to label a run whose network is unknown (no ASN, no
// network name, from no source), so that its file can be compared with
// others'; empty otherwise, and when the user chose to leave the network
// out (--no-asn).
func labelHint(cfg *Config, w *wiring) string {
	if cfg.Vantage.NoASN || w.prober == nil {
		return ""
	}
	e := w.prober.Envelope
	if (e.ProbeASN != "" && e.ProbeASN != "AS0") || e.ProbeNetworkName != "" {
		return ""
	}
	return `this run is not labelled with its network (AS0, ZZ); to compare it with others, add --asn AS9198 --cc KZ --network-name "Your ISP" (your network's), or MMDB files with --asn-db and --country-db (and --whoami)`
}

// count counts the targets the run will measure, deduplicated as feed
// does (without those a resumed output holds), before they are measured. It reports false when a list cannot be
// read twice (stdin, a pipe): its length is known once it has been read.
// Bad lines are not counted (feed reports them).
func (s *targetSource) count() (int, bool) {
	if !s.rereadable() {
		return 0, false
	}
	seen := targets.NewDeduper()
	n := 0
	s.each(func(t targets.Target) {
		// A target the resumed output holds is not measured again.
		if !seen.Seen(t) && !s.seen.Has(t) {
			n++
		}
	})
	return n, true
}
