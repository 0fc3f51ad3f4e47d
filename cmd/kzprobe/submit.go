package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"kzprobe/collector/client"
	"kzprobe/measurement"
	"kzprobe/probe"
	"kzprobe/probe/guard"
)

// runSubmission is the submitter of a run or a sweep: the outbox of the
// output file, sending in the background while it measures.
type runSubmission struct {
	ob *client.Outbox
	c  *client.Client
	// report is the report the collector opened for the run, "" when it
	// did not answer at the start.
	report string
	url    string
	wait   time.Duration
	done   chan struct{}
	result chan error
	cancel context.CancelFunc
	// label starts its summary line ("--trace: " for a run's traces).
	label string
}

// startRunSubmission opens the outbox of outPath for --submit and, unless
// the run was resumed (its report is the file's), opens the run's report
// at the collector first, so that its records carry the collector's
// report_id and are submitted as written. A collector that does not answer
// leaves the run its own report_id; the records wait in the outbox. It
// returns nil without --submit.
func startRunSubmission(ctx context.Context, cfg *Config, e *probe.Envelope, testName, testVersion string, dial guard.DialFunc, outPath string, stderr io.Writer) (*runSubmission, error) {
	if cfg.Submit.URL == "" {
		return nil, nil
	}
	token, err := readTokenFile("--submit-token-file", cfg.Submit.TokenFile)
	if err != nil {
		return nil, err
	}
	c, err := newSubmitClient(cfg.Submit.URL, cfg.Submit.Pin, cfg.Submit.CA, token, dial)
	if err != nil {
		return nil, err
	}
	ob, err := client.OpenOutbox(outPath, c)
	if err != nil {
		return nil, err
	}
	ob.Warn = func(msg string) { fmt.Fprintln(stderr, "kzprobe: submit: "+msg) }
	report := ""
	if e.ReportID == "" {
		octx, cancel := context.WithTimeout(ctx, 10*time.Second)
		id, err := c.Open(octx, client.OpenRequestOf(measurement.DataFormatVersion, cmp.Or(e.ProbeASN, "AS0"), cmp.Or(e.ProbeCC, "ZZ"),
			measurement.SoftwareName, e.SoftwareVersion, testName, testVersion, measurement.FormatTime(e.TestStartTime)))
		cancel()
		if err != nil {
			fmt.Fprintf(stderr, "kzprobe: submit: %v; measuring anyway: the records are kept in %s and submitted when the collector answers (or later with kzprobe submit)\n", err, outPath)
		} else {
			e.ReportID, report = id, id
			if err := ob.Adopt(id, time.Now()); err != nil {
				return nil, fmt.Errorf("writing the outbox cursor: %w", err)
			}
		}
	}
	sctx, cancel := context.WithCancel(ctx)
	s := &runSubmission{ob: ob, c: c, report: report, url: cfg.Submit.URL, wait: cfg.Submit.Wait, done: make(chan struct{}), result: make(chan error, 1), cancel: cancel}
	go func() { s.result <- ob.Run(sctx, s.done) }()
	return s, nil
}

// notify says a record was written.
func (s *runSubmission) notify() {
	if s != nil {
		s.ob.Notify()
	}
}

// finish lets the submitter send what is left for at most --submit-wait
// and says what was submitted and what is kept. A run that measured
// every target and submitted every record closes its report (bk-003 3.3).
func (s *runSubmission) finish(stderr io.Writer, complete bool) error {
	if s == nil {
		return nil
	}
	close(s.done)
	var err error
	select {
	case err = <-s.result:
	case <-time.After(s.wait):
		s.cancel()
		err = <-s.result
	}
	s.cancel()
	st := s.ob.Stats()
	pending, _ := s.ob.Pending()
	msg := fmt.Sprintf("%ssubmitted %s to %s", s.label, plural(st.Sent, "record"), s.url)
	if st.Rejected > 0 {
		msg += fmt.Sprintf(", %d refused (see above)", st.Rejected)
	}
	fmt.Fprintln(stderr, msg)
	if pending > 0 {
		fmt.Fprintf(stderr, "kzprobe: %ssubmit: the rest is kept in %s; send it with: kzprobe submit %s --submit %s\n", s.label, s.ob.Path(), s.ob.Path(), s.url)
	}
	if errors.Is(err, client.ErrUnauthorized) {
		return err
	}
	if complete && err == nil && pending == 0 && s.report != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.c.Close(ctx, s.report); err != nil {
			fmt.Fprintf(stderr, "kzprobe: submit: closing the report: %v\n", err)
		}
	}
	s.c.CloseIdle()
	return nil
}

// submitCmdArgs are the flags of `kzprobe submit`.
type submitCmdArgs struct {
	url, pin, ca, tokenFile string
	allowNet                []string
	wait                    time.Duration
}

func newSubmitCmd() *cobra.Command {
	var a submitCmdArgs
	cmd := &cobra.Command{
		Use:   "submit FILE... --submit URL",
		Short: "Send JSONL records to a collector (what a run could not send)",
		Long: `Send every record of each FILE that the collector has not yet answered:
from the cursor in FILE.submit (written by kzprobe run --submit and by this
command), or from the start. Each record is sent as written, byte for byte;
a record whose report_id the collector did not give is sent in a report
opened for it, with only its report_id value replaced. Failures are retried
with backoff for --wait; what is left stays for the next time. A record sent
twice is kept once by the collector.`,
		Example: `  kzprobe submit measurements-20261204T120000Z.jsonl --submit https://203.0.113.5:8443 --submit-pin sha256:...`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runSubmit(ctx, a, args, cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&a.url, "submit", "", "the collector `URL`, https://IP:PORT; required")
	f.StringVar(&a.pin, "submit-pin", "", "the collector's key `pin`, sha256:BASE64, as kzprobe collector serve prints it")
	f.StringVar(&a.ca, "submit-ca", "", "PEM `file` of roots for the collector's certificate")
	f.StringVar(&a.tokenFile, "submit-token-file", "", "`file` holding the collector's bearer token")
	f.StringSliceVar(&a.allowNet, "allow-net", nil, "only contact these `CIDRs` (default: network.allow from KZPROBE_NETWORK_ALLOW, else anywhere)")
	f.DurationVar(&a.wait, "wait", 5*time.Minute, "keep retrying a failing collector this long")
	return cmd
}

func runSubmit(ctx context.Context, a submitCmdArgs, files []string, stderr io.Writer) error {
	if a.url == "" {
		return usageError("--submit URL is required: the collector to send to")
	}
	for _, f := range files {
		if st, err := os.Stat(f); err != nil {
			return pathError("FILE", f, err, false)
		} else if !st.Mode().IsRegular() {
			return usageError("%s is not a regular file", f)
		}
	}
	allow := a.allowNet
	if allow == nil {
		cfg, err := loadConfig("", nil, nil)
		if err != nil {
			return err
		}
		allow = cfg.Network.Allow
	}
	g, err := guard.Parse(allow...)
	if err != nil {
		return usageError("--allow-net: %v", err)
	}
	token, err := readTokenFile("--submit-token-file", a.tokenFile)
	if err != nil {
		return err
	}
	c, err := newSubmitClient(a.url, a.pin, a.ca, token, g.Dialer(nil))
	if err != nil {
		return usageError("%v", err)
	}
	defer c.CloseIdle()
	wctx, cancel := context.WithTimeout(ctx, a.wait)
	defer cancel()
	var failed []string
	for _, f := range files {
		ob, err := client.OpenOutbox(f, c)
		if err != nil {
			return err
		}
		ob.Warn = func(msg string) { fmt.Fprintf(stderr, "kzprobe: submit: %s: %s\n", f, msg) }
		err = ob.Run(wctx, nil)
		st := ob.Stats()
		pending, _ := ob.Pending()
		fmt.Fprintf(stderr, "%s: %s submitted", f, plural(st.Sent, "record"))
		if st.Rejected > 0 {
			fmt.Fprintf(stderr, ", %d refused", st.Rejected)
		}
		if pending > 0 {
			fmt.Fprintf(stderr, ", %d bytes not yet sent", pending)
			failed = append(failed, f)
		}
		fmt.Fprintln(stderr)
		if errors.Is(err, client.ErrUnauthorized) {
			return err
		}
		if ctx.Err() != nil {
			return &exitError{code: exitInterrupted, err: errors.New("interrupted; run kzprobe submit again to send the rest")}
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("the collector did not take every record within --wait %s; run kzprobe submit again to send the rest", a.wait)
	}
	return nil
}
