package main

import (
	"fmt"
	"time"
)

// progress is the state of the one-line progress display of a run:
// targets done out of the total, the time elapsed, the rate, the time
// left and the verdict counts. It only formats; the console draws it.
type progress struct {
	start time.Time
	// fed counts the targets handed to the engine so far; known is set
	// once the whole list has been read, and fed is then the total.
	fed   int
	known bool
	// counted is the total counted before the run (-d names, regular
	// files), -1 when the list cannot be counted first (stdin).
	counted int
	done    int
}

func newProgressState(start time.Time) *progress { return &progress{start: start, counted: -1} }

// total is the number of targets to measure and whether it is known.
func (p *progress) total() (int, bool) {
	switch {
	case p.known:
		return p.fed, true
	case p.counted >= 0:
		return max(p.counted, p.fed, p.done), true
	}
	return max(p.fed, p.done), false
}

// line is the progress line at now: "[8/10] elapsed 0:04, 2.0/s, ETA
// 0:01 | mitm_isca 8". The total is followed by "+" while the list is
// still being read and its length unknown; the rate shows after a
// second, the time left once the total is known.
func (p *progress) line(now time.Time, counts string) string {
	total, known := p.total()
	tot := fmt.Sprint(total)
	if !known {
		tot += "+"
	}
	elapsed := now.Sub(p.start)
	s := fmt.Sprintf("[%d/%s] elapsed %s", p.done, tot, clock(elapsed))
	if secs := elapsed.Seconds(); secs >= 1 && p.done > 0 {
		rate := float64(p.done) / secs
		if rate < 10 {
			s += fmt.Sprintf(", %.1f/s", rate)
		} else {
			s += fmt.Sprintf(", %.0f/s", rate)
		}
		if known && total > p.done {
			left := time.Duration(float64(elapsed) / float64(p.done) * float64(total-p.done))
			s += ", ETA " + clock(left)
		}
	}
	return s + " | " + counts
}

// clock formats d as m:ss, or h:mm:ss from an hour on.
func clock(d time.Duration) string {
	d = d.Round(time.Second)
	h, m, sec := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, m, sec)
	}
	return fmt.Sprintf("%d:%02d", m, sec)
}
