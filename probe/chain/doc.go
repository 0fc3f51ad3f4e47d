// Package chain judges a presented TLS certificate chain: is it trusted, and
// does it lead to Kazakhstan's interception PKI (ISCA, Qaznet)?
//
// It is a pure function over DER certificates, with no network and no
// clock: the measurement time is an argument. The probe runs it on every
// handshake it records, and `kzprobe analyze` runs it over measurements
// already collected (ours and OONI's).
//
// # Design
//
// Knowledge is data. [Default] returns the [KnowledgeBase] embedded in the
// binary: the ten real ISCA and Qaznet roots from Chromium's blocklist
// (roots/*.pem, with their provenance and openssl checks in
// roots/SOURCES.md) and the published facts about the seven intermediates
// seen in the wild, of which no certificate exists (intermediates.json,
// from the OONI 2024 report). [KnowledgeBase.AddRootsPEM] adds roots from
// the config (interception.extra_roots), which is how the lab's test root
// comes in. The embedded data is parsed once; each Default call returns a
// copy, so adding roots to one knowledge base never changes another.
//
// One call to [Analyzer.Judge] answers two independent questions:
//
//   - Trust: does the first certificate verify, with the others as
//     intermediates, against the trust store (the Mozilla bundle of
//     golang.org/x/crypto/x509roots/fallback/bundle unless replaced; never
//     the system store) for the SNI at the measurement time? A failure is a
//     string of the probe/failure vocabulary, via failure.Classify.
//   - Interception: is there an anchor in Kazakhstan's PKI, and how strong
//     is the evidence? [EvidenceSignature]: a presented certificate's
//     signature verifies under a known root's key (whatever the dates, and
//     even when the chain is incomplete). [EvidenceFingerprint]: a known
//     root or intermediate is present by SHA-1 or SHA-256.
//     [EvidenceIssuerName]: only names match (see [Rules]).
//
// Roots are told apart by key, never by name. Seven real roots share the
// exact subject C=KZ, O=ISCA, CN=Information Security Certification
// Authority, and every intermediate seen in the wild has that same name as
// both subject and issuer. So each certificate is checked against the keys
// of the roots its authority key id names, then of every root whose subject
// equals its issuer name; the first that verifies is its signer (the
// report's "Root CA Cert" column), else [SignerUnknown]. Pairs are only
// tried when key id or name make them plausible, duplicates are judged
// once, at most [Analyzer].MaxCerts certificates are parsed, and all
// signature checks of one call share a fixed budget: a hostile chain costs
// linear work.
//
// Named rules ([Rules]) are the patterns that can be checked from one
// chain, each a name and a match function like tailscale's blockblame
// table: isca_issuer_name, qaznet_issuer_name, qaznet_2019_forgery,
// known_root_issuer_name and isca_75_day_intermediate. The 2019 forgeries
// also copied the genuine leaf's subject and SANs and shifted its validity
// by about six hours; checking that needs the genuine leaf (the control's
// chain) and is left to the caller.
//
// Whether a user who installed the mandated root would still have seen an
// error is computed by verifying the leaf with the identified root as the
// only trusted root at the measurement time; if that fails, the reasons
// come from explicit checks along the path from the leaf to the root
// (expired or not-yet-valid leaf or intermediate, name mismatch). A chain
// that merely stops short of the root is not counted as an error: OONI
// records often keep one certificate, and a browser may hold the missing
// intermediate.
//
// A record may withhold a certificate whose bytes hold the probe's own
// address. [Analyzer.JudgeWithheld] judges such a chain from the facts kept
// of the certificate ([Withheld]): fingerprints, names (read back by
// [ParseName]), validity, serial and the root whose key the probe saw sign
// it. No signature is checked without bytes: signature evidence that rests
// on a recorded signer says so ([EvidenceRecorded] in
// [Interception].EvidenceSource).
//
// Judgements are plain data: lists are never null in JSON, times are RFC
// 3339 UTC, fingerprints lowercase hex, serials decimal as the report
// prints them. [Strongest] picks the strongest anchor among one target's
// handshakes.
package chain
