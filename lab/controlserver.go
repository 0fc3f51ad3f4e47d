package lab

// The lab's control server: the real one (package control), run on
// [Lab.ControlAddr] as a vantage outside the censored network. It is not a
// simulation of a control server but the component itself, placed in the
// lab's topology: it dials with [Lab.OutsideDialer], so a site's public
// address reaches the origin and not the middlebox; it resolves with the
// lab's control resolver (DoH), which does not lie; it trusts the lab's
// public root; and it admits the lab's /24, whose loopback addresses a
// control server refuses by default.

import (
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"kzprobe/control"
	"kzprobe/dnsx"
	"kzprobe/probe"
	"kzprobe/probe/chain"
	"kzprobe/probe/guard"
)

// ControlServerDNSName is the DNS name in the control server's certificate,
// which also carries [Lab.ControlAddr].
const ControlServerDNSName = "control." + labZone

// controlServer is what the lab holds of its control server.
type controlServer struct {
	resolver dnsx.InfoExchanger
}

// startControlServer binds the control server on ControlAddr:Port and
// serves it until Close. A failure to bind wraps errBind, so Start tries
// another /24.
func (l *Lab) startControlServer() error {
	ln, err := net.Listen("tcp4", netip.AddrPortFrom(l.ControlAddr, uint16(l.Port)).String())
	if err != nil {
		return fmt.Errorf("%w: control server: %w", errBind, err)
	}
	l.listeners = append(l.listeners, ln)
	cert, err := l.PKI.IssuePublic([]string{ControlServerDNSName}, []net.IP{l.ControlAddr.AsSlice()})
	if err != nil {
		return err
	}
	outside := guard.New(l.Nets()...).Dialer(guard.DialFunc(l.OutsideDialer()))
	ex, err := dnsx.New(l.DoHURL, dnsx.Options{ServerName: l.ControlServerName, RootCAs: l.PKI.PublicRoots(), Dial: outside, Timeout: 5 * time.Second})
	if err != nil {
		return err
	}
	l.control = &controlServer{resolver: ex}
	kb, err := chain.Default()
	if err != nil {
		return err
	}
	if _, err := kb.AddRootsPEM(l.PKI.ISCARootPEM(), "kzprobe lab ISCA root"); err != nil {
		return err
	}
	logger := slog.New(slog.DiscardHandler)
	switch {
	case l.reqLog != nil:
		// One line per request, as the other servers' in the request log.
		logger = slog.New(slog.NewTextHandler(logWriter{l.reqLog, "control server "}, &slog.HandlerOptions{
			ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
				if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey || a.Key == slog.MessageKey) {
					return slog.Attr{}
				}
				return a
			},
		}))
	case l.errorLog.Writer() != io.Discard:
		logger = slog.New(slog.NewTextHandler(l.errorLog.Writer(), nil))
	}
	srv, err := control.NewServer(control.ServerConfig{
		Resolver: &probe.DNSResolver{Exchanger: ex, Timeout: 5 * time.Second, Retries: 1},
		Dial:     outside,
		Analyzer: chain.NewAnalyzer(l.PKI.PublicRoots(), kb),
		// ::1 is admitted, so that a probe may ask about an IPv6 site; the
		// outside dialer reaches the site's origin there by SNI.
		Admit: l.Nets(),
		Ports: []int{l.Port},
		// A lab run sends a burst of checks from one address; the abuse
		// limits are tested on their own (control/server_test.go).
		Rate:  1000,
		Burst: 1000,
		// Each step (DNS, connect, handshake) gets a quarter: 4s, ample
		// on loopback even on a loaded machine, and within a probe's
		// target timeout.
		Deadline:    16 * time.Second,
		SNIEndpoint: l.sniEndpointInfo(),
		Logger:      logger,
	})
	if err != nil {
		return err
	}
	hs := srv.HTTPServer(&tls.Config{Certificates: []tls.Certificate{*cert}})
	l.httpServers = append(l.httpServers, hs)
	l.ControlServerURL = "https://" + netip.AddrPortFrom(l.ControlAddr, uint16(l.Port)).String()
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		if err := hs.ServeTLS(ln, "", ""); err != nil && err != http.ErrServerClosed {
			l.errorLog.Printf("lab: control server: %v", err)
		}
	}()
	return nil
}

// stopControlServer releases what Close does not: the server's resolver.
// Its listener and http.Server are closed with the others.
func (l *Lab) stopControlServer() {
	if l.control != nil {
		l.control.resolver.Close()
	}
}

// logWriter writes each record it is given as one line of a log.Logger,
// after a prefix.
type logWriter struct {
	l      *log.Logger
	prefix string
}

func (w logWriter) Write(p []byte) (int, error) {
	w.l.Print(w.prefix + strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
