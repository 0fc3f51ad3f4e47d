package chain

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"embed"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math/big"
	"path"
	"slices"
	"strings"
	"sync"
	"time"
)

// embedded holds the knowledge base compiled into the binary:
//
//   - roots/*.pem: the ten real ISCA and Qaznet roots from Chromium's
//     certificate blocklist (net/data/ssl/blocklist), as verified in
//     roots/SOURCES.md;
//   - intermediates.json: the published facts about the seven intermediates
//     seen in the wild (OONI's 2024 Kazakhstan report), for which no
//     certificate exists anywhere; copied from ../shared/data/report-facts.json,
//     keeping only the intermediates.
//
//go:embed roots/*.pem intermediates.json
var embedded embed.FS

// ErrNoCertificates is returned by [KnowledgeBase.AddRootsPEM] when the input
// holds no PEM CERTIFICATE block.
var ErrNoCertificates = errors.New("chain: no PEM certificate found")

// Root is a known interception root certificate.
type Root struct {
	// Name is the subject common name (seven real roots share one), or the
	// whole subject when it has no common name.
	Name string
	// Subject is the subject distinguished name as [pkix.Name.String] prints it.
	Subject string
	// SHA1, SHA256 and SPKISHA256 are lowercase hex digests of the
	// certificate DER and of its SubjectPublicKeyInfo.
	SHA1, SHA256, SPKISHA256 string
	// SubjectKeyID is the subject key identifier extension, lowercase hex,
	// empty when absent.
	SubjectKeyID string
	// NotBefore and NotAfter are the validity window, UTC.
	NotBefore, NotAfter time.Time
	// Source says where the certificate came from: "embedded:roots/<file>"
	// for the built-in roots, or the source given to AddRootsPEM.
	Source string
	// Cert is the parsed certificate. It is shared between knowledge bases
	// and must not be modified.
	Cert *x509.Certificate
}

// KnownIntermediate is a published fact about an intermediate seen in the
// wild. No certificate is known, only its fingerprint and the report's
// columns.
type KnownIntermediate struct {
	// SHA1 is the lowercase hex SHA-1 of the certificate DER.
	SHA1 string
	// Serial is the serial number in decimal, as the report prints it.
	Serial string
	// NotBefore and NotAfter are the validity window, UTC.
	NotBefore, NotAfter time.Time
	// SignerRootSHA1 is the SHA-1 of the known root that signed it, or
	// [SignerUnknown] when the report could not tell.
	SignerRootSHA1 string
	// SeenIn names the OONI measurement the report saw it in.
	SeenIn string
}

// KnowledgeBase is the set of known interception roots and intermediates.
// Lookups are safe for concurrent use; AddRootsPEM is not safe to call
// concurrently with anything else on the same KnowledgeBase.
type KnowledgeBase struct {
	roots        []Root
	inters       []KnownIntermediate
	rootBySHA1   map[string]int
	rootBySHA256 map[string]int
	interBySHA1  map[string]int
	// validityDays is the lifetime shared by every intermediate seen in
	// the wild (75 days in the report); zero when unknown.
	validityDays int
}

// Default returns the knowledge base embedded in the binary: the ten real
// roots in roots/ and the seven published intermediates. The embedded data
// is parsed once per process; each call returns a fresh copy, so that
// AddRootsPEM on one result never affects another.
func Default() (*KnowledgeBase, error) {
	kb, err := parsedDefault()
	if err != nil {
		return nil, err
	}
	return kb.clone(), nil
}

// parsedDefault parses the embedded data once. The result is never handed
// out, only clones of it.
var parsedDefault = sync.OnceValues(parseEmbedded)

func parseEmbedded() (*KnowledgeBase, error) {
	kb := newKnowledgeBase()
	files, err := fs.Glob(embedded, "roots/*.pem")
	if err != nil {
		return nil, fmt.Errorf("chain: embedded roots: %w", err)
	}
	slices.Sort(files)
	for _, name := range files {
		data, err := embedded.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("chain: embedded %s: %w", name, err)
		}
		n, err := kb.AddRootsPEM(data, "embedded:"+name)
		if err != nil {
			return nil, err
		}
		if n != 1 {
			return nil, fmt.Errorf("chain: embedded %s: %d new certificates, want 1", name, n)
		}
		// The file name ends with the certificate's SHA-1: a wrong file
		// fails here rather than silently.
		stem := strings.TrimSuffix(path.Base(name), ".pem")
		if got := kb.roots[len(kb.roots)-1].SHA1; !strings.HasSuffix(stem, "_"+got) {
			return nil, fmt.Errorf("chain: embedded %s: SHA-1 is %s, not the one in the file name", name, got)
		}
	}
	data, err := embedded.ReadFile("intermediates.json")
	if err != nil {
		return nil, fmt.Errorf("chain: embedded intermediates: %w", err)
	}
	if err := kb.addIntermediatesJSON(data); err != nil {
		return nil, err
	}
	return kb, nil
}

func newKnowledgeBase() *KnowledgeBase {
	return &KnowledgeBase{
		rootBySHA1:   map[string]int{},
		rootBySHA256: map[string]int{},
		interBySHA1:  map[string]int{},
	}
}

func (kb *KnowledgeBase) clone() *KnowledgeBase {
	return &KnowledgeBase{
		roots:        slices.Clone(kb.roots),
		inters:       slices.Clone(kb.inters),
		rootBySHA1:   maps.Clone(kb.rootBySHA1),
		rootBySHA256: maps.Clone(kb.rootBySHA256),
		interBySHA1:  maps.Clone(kb.interBySHA1),
		validityDays: kb.validityDays,
	}
}

// AddRootsPEM adds every PEM CERTIFICATE block of pemBytes as an extra
// interception root (config interception.extra_roots; the lab's test ISCA
// root, which copies the real subject name, comes in this way). Other PEM
// block types are ignored. source is recorded in each Root.Source, e.g. the
// file name. It returns how many roots were new; a certificate already in
// the knowledge base (same SHA-256) is skipped. On error nothing is added.
func (kb *KnowledgeBase) AddRootsPEM(pemBytes []byte, source string) (int, error) {
	var certs []*x509.Certificate
	rest := pemBytes
	for i := 0; ; i++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return 0, fmt.Errorf("chain: %s: PEM block %d: %w", source, i, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return 0, fmt.Errorf("chain: %s: %w", source, ErrNoCertificates)
	}
	added := 0
	for _, c := range certs {
		r := newRoot(c, source)
		if _, dup := kb.rootBySHA256[r.SHA256]; dup {
			continue
		}
		kb.rootBySHA1[r.SHA1] = len(kb.roots)
		kb.rootBySHA256[r.SHA256] = len(kb.roots)
		kb.roots = append(kb.roots, r)
		added++
	}
	return added, nil
}

func newRoot(c *x509.Certificate, source string) Root {
	s1 := sha1.Sum(c.Raw)
	s256 := sha256.Sum256(c.Raw)
	spki := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	name := c.Subject.CommonName
	if name == "" {
		name = c.Subject.String()
	}
	return Root{
		Name:         name,
		Subject:      c.Subject.String(),
		SHA1:         hex.EncodeToString(s1[:]),
		SHA256:       hex.EncodeToString(s256[:]),
		SPKISHA256:   hex.EncodeToString(spki[:]),
		SubjectKeyID: hex.EncodeToString(c.SubjectKeyId),
		NotBefore:    c.NotBefore.UTC(),
		NotAfter:     c.NotAfter.UTC(),
		Source:       source,
		Cert:         c,
	}
}

// factsFile is the shape of intermediates.json.
type factsFile struct {
	Source                   string `json:"source"`
	IssuerOfIntermediates    string `json:"issuer_of_intermediates"`
	IntermediateValidityDays int    `json:"intermediate_validity_days"`
	Intermediates            []struct {
		SHA1              string  `json:"sha1"`
		Serial            string  `json:"serial"`
		NotBefore         string  `json:"not_before"`
		NotAfter          string  `json:"not_after"`
		SignerRootSHA1    *string `json:"signer_root_sha1"`
		SeenInMeasurement string  `json:"seen_in_measurement"`
	} `json:"intermediates"`
}

// factTime is how the report's facts file writes times (UTC). It is the
// records' measurement.TimeLayout, which chain cannot name: measurement
// imports chain.
const factTime = "2006-01-02 15:04:05"

func (kb *KnowledgeBase) addIntermediatesJSON(data []byte) error {
	var f factsFile
	if err := json.Unmarshal(data, &f); err != nil {
		return fmt.Errorf("chain: intermediates.json: %w", err)
	}
	kb.validityDays = f.IntermediateValidityDays
	for i, in := range f.Intermediates {
		bad := func(what string) error {
			return fmt.Errorf("chain: intermediates.json: intermediate %d: bad %s", i, what)
		}
		sha := normalizeHex(in.SHA1)
		if len(sha) != 40 || !isHex(sha) {
			return bad("sha1")
		}
		if _, ok := new(big.Int).SetString(in.Serial, 10); !ok {
			return bad("serial")
		}
		nb, err := time.Parse(factTime, in.NotBefore)
		if err != nil {
			return bad("not_before")
		}
		na, err := time.Parse(factTime, in.NotAfter)
		if err != nil {
			return bad("not_after")
		}
		signer := SignerUnknown
		if in.SignerRootSHA1 != nil {
			signer = normalizeHex(*in.SignerRootSHA1)
			if _, ok := kb.rootBySHA1[signer]; !ok {
				return bad("signer_root_sha1 (not a known root)")
			}
		}
		if _, dup := kb.interBySHA1[sha]; dup {
			return bad("sha1 (duplicate)")
		}
		kb.interBySHA1[sha] = len(kb.inters)
		kb.inters = append(kb.inters, KnownIntermediate{
			SHA1:           sha,
			Serial:         in.Serial,
			NotBefore:      nb.UTC(),
			NotAfter:       na.UTC(),
			SignerRootSHA1: signer,
			SeenIn:         in.SeenInMeasurement,
		})
	}
	return nil
}

// Roots returns the known roots: the embedded ones in file-name order, then
// those added with AddRootsPEM in the order added.
func (kb *KnowledgeBase) Roots() []Root { return slices.Clone(kb.roots) }

// Intermediates returns the published intermediates, in the report's order.
func (kb *KnowledgeBase) Intermediates() []KnownIntermediate { return slices.Clone(kb.inters) }

// RootBySHA1 finds a known root by the SHA-1 of its certificate, given in
// hex in either case, with or without colons.
func (kb *KnowledgeBase) RootBySHA1(sha1Hex string) (Root, bool) {
	i, ok := kb.rootBySHA1[normalizeHex(sha1Hex)]
	if !ok {
		return Root{}, false
	}
	return kb.roots[i], true
}

// IntermediateBySHA1 finds a published intermediate by the SHA-1 of its
// certificate, given in hex in either case, with or without colons.
func (kb *KnowledgeBase) IntermediateBySHA1(sha1Hex string) (KnownIntermediate, bool) {
	i, ok := kb.interBySHA1[normalizeHex(sha1Hex)]
	if !ok {
		return KnownIntermediate{}, false
	}
	return kb.inters[i], true
}

// lookup returns the index of the known root and of the known intermediate
// with these fingerprints, -1 for none. It is the whole of the fingerprint
// evidence.
func (kb *KnowledgeBase) lookup(sha1Hex, sha256Hex string) (root, inter int) {
	root, inter = -1, -1
	if i, ok := kb.rootBySHA256[sha256Hex]; ok {
		root = i
	} else if i, ok := kb.rootBySHA1[sha1Hex]; ok {
		root = i
	}
	if i, ok := kb.interBySHA1[sha1Hex]; ok {
		inter = i
	}
	return root, inter
}

func normalizeHex(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	return strings.ReplaceAll(s, ":", "")
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}
