package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"kzprobe/measurement"
	"kzprobe/probe"
	"kzprobe/probe/chain"
)

// console is what `kzprobe run` shows while it runs and when it ends.
//
//   - out (stdout; stderr when the JSONL goes to stdout) gets one line per
//     target as it finishes, its verdict coloured on a terminal, then the
//     verdict table and the counts (the summary). -q leaves the summary
//     only.
//   - err (stderr) gets the messages (bad input lines, warnings), with -v
//     the steps of each target as they start and end (step), and, on a terminal only, the progress line,
//     redrawn in place below everything else and never wider than the
//     terminal.
//
// Each message is written with one Write, so that the privacy scrubber
// under out and err sees it whole. A console is safe for concurrent use.
type console struct {
	mu      sync.Mutex
	out     io.Writer
	err     io.Writer
	quiet   bool
	layout  tableLayout // of out: its width, colours, --wide
	summary *summary
	// unanswered is set once a target's control resolver answered nothing
	// and the warning is printed: it is printed once.
	unanswered bool

	prog     *progress
	progOn   bool // err is a terminal and not -q: the progress line is drawn
	drawn    bool // a progress line is on the screen
	lastDraw time.Time
	now      func() time.Time
	errWidth func() int    // err's columns now, 0 for no limit
	stop     chan struct{} // closed by finish: ends the ticker
	stopped  chan struct{} // closed when the ticker has ended
}

// progressTick is how often the progress line is redrawn while nothing
// finishes (the time elapsed and left move on); progressMinInterval
// bounds how often results redraw it.
const (
	progressTick        = 500 * time.Millisecond
	progressMinInterval = 100 * time.Millisecond
)

// newConsole starts the console of a run: the progress line shows on
// err when err is a terminal and cfg is not quiet.
func newConsole(out, err io.Writer, cfg *Config, start time.Time) *console {
	c := &console{
		out:      out,
		err:      err,
		quiet:    cfg.Run.Quiet,
		summary:  newSummary(cfg.Run.FailOn...),
		prog:     newProgressState(start),
		now:      time.Now,
		errWidth: func() int { return terminalWidth(err) },
		stop:     make(chan struct{}),
		stopped:  make(chan struct{}),
	}
	c.layout = tableLayout{color: colorWanted(out, cfg.Run.NoColor), fullHashes: cfg.Run.Wide}
	if !cfg.Run.Wide {
		c.layout.width = terminalWidth(out)
	}
	c.progOn = !c.quiet && isTerminal(err)
	if c.progOn {
		go c.tick()
	} else {
		close(c.stopped)
	}
	return c
}

func (c *console) tick() {
	defer close(c.stopped)
	t := time.NewTicker(progressTick)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			c.mu.Lock()
			c.draw()
			c.mu.Unlock()
		}
	}
}

// setCounted sets the number of targets counted before the run.
func (c *console) setCounted(n int) {
	c.mu.Lock()
	c.prog.counted = n
	c.mu.Unlock()
}

// addTotal counts n more targets handed to the engine.
func (c *console) addTotal(n int) {
	c.mu.Lock()
	c.prog.fed += n
	c.mu.Unlock()
}

// totalKnown says that the whole list has been read.
func (c *console) totalKnown() {
	c.mu.Lock()
	c.prog.known = true
	c.mu.Unlock()
}

// info prints lines about the run (the start lines) on err, unless -q.
func (c *console) info(lines ...string) {
	if c.quiet || len(lines) == 0 {
		return
	}
	c.message(strings.Join(lines, "\n") + "\n")
}

// logf prints a message (a bad input line, a warning) on err, -q or not.
func (c *console) logf(format string, a ...any) {
	c.message(fmt.Sprintf("kzprobe: "+format+"\n", a...))
}

// message writes text on err above the progress line.
func (c *console) message(text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.print(c.err, text)
}

// print writes text on w with the progress line cleared before and
// drawn again after; the caller holds c.mu.
func (c *console) print(w io.Writer, text string) {
	if c.drawn && w == c.err {
		text = "\r\033[K" + text
	} else if c.drawn {
		io.WriteString(c.err, "\r\033[K")
	}
	c.drawn = false
	io.WriteString(w, text)
	c.draw()
}

// step shows a step of a target as it starts or ends (-v: the engine's
// OnStep), one line on err above the progress line. Called from the
// engine's goroutines, several at once.
func (c *console) step(s probe.Step) {
	c.message("kzprobe: debug: " + stepLine(s) + "\n")
}

// result shows one finished target: its line unless -q, and the
// progress. Called once per written measurement.
func (c *console) result(m *measurement.Measurement) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.summary.add(m)
	c.prog.done = c.summary.total
	if d.Code == probe.CodeControlUnanswered && !c.unanswered {
		c.unanswered = true
		_, f, tried := probe.ControlUnanswered(&m.TestKeys)
		c.print(c.err, fmt.Sprintf("kzprobe: warning: no control resolver answered: are you online? (%s from %s); every target gets the verdict error while none answers\n",
			f, strings.Join(tried, ", ")))
	}
	if !c.quiet {
		c.print(c.out, resultLine(m, c.layout)+"\n")
	} else {
		c.draw()
	}
}

// draw draws the progress line, at most every progressMinInterval unless
// it is not on the screen; the caller holds c.mu.
func (c *console) draw() {
	if !c.progOn {
		return
	}
	now := c.now()
	if c.drawn && now.Sub(c.lastDraw) < progressMinInterval {
		return
	}
	c.lastDraw = now
	line := c.prog.line(now, c.summary.countLine())
	if width := c.errWidth(); width > 0 {
		line = fitText(line, width-1)
	}
	io.WriteString(c.err, "\r"+line+"\033[K")
	c.drawn = true
}

// finish stops the progress line and clears it.
func (c *console) finish() {
	c.mu.Lock()
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	c.mu.Unlock()
	<-c.stopped
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.drawn {
		io.WriteString(c.err, "\r\033[K")
		c.drawn = false
	}
	c.progOn = false
}

// printSummary writes the verdict table and the counts on out.
func (c *console) printSummary(skipped int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	c.summary.print(&b, skipped, c.layout)
	io.WriteString(c.out, b.String())
}

// verdictWidth is the widest verdict, "dns_tampering".
const verdictWidth = 13

// resultLine is a finished target's line: its verdict (coloured), the
// target and the reason, cut to lay's width on a terminal.
func resultLine(m *measurement.Measurement, lay tableLayout) string {
	v := string(m.TestKeys.Verdict)
	reason := m.TestKeys.VerdictReason
	if in := m.TestKeys.Interception; in != nil && in.RootSHA1 != "" {
		// The root by its hash: the table's legend names it.
		reason = strings.ReplaceAll(reason, rootLabel(in.RootName, in.RootSHA1), "root "+chain.Short(in.RootSHA1))
	}
	width := verdictWidth
	if lay.verdictWidth > 0 {
		width = lay.verdictWidth
	}
	line := padText(v, width) + columnGap + m.Input + columnGap + reason
	if lay.width > 0 {
		line = fitText(line, lay.width-1)
	}
	if paint := paintVerdict(m.TestKeys.Verdict, lay.color); paint != nil && strings.HasPrefix(line, v) {
		line = paint(v) + line[len(v):]
	}
	return line
}

// wrote says how many measurements went to the file at path, on err,
// broken between words to the terminal's width.
func (c *console) wrote(n int, path string) {
	msg := fmt.Sprintf("%s written to %s", plural(n, "measurement"), displayPath(path))
	c.message(strings.Join(wrapWords(msg, c.errWidth()-1), "\n") + "\n")
}
