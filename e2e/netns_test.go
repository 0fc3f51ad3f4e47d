//go:build linux

package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// netns is one network namespace the trace suite created (ip netns add),
// deleted at cleanup.
type netns struct {
	// name is the namespace's name under /run/netns.
	name string
}

// newNetns creates a namespace named name, with its loopback up and ICMP
// errors unlimited (the kernel's own rate limit, one a second per
// destination after a burst, would make a quick trace's answers depend on
// timing; the suite's rate limit is its own nftables rule), and deletes
// it at cleanup.
func newNetns(t *testing.T, name string) *netns {
	t.Helper()
	mustRun(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "delete", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns delete %s: %v: %s", name, err, out)
		}
	})
	n := &netns{name: name}
	n.run(t, "ip", "link", "set", "lo", "up")
	n.run(t, "sysctl", "-qw", "net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0")
	return n
}

// run runs argv inside the namespace and fails the test on error.
func (n *netns) run(t *testing.T, argv ...string) {
	t.Helper()
	mustRun(t, append([]string{"ip", "netns", "exec", n.name}, argv...)...)
}

// forward turns the namespace into a router, for IPv4 and IPv6.
func (n *netns) forward(t *testing.T) {
	t.Helper()
	n.run(t, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
}

// nft loads an nftables ruleset into the namespace.
func (n *netns) nft(t *testing.T, ruleset string) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", n.name, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft in %s: %v: %s\nruleset:\n%s", n.name, err, out, ruleset)
	}
}

// do runs fn with the calling goroutine's thread inside the namespace:
// sockets that fn opens (a listener, a dial) belong to it for their whole
// life, whatever thread later uses them. The thread is locked while it is
// inside, and goes back to the test's namespace afterwards; should that
// fail, the thread is left locked and dies with the goroutine (Go never
// reuses a thread whose goroutine exits locked), so no other goroutine
// ever runs in the wrong namespace.
func (n *netns) do(fn func() error) error {
	runtime.LockOSThread()
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer self.Close()
	target, err := os.Open("/run/netns/" + n.name)
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("setns %s: %w", n.name, err)
	}
	ferr := fn()
	if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("setns back from %s: %w", n.name, err) // thread stays locked
	}
	runtime.UnlockOSThread()
	return ferr
}

// listen opens a TCP listener on addr inside the namespace.
func (n *netns) listen(t *testing.T, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	err := n.do(func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		t.Fatalf("listening on %s in %s: %v", addr, n.name, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// dial connects to addr from inside the namespace.
func (n *netns) dial(addr string) (net.Conn, error) {
	var c net.Conn
	err := n.do(func() (err error) {
		c, err = net.Dial("tcp", addr)
		return err
	})
	return c, err
}

// link joins namespaces a and b with a veth pair, named an and bn inside
// them, up, with the given addresses (CIDRs) on each side.
func link(t *testing.T, a *netns, an string, aAddrs []string, b *netns, bn string, bAddrs []string) {
	t.Helper()
	mustRun(t, "ip", "link", "add", an, "netns", a.name, "type", "veth", "peer", "name", bn, "netns", b.name)
	for _, side := range []struct {
		ns    *netns
		dev   string
		addrs []string
	}{{a, an, aAddrs}, {b, bn, bAddrs}} {
		for _, addr := range side.addrs {
			args := []string{"ip", "addr", "add", addr, "dev", side.dev}
			if strings.Contains(addr, ":") {
				args = append(args, "nodad") // no duplicate address detection: usable at once
			}
			side.ns.run(t, args...)
		}
		side.ns.run(t, "ip", "link", "set", side.dev, "up")
	}
}

// route adds a route in the namespace: "ip route add" + args, or "ip -6
// route add" for an IPv6 destination.
func (n *netns) route(t *testing.T, dst, via string) {
	t.Helper()
	if strings.Contains(via, ":") {
		n.run(t, "ip", "-6", "route", "add", dst, "via", via)
		return
	}
	n.run(t, "ip", "route", "add", dst, "via", via)
}

// mustRun runs a short command and fails the test on error.
func mustRun(t *testing.T, argv ...string) {
	t.Helper()
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(argv, " "), err, out)
	}
}
