package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"

	"kzprobe/probe"
	"kzprobe/probe/guard"
	"kzprobe/vantage"
)

// bindDialer returns a dialer whose connections leave from the local
// address bind ("" means the system's choice).
func bindDialer(bind string) guard.DialFunc {
	a, err := netip.ParseAddr(bind)
	if bind == "" || err != nil {
		return (&net.Dialer{}).DialContext
	}
	tcp := &net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(a, 0))}
	udp := &net.Dialer{LocalAddr: net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, 0))}
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		if strings.HasPrefix(network, "udp") {
			return udp.DialContext(ctx, network, address)
		}
		return tcp.DialContext(ctx, network, address)
	}
}

// applyVantage fills in where the probe is (ASN, country, network, and the
// resolver's network), and returns the public address for the privacy
// scrubber. The configured values win field by field; otherwise the
// public address, learned from the whoami DNS server or else from the
// control server, is looked up in the local MMDB files. The public address
// itself is never written unless include_ip is set.
func applyVantage(ctx context.Context, cfg *Config, p *probe.Prober, dial guard.DialFunc, log io.Writer) (netip.Addr, error) {
	v := cfg.Vantage
	db, err := vantage.Open(v.ASNDB, v.CountryDB)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%w: vantage: %v", ErrConfig, err)
	}
	defer db.Close()

	var public netip.Addr
	if v.Whoami != "" {
		name, qtype := v.WhoamiName, dns.TypeA
		if name == "" {
			name = vantage.AkamaiWhoamiA
		}
		if dns.Fqdn(name) == vantage.GoogleWhoamiTXT {
			qtype = dns.TypeTXT
		}
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		public, err = vantage.WhoamiDNS(wctx, vantage.DialFunc(dial), v.Whoami, dns.Fqdn(name), qtype)
		cancel()
		if err != nil {
			fmt.Fprintf(log, "kzprobe: could not learn the public address from %s (%v); the network stays as configured or unknown\n", v.Whoami, err)
		}
	}
	if who, ok := p.ControlServer.(interface {
		WhoAmI(context.Context) (netip.Addr, error)
	}); ok && !public.IsValid() {
		// The control server sees the address the probe comes from.
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		public, err = who.WhoAmI(wctx)
		cancel()
		if err != nil {
			fmt.Fprintf(log, "kzprobe: the control server could not tell the public address (%v); the network stays as configured or unknown\n", err)
		}
	}
	info := vantage.Resolve(vantage.Configured{ASN: v.ASN, CC: v.CC, Network: v.Network}, public, db)
	e := &p.Envelope
	e.ProbeASN, e.ProbeCC, e.ProbeNetworkName = info.ASN, info.CC, info.Network
	if e.Annotations == nil {
		e.Annotations = map[string]string{}
	}
	e.Annotations["vantage_method"] = info.Method
	if p.Local != nil && p.Local.Exchanger != nil {
		if ap, err := netip.ParseAddrPort(p.Local.Exchanger.Address()); err == nil {
			r := db.Lookup(ap.Addr())
			e.ResolverASN, e.ResolverNetworkName = r.ASN, r.Network
			e.Annotations["resolver_vantage_method"] = r.Method
		}
	}
	if v.NoASN {
		e.ProbeASN, e.ProbeNetworkName, e.ResolverASN, e.ResolverNetworkName = "", "", "", ""
		delete(e.Annotations, "resolver_vantage_method")
	}
	if v.NoCC {
		e.ProbeCC = ""
	}

	if v.IncludeIP {
		e.ProbeIP = public.String()
		if !public.IsValid() {
			e.ProbeIP = ""
		}
	}
	return public, nil
}

// localAddrs lists this machine's own non-loopback addresses (a local
// system call; nothing is sent).
func localAddrs() []netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && !p.Addr().IsLoopback() {
			out = append(out, p.Addr())
		}
	}
	return out
}
