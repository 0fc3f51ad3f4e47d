// Package e2e is kzprobe's end-to-end suite: it proves the real kzprobe
// binary against the real third-party software an ISP or a researcher would
// run, not against kzprobe's own lab.
//
// # Design
//
// One Go test, TestE2E in e2e_test.go, does everything: it generates a
// test PKI with crypto/x509 (a "public" root and issuing CA, an ISCA-named
// root with a current and an expired intermediate, an unrelated corporate
// CA), writes configuration files into a temporary folder, starts Debian's
// unbound (twice: the ISP's lying resolver and the DoH/DoT control
// resolver), nginx (the origins) and sslsplit (three TLS interceptors) on
// addresses of 127.77.0.0/16, builds kzprobe from this module, runs
// `kzprobe run` with flags only, and checks every domain's verdict, the
// interception evidence and that the recorded chains equal what
// `openssl s_client -showcerts` sees from the same address. Its subtest
// sweep (sweep_test.go) puts haproxy, reading the SNI, in front of
// `kzprobe control serve --sni-endpoint` and of an nginx "server abroad",
// with sslsplit for the intercepted names, and checks `kzprobe sweep`'s
// verdicts, chains, --found file and failing endpoints. Every daemon
// is started and stopped by its pid; nothing listens outside loopback and
// no resolver recurses.
//
// The suite runs only with KZPROBE_E2E=1, as root, with unbound, nginx,
// sslsplit, openssl and haproxy installed; otherwise it skips and says why.
// scripts/e2e.sh installs the packages and runs it; see README.md in this
// folder.
package e2e
