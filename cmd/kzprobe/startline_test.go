package main

import (
	"slices"
	"strings"
	"testing"
)

// TestStartBlockFits: what run and sweep say before they start fits the
// terminal, broken between words, a value's later lines under its start;
// with no limit (a pipe) each detail stays on one line.
func TestStartBlockFits(t *testing.T) {
	b := startBlock{
		head: "sweeping names by SNI against 127.13.237.7:443, 16 at once, no rate limit, hello chrome",
		details: [][2]string{
			{"pin", "sha256:MNEyJUcbjrt5No7lJl3lv1KHd7j+mJc497Fu8svJRec= (from the control server)"},
			{"control SNI", "example.com, first, every 100 names and after every name that is not clean"},
			{"output", "d/sw.jsonl"},
		},
	}
	words := strings.Fields("kzprobe: " + b.head)
	for _, d := range b.details {
		words = append(words, strings.Fields(d[0]+" "+d[1])...)
	}
	valueCol := strings.Repeat(" ", len("  control SNI  "))
	for _, tt := range []struct {
		width, lines int
	}{{0, 4}, {200, 4}, {79, 7}, {40, 11}} {
		lines := b.lines(tt.width)
		if len(lines) != tt.lines {
			t.Errorf("width %d: %d lines; want %d:\n%s", tt.width, len(lines), tt.lines, strings.Join(lines, "\n"))
		}
		var got []string
		inDetails := false
		for i, l := range lines {
			f := strings.Fields(l)
			got = append(got, f...)
			label := len(f) > 0 && (f[0] == "pin" || f[0] == "control" || f[0] == "output")
			inDetails = inDetails || label
			if tt.width > 0 && textWidth(l) > tt.width && !(label && len(f) <= 3) {
				t.Errorf("width %d: a line of %d columns: %q", tt.width, textWidth(l), l)
			}
			switch {
			case i == 0 || label:
			case inDetails && !strings.HasPrefix(l, valueCol):
				t.Errorf("width %d: line %d is not under its value: %q", tt.width, i+1, l)
			case !strings.HasPrefix(l, "  "):
				t.Errorf("width %d: line %d is not indented: %q", tt.width, i+1, l)
			}
		}
		if !slices.Equal(got, words) {
			t.Errorf("width %d: words %q; want %q", tt.width, got, words)
		}
	}
}
