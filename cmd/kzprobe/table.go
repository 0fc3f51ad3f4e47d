package main

import (
	"strings"
	"unicode/utf8"
)

// Terminal tables: cells padded to their column, shortened with an
// ellipsis where a terminal is too narrow. Widths count runes: what kzprobe
// prints is ASCII apart from the ellipsis and the lab's marks (domains are
// in their ASCII form).

// ellipsis marks a cell cut to fit.
const ellipsis = "…"

// textWidth is the number of terminal columns s takes.
func textWidth(s string) int { return utf8.RuneCountInString(s) }

// fitText returns s cut to width columns, its last one an ellipsis when
// anything was cut. A width of zero or less leaves s whole (no limit).
func fitText(s string, width int) string {
	if width <= 0 || textWidth(s) <= width {
		return s
	}
	if width == 1 {
		return ellipsis
	}
	n := 0
	for i := range s {
		if n == width-1 {
			return s[:i] + ellipsis
		}
		n++
	}
	return s
}

// padText returns s followed by spaces up to width columns.
func padText(s string, width int) string {
	if n := width - textWidth(s); n > 0 {
		return s + strings.Repeat(" ", n)
	}
	return s
}

// columnGap separates table columns.
const columnGap = "  "

// tableRow joins cells, each padded to its width but the last, and a
// colour function per cell (nil: none) applied after padding, so that
// escape sequences never count as columns.
func tableRow(cells []string, widths []int, paint []func(string) string) string {
	var b strings.Builder
	for i, c := range cells {
		if i > 0 {
			b.WriteString(columnGap)
		}
		text := c
		if i < len(cells)-1 {
			text = padText(fitText(c, widths[i]), widths[i])
		} else {
			text = fitText(c, widths[i])
		}
		if i < len(paint) && paint[i] != nil {
			// Colour the text, not the padding after it.
			trimmed := strings.TrimRight(text, " ")
			text = paint[i](trimmed) + text[len(trimmed):]
		}
		b.WriteString(text)
	}
	return strings.TrimRight(b.String(), " ")
}

// naturalWidths is the widest cell of each column, header included.
func naturalWidths(header []string, rows [][]string) []int {
	w := make([]int, len(header))
	for i, h := range header {
		w[i] = textWidth(h)
	}
	for _, r := range rows {
		for i, c := range r {
			w[i] = max(w[i], textWidth(c))
		}
	}
	return w
}

// sumWidths is the columns a row of these widths takes, gaps included.
func sumWidths(widths []int) int {
	n := 0
	for i, w := range widths {
		if i > 0 {
			n += len(columnGap)
		}
		n += w
	}
	return n
}
