// Package targets turns target lists into normalised [Target] values: the
// embedded default list, plain text files, Citizen Lab test-list CSV files,
// and names given one by one on the command line.
//
// # Scope
//
// The package parses and validates input; it does no networking at all. It
// never resolves a name, and an IP literal is rejected rather than probed,
// because the measurement is about what a network does to a domain name (its
// DNS answers and the certificate presented for its SNI).
//
// # Design
//
// Every input goes through [Normalize], which accepts a bare domain
// ("Example.COM."), a domain with a port ("example.com:8443") or an http or
// https URL ("https://example.com:8443/path?q"), and returns the domain in
// lower-case ASCII (IDNA, UTS #46 non-transitional lookup mapping, so
// "пример.рф" becomes "xn--e1afmkfd.xn--p1ai") without the trailing dot. A
// bad input fails with one of a small set of sentinel errors ([ErrIPLiteral],
// [ErrMalformed], ...) that callers test with [errors.Is].
//
// Lists are streamed: a [Reader] returns one [Target] per call to
// [Reader.Next] and holds one line (or one CSV record) at a time, so a list of
// a million lines never sits in memory. A bad line is not fatal: Next returns
// a [*LineError] that names the file, the line and the input, and the caller
// keeps calling Next; the rest of the list still runs. Only I/O errors end a
// list. [Open] picks the format (text, CSV, or a Tranco-style ranked list of
// "rank,domain" lines) from the file name or its first line, and reads
// standard input for "-".
//
// Duplicates are removed by the caller with a [Deduper], which keeps 64-bit
// hashes rather than strings, so that a million targets cost about 17 MB.
// [ReadAll] does all of this at once for small lists and tests.
//
// The package has no mutable package-level state; everything it reads comes
// through its arguments, except the embedded default list ([Default]).
package targets
