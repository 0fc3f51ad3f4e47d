// Package vantage says where a measurement was taken from, and keeps the
// volunteer who took it out of the record.
//
// # Scope
//
// A measurement names its vantage network (ASN, network name, country) and
// its resolver's, so that results from many networks can be compared, and
// how each was obtained ([Info.Method]): configured by the volunteer, looked
// up in a local MMDB file, or unknown. Nothing else about the volunteer is
// recorded, and their address is scrubbed from everything written.
//
//   - [Resolve] combines what was configured ([Configured]) with a lookup of
//     the public address in a [DB]; configured values win field by field.
//   - [Open] and [DB.Lookup] read MaxMind GeoLite2, DB-IP Lite and IPinfo
//     MMDB files, normalising their different record shapes. Lookups are
//     local: no service is asked about the address.
//   - [WhoamiDNS] learns the public address (or a resolver's egress
//     address) from an IP-pinned "whoami" DNS server, through an injected
//     dial function so the network guard applies. Learning it from the
//     control server is the control package's job.
//   - [Scrubber] replaces the volunteer's addresses, in any spelling it can
//     recognise, by "[scrubbed]" in failure strings, logs and output, as
//     OONI does; with an IPv6 address go the other addresses of its /64,
//     and with an IPv4 address the IPv6 addresses that embed it (NAT64,
//     6to4, Teredo). [Scrubber.Contains] says whether raw bytes (a
//     certificate's DER, a DNS message) hold one of them, in binary, hex,
//     DNS wire or text form, so that such a field can be withheld.
//
// # What is recorded and what is not
//
// Recorded: the [Info] of the probe and of the resolver (ASN, country,
// network name, method). Not recorded: the public address, local
// addresses, anything finer than the country. The output layer writes
// "AS0" and "ZZ" for unknown values; [Info] keeps "" so that unknown and
// configured can never be confused. The public address is an input to
// [Resolve] and [NewScrubber] only.
//
// # Risks for a volunteer
//
// PRIVACY.md beside this file states, for the README, in plain words, what
// a measurement says about the person who ran it and what risks remain:
// the network can see the probe run, a file names the provider and the time
// (which on a small network may point to few people), and measuring
// interception may itself be sensitive.
//
// # Design
//
// A [DB] detects each record's format from its fields, not from the file's
// metadata, so a renamed or re-packaged file still works, and decodes into
// one struct holding every alternative field. Lookups never return errors:
// maxminddb's quote the address.
//
// The [Scrubber] matches by meaning (every substring that parses as a
// hidden address, also with '-' read as '.' or ':', as host names spell
// addresses) and by text (every case-insensitive occurrence of the
// reverse-DNS names), and replaces the union. It errs towards scrubbing
// too much: a string that merely contains a hidden address's text, such as
// a neighbouring address with one more digit, loses that part too. Its
// fuzz test checks that no spelling it was given survives.
//
// [WhoamiDNS] removes the local address from socket errors ("read udp
// 192.0.2.7:40000->..."), since on a directly connected host it is the
// public one; callers still pass every error through the [Scrubber].
package vantage
