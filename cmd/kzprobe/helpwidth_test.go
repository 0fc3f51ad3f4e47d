package main

import (
	"bytes"
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

// TestHelpFits80Columns: the whole of every command's --help, as printed
// to a pipe, fits 80 columns — its usage line, its command list and its
// flag lists, whose descriptions are broken between words under their
// start — but for the examples, commands to copy whole.
func TestHelpFits80Columns(t *testing.T) {
	var paths [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		if c.Name() == "completion" || c.Name() == "help" {
			return
		}
		paths = append(paths, path)
		for _, sub := range c.Commands() {
			walk(sub, append(append([]string(nil), path...), sub.Name()))
		}
	}
	walk(newRootCmd(), nil)
	for _, path := range paths {
		root := newRootCmd()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(append(append([]string(nil), path...), "--help"))
		if err := root.Execute(); err != nil {
			t.Fatalf("kzprobe %s --help: %v", strings.Join(path, " "), err)
		}
		examples := false
		for i, line := range strings.Split(out.String(), "\n") {
			switch {
			case line == "Examples:":
				examples = true
			case line != "" && !strings.HasPrefix(line, " "):
				examples = false
			}
			if n := utf8.RuneCountInString(line); n > 80 && !examples {
				t.Errorf("kzprobe %s --help: line %d is %d columns:\n%s", strings.Join(path, " "), i+1, n, line)
			}
		}
	}
}
