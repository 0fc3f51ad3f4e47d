package main

import (
	"strings"
	"unicode/utf8"
)

// screen is a minimal terminal of a fixed width, enough to replay what
// kzprobe writes to a pty: printable runes, CR, LF, CSI K (erase to the
// end of the line) and CSI m (colours, ignored). It counts the lines it
// had to wrap: text that a program wrote wider than the terminal.
type screen struct {
	cols     int
	lines    [][]rune
	row, col int
	// wraps counts automatic wraps; wrapped holds the text of each line
	// that wrapped.
	wraps   int
	wrapped []string
	// sgr counts colour sequences.
	sgr int
}

func newScreen(cols int) *screen { return &screen{cols: cols, lines: [][]rune{nil}} }

func (s *screen) line() []rune {
	for len(s.lines) <= s.row {
		s.lines = append(s.lines, nil)
	}
	return s.lines[s.row]
}

// write replays p.
func (s *screen) write(p []byte) {
	for len(p) > 0 {
		switch p[0] {
		case '\r':
			s.col = 0
			p = p[1:]
			continue
		case '\n':
			s.row++
			s.line()
			p = p[1:]
			continue
		case 0x1b:
			// CSI: ESC [ parameters final.
			if len(p) > 1 && p[1] == '[' {
				i := 2
				for i < len(p) && (p[i] < 0x40 || p[i] > 0x7e) {
					i++
				}
				if i < len(p) {
					switch p[i] {
					case 'K':
						l := s.line()
						if s.col < len(l) {
							s.lines[s.row] = l[:s.col]
						}
					case 'm':
						s.sgr++
					}
					p = p[i+1:]
					continue
				}
			}
			p = p[1:]
			continue
		}
		r, n := utf8.DecodeRune(p)
		p = p[n:]
		if r < 0x20 {
			continue
		}
		if s.col >= s.cols {
			s.wraps++
			s.wrapped = append(s.wrapped, string(s.line()))
			s.row++
			s.col = 0
		}
		l := s.line()
		for len(l) <= s.col {
			l = append(l, ' ')
		}
		l[s.col] = r
		s.lines[s.row] = l
		s.col++
	}
}

// text is the screen's content, lines without trailing blanks.
func (s *screen) text() string {
	out := make([]string, len(s.lines))
	for i, l := range s.lines {
		out[i] = strings.TrimRight(string(l), " ")
	}
	return strings.TrimRight(strings.Join(out, "\n"), "\n")
}
