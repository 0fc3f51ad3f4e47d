package main

import (
	"errors"
	"go/build"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestArchitecturePackages keeps ARCHITECTURE.md's table of packages true:
// it names every package of the module and no other, each with the
// module's packages it imports (test files aside), and no package imports
// one above it in the table.
func TestArchitecturePackages(t *testing.T) {
	const root, module = "../..", "kzprobe"
	doc, err := os.ReadFile(filepath.Join(root, "ARCHITECTURE.md"))
	if err != nil {
		t.Fatal(err)
	}
	// The table's rows: | `path` | job | imports |.
	var order []string
	table := map[string][]string{}
	for _, line := range strings.Split(string(doc), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) != 5 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			continue
		}
		pkg := strings.Trim(strings.TrimSpace(cells[1]), "`")
		imports := []string{}
		if list := strings.TrimSpace(cells[3]); !strings.HasPrefix(list, "none") {
			for _, p := range strings.Split(list, ",") {
				imports = append(imports, strings.TrimSpace(p))
			}
		}
		slices.Sort(imports)
		order = append(order, pkg)
		table[pkg] = imports
	}
	if len(order) == 0 {
		t.Fatal("ARCHITECTURE.md: no table of packages")
	}

	code := map[string][]string{}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata") {
			return filepath.SkipDir
		}
		p, err := build.ImportDir(path, 0)
		if err != nil {
			var none *build.NoGoError
			if errors.As(err, &none) {
				return nil
			}
			return err
		}
		rel, _ := filepath.Rel(root, path)
		imports := []string{}
		for _, imp := range p.Imports {
			if own, ok := strings.CutPrefix(imp, module+"/"); ok {
				imports = append(imports, own)
			}
		}
		slices.Sort(imports)
		code[filepath.ToSlash(rel)] = imports
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	for pkg, imports := range code {
		listed, ok := table[pkg]
		if !ok {
			t.Errorf("ARCHITECTURE.md does not list the package %s (imports %v)", pkg, imports)
			continue
		}
		if !slices.Equal(listed, imports) {
			t.Errorf("ARCHITECTURE.md: %s imports %v; the code imports %v", pkg, listed, imports)
		}
		for _, imp := range imports {
			if slices.Index(order, imp) < slices.Index(order, pkg) {
				t.Errorf("ARCHITECTURE.md: %s imports %s, which is above it in the table", pkg, imp)
			}
		}
	}
	for _, pkg := range order {
		if _, ok := code[pkg]; !ok {
			t.Errorf("ARCHITECTURE.md lists %s, which is not a package of the module", pkg)
		}
	}
}

// TestCommentsSayTheThing: no Go file of the module cites a project issue
// (the word "issue" and its number) or a step of DESIGN.md instead of saying the
// thing itself; a reader has neither at hand. Other projects' issues
// (golang/go#75804, utls issue #366) are references, and stay.
func TestCommentsSayTheThing(t *testing.T) {
	cite := regexp.MustCompile(`(?i)\bissues? #?\d+|DESIGN(\.md)?,? step`)
	err := filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && strings.HasPrefix(d.Name(), ".") && d.Name() != "." && d.Name() != "..":
			return filepath.SkipDir
		case d.IsDir() || !strings.HasSuffix(path, ".go"):
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(data), "\n") {
			if m := cite.FindString(line); m != "" && !strings.Contains(line, "golang/go#") && !strings.Contains(line, "utls") &&
				!strings.Contains(line, "TestCommentsSayTheThing") && !strings.Contains(line, "cite :=") {
				t.Errorf("%s:%d cites %q: say the thing itself\n%s", path, i+1, m, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
