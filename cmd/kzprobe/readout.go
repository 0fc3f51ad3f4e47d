package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"kzprobe/analysis"
)

// readOutput is where a reading command (analyze, compare, timeline,
// report) writes: stdout, or a file. A regular file is written through a
// temporary file in its folder, renamed over it by Commit, so that a run
// that fails or is interrupted leaves the old file (or none), never half
// of one. A device or a named pipe (-o /dev/null) is written directly.
type readOutput struct {
	io.Writer
	path string   // the file to replace, links resolved; "" for stdout
	tmp  *os.File // the temporary file, nil when writing directly
	file *os.File // the file written directly, if any
	done bool
}

// checkOutputFolder is the usage error (exit 2) of an output file whose
// folder does not exist, the same for every command that writes one (-o,
// the bench's profiles): the path given is wrong, nothing failed. nil when
// the folder exists.
func checkOutputFolder(path string) error {
	dir := filepath.Dir(path)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return usageError("cannot write %s: folder %s does not exist (choose another path)", path, dir)
	}
	return nil
}

// openReadOutput opens the output for path ("" or "-" is stdout), after
// checking that it is none of the inputs (paths, as analysis.Files
// expands them): the same file by device and inode, links followed, is
// refused, since writing it would destroy the measurements before they
// are read. The temporary file is created at once, so that an unwritable
// folder fails before any reading.
func openReadOutput(path string, inputs []string, stdout io.Writer) (*readOutput, error) {
	if path == "" || path == "-" {
		return &readOutput{Writer: stdout}, nil
	}
	if err := notAnInput(path, inputs); err != nil {
		return nil, err
	}
	if err := checkOutputFolder(path); err != nil {
		return nil, err
	}
	target := path
	mode := fs.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil {
		if !fi.Mode().IsRegular() {
			// A device or a pipe: there is nothing to replace.
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				return nil, fmt.Errorf("cannot write the output: %w (choose another path with -o)", err)
			}
			return &readOutput{Writer: f, file: f}, nil
		}
		// Replace what a link points to, not the link.
		if t, err := filepath.EvalSymlinks(path); err == nil {
			target = t
		}
		mode = fi.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(target), "."+filepath.Base(target)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("cannot write the output %s: %w (choose another path with -o)", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("cannot write the output %s: %w", path, err)
	}
	return &readOutput{Writer: tmp, path: target, tmp: tmp}, nil
}

// notAnInput refuses an output path that names one of the input files.
func notAnInput(path string, inputs []string) error {
	ofi, err := os.Stat(path)
	if err != nil {
		return nil // not there yet: no input can be it
	}
	files, err := analysis.Files(inputs)
	if err != nil {
		return nil // checkInputs names a missing input
	}
	for _, in := range files {
		if in == analysis.Stdin {
			continue
		}
		if ifi, err := os.Stat(in); err == nil && os.SameFile(ofi, ifi) {
			if in == path {
				return usageError("-o %s is also an input: writing it would destroy its measurements before they are read; choose another output file", path)
			}
			return usageError("-o %s is the input %s: writing it would destroy its measurements before they are read; choose another output file", path, in)
		}
	}
	return nil
}

// Commit finishes the output: the temporary file is synced, closed and
// renamed over the output file.
func (o *readOutput) Commit() error {
	if o.done {
		return nil
	}
	o.done = true
	switch {
	case o.file != nil:
		return o.file.Close()
	case o.tmp == nil:
		return nil
	}
	err := o.tmp.Sync()
	if cerr := o.tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(o.tmp.Name(), o.path)
	}
	if err != nil {
		os.Remove(o.tmp.Name())
		return fmt.Errorf("cannot write the output %s: %w", o.path, err)
	}
	return nil
}

// Abort drops the output unless it was committed: the temporary file is
// removed and the output file left as it was.
func (o *readOutput) Abort() {
	if o.done {
		return
	}
	o.done = true
	if o.file != nil {
		o.file.Close()
	}
	if o.tmp != nil {
		o.tmp.Close()
		os.Remove(o.tmp.Name())
	}
}

// errNoMeasurement is the error of a reading command that read no
// measurement at all.
var errNoMeasurement = errors.New("no measurement read")
