package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/net/netutil"
)

// This file holds what the two servers, `kzprobe control serve` and
// `kzprobe collector serve`, do alike once their own parts are built: the
// parent command that only holds serve, the key pair, the listener and
// serving until a signal.

// newServeParentCmd is `kzprobe NAME`, a parent that only holds serve: run
// alone it is a usage error that says what to do. what names the server
// ("the collector").
func newServeParentCmd(name, short, what string, serve *cobra.Command) *cobra.Command {
	cmd := &cobra.Command{
		Use:   name,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError("say what to do with %s, e.g. kzprobe %s serve (see kzprobe %s --help)", what, name, name)
		},
	}
	cmd.AddCommand(serve)
	return cmd
}

// newLogger is the server's structured log on stderr, in format "text"
// or "json", of records at Info and above.
func newLogger(format string, stderr io.Writer) (*slog.Logger, error) {
	return newLevelLogger(format, slog.LevelInfo, stderr)
}

// newLevelLogger is newLogger of records at level and above.
func newLevelLogger(format string, level slog.Level, stderr io.Writer) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(stderr, opts)), nil
	}
	return nil, usageError("--log-format %q: want text or json", format)
}

// loadServerTLS is the TLS configuration of a server presenting the key
// pair of certFile and keyFile, TLS 1.2 and later. The error is
// tls.LoadX509KeyPair's, for the caller to name its flags.
func loadServerTLS(certFile, keyFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// listenLimited listens on addr (--listen, checked by checkListen) and
// accepts at most maxConns connections open at once (at least one).
func listenLimited(addr string, maxConns int) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", addr, err)
	}
	return netutil.LimitListener(ln, max(maxConns, 1)), nil
}

// serveUntilDone serves hs on ln, over TLS when hs has a TLSConfig, until
// ctx is done (a signal) or serving fails. Once ctx is done it logs
// "NAME stopping", lets the requests in progress end within grace, closes
// what is left and returns nil: a stop is not an error.
func serveUntilDone(ctx context.Context, hs *http.Server, ln net.Listener, grace time.Duration, logger *slog.Logger, name string) error {
	errc := make(chan error, 1)
	go func() {
		if hs.TLSConfig != nil {
			errc <- hs.ServeTLS(ln, "", "")
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info(name + " stopping")
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		hs.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
