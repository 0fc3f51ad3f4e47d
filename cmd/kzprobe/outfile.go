package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"kzprobe/filelock"
)

// outputMode is how `kzprobe run` may treat an output file that already
// holds measurements.
type outputMode int

const (
	// outputNew refuses a file that is not empty: a second report is never
	// appended silently.
	outputNew outputMode = iota
	// outputAppend (--append) adds this run, a new report, after what the
	// file holds.
	outputAppend
	// outputResume (--resume) continues the report the file holds; the
	// file must exist.
	outputResume
	// outputNewOnly is outputNew for a command that cannot resume (trace):
	// its refusal offers --append only.
	outputNewOnly
)

// exitOutputBusy is the exit code when another run holds the output
// file: a runtime failure (0 done, 1 a runtime failure, 2 a usage or
// configuration error).
const exitOutputBusy = exitFailure

// runOutput is the JSONL output of a run: stdout, or a file this process
// holds an exclusive lock on until Close, so that two runs never write
// one file at once (two concurrent --resume runs both measured what the
// file lacked and wrote it twice).
type runOutput struct {
	io.Writer
	// Path is "-" for stdout, else the file's absolute path.
	Path string
	// file is nil for stdout.
	file *os.File
	// size is how many bytes the file held when it was opened.
	size int64
}

// openOutput opens the JSONL output before any measurement is taken:
// checks it is writable, takes the lock and applies mode to what the file
// already holds. A device or a named pipe (-o /dev/null) is written as it
// is: not locked, never "non-empty". A lock the file system refuses is a
// warning on warn.
func openOutput(path string, mode outputMode, start time.Time, stdout, warn io.Writer) (*runOutput, error) {
	if path == "-" {
		return &runOutput{Writer: stdout, Path: "-"}, nil
	}
	if path == "" {
		path = defaultOutputName(start)
	}
	if err := checkOutputFolder(path); err != nil {
		return nil, err
	}
	flags := os.O_RDWR | os.O_APPEND
	if mode != outputResume {
		flags |= os.O_CREATE
	}
	// Read and write: the last byte is checked, and --resume reads the
	// file, through the locked handle.
	f, err := os.OpenFile(path, flags, 0o644)
	switch {
	case err != nil && mode == outputResume && errors.Is(err, os.ErrNotExist):
		return nil, usageError("--resume %s: no such file (check the name: --resume continues the run a file holds; -o starts a new one)", path)
	case err != nil:
		return nil, fmt.Errorf("cannot write the output file: %w (choose another path with -o)", err)
	}
	abs, _ := filepath.Abs(path)
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot write the output file %s: %w", abs, err)
	}
	out := &runOutput{Writer: f, Path: abs, file: f}
	if !st.Mode().IsRegular() {
		return out, nil
	}
	if err := filelock.Lock(f); err != nil {
		if errors.Is(err, filelock.ErrLocked) {
			f.Close()
			return nil, &exitError{code: exitOutputBusy, err: fmt.Errorf(
				"%s: another kzprobe run is writing this file; wait for it to end, or choose another -o", abs)}
		}
		// A file system without locks (some network and FUSE ones):
		// the run goes on, and says what is not guarded.
		fmt.Fprintf(warn, "kzprobe: warning: cannot lock %s (%v): another run writing it at the same time would not be stopped\n", abs, err)
	}
	// The size is read under the lock: a run that held it before has
	// written all it will.
	if st, err = f.Stat(); err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot write the output file %s: %w", abs, err)
	}
	out.size = st.Size()
	if out.size > 0 && (mode == outputNew || mode == outputNewOnly) {
		f.Close()
		resume := fmt.Sprintf(" --resume %s to continue the run it holds,", path)
		if mode == outputNewOnly {
			resume = ""
		}
		return nil, usageError("%s is not empty (%d bytes): use --append to add this run to it as a new report,%s or another -o", abs, out.size, resume)
	}
	if err := endWithNewline(f, out.size); err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot write the output file %s: %w", abs, err)
	}
	return out, nil
}

// existing returns what the file held when it was opened, read through
// the locked handle.
func (o *runOutput) existing() io.Reader {
	if o.file == nil {
		return strings.NewReader("")
	}
	return io.NewSectionReader(o.file, 0, o.size)
}

// Close closes the file, which releases the lock.
func (o *runOutput) Close() error {
	if o.file == nil {
		return nil
	}
	return o.file.Close()
}

// endWithNewline ends a file of size bytes with a newline if a crash cut
// its last line, so that the next record appended starts on a line of its
// own (the cut line stays unreadable and is skipped on read; it is never
// glued to a good record).
func endWithNewline(f *os.File, size int64) error {
	if size == 0 {
		return nil
	}
	last := make([]byte, 1)
	if _, err := f.ReadAt(last, size-1); err != nil {
		return err
	}
	if last[0] == '\n' {
		return nil
	}
	_, err := f.Write([]byte("\n"))
	return err
}

// outputMode says what the run may do with an output file that already
// holds measurements: --resume continues it, --append adds to it, and
// neither refuses it.
func (c *RunConfig) outputMode() outputMode {
	switch {
	case c.Resume:
		return outputResume
	case c.Append:
		return outputAppend
	}
	return outputNew
}

// defaultOutputName is the output file of a run started at start:
// measurements-20260102T150405Z.jsonl, in UTC. ISO 8601's basic format
// has no ':', so the name is valid on Windows, macOS and Linux alike, and
// names sort by time.
func defaultOutputName(start time.Time) string {
	return "measurements-" + start.UTC().Format("20060102T150405Z") + ".jsonl"
}

// outputFlags reads --resume and --append into rc for command (run,
// sweep): --resume FILE continues that file, so -o may not name another
// and - (stdout) cannot be resumed.
func outputFlags(cmd *cobra.Command, rc *RunConfig, command string) error {
	resume, _ := cmd.Flags().GetString("resume")
	if resume != "" {
		if cmd.Flags().Changed("output") && rc.Output != resume {
			return usageError("--resume %s appends to that file; do not give a different -o", resume)
		}
		if resume == "-" {
			return usageError("--resume needs the file an interrupted %s wrote, not - (stdout)", command)
		}
		rc.Output = resume
		rc.Resume = true
	}
	rc.Append, _ = cmd.Flags().GetBool("append")
	return nil
}
