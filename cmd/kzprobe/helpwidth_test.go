package main

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/spf13/cobra"
)

// TestHelpTextFits80Columns: every command's description (Long) and
// one-line summary fit an 80-column terminal, where help is read; the
// examples, commands to copy whole, may be longer.
func TestHelpTextFits80Columns(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Name() == "completion" {
			return // cobra's own text
		}
		for i, line := range strings.Split(c.Long, "\n") {
			if n := utf8.RuneCountInString(line); n > 80 {
				t.Errorf("%s: line %d of its help is %d columns:\n%s", c.CommandPath(), i+1, n, line)
			}
		}
		if n := 2 + 11 + 1 + utf8.RuneCountInString(c.Short); c.HasParent() && c.Parent().HasParent() && n > 80 {
			t.Errorf("%s: its summary under %s is %d columns: %s", c.CommandPath(), c.Parent().CommandPath(), n, c.Short)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd())
}
