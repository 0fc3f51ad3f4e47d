// Package chain judges a presented TLS certificate chain: is it trusted, and
// does it lead to Kazakhstan's interception PKI (ISCA, Qaznet)?
//
// It is a pure function over DER certificates, with no network and no
// clock: the measurement time is an argument. The probe runs it on every
// handshake it records, and `kzprobe analyze` runs it over measurements
// already collected (ours and OONI's).
package chain
