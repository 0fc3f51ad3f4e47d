package chain

import (
	"bytes"
	"crypto/x509"
	"slices"
	"time"
)

// Reasons a user who installed the mandated root would still have seen a
// browser error, as listed in [Interception].BrowserErrorReasons.
const (
	ReasonLeafExpired             = "leaf_expired"
	ReasonLeafNotYetValid         = "leaf_not_yet_valid"
	ReasonIntermediateExpired     = "intermediate_expired"
	ReasonIntermediateNotYetValid = "intermediate_not_yet_valid"
	ReasonNameMismatch            = "name_mismatch"
	// ReasonChainInvalid: the chain reaches the identified root and is
	// within its dates and names, yet does not verify with that root as the
	// only trusted one (key usage, basic constraints, path length, ...).
	ReasonChainInvalid = "chain_invalid"
)

// browserErrors says what a user who had installed the interception root
// (anchor, -1 when the evidence does not single one out) would still have
// seen at time at. When the root is known and the chain has a leaf, the
// leaf is verified with that root as the only trusted root; if that
// succeeds there is no error. Otherwise the reasons come from explicit
// checks along the path from the leaf towards the root: validity dates of
// the leaf and of each intermediate on it, and the leaf's names. A path
// that stops short of the root (an intermediate not presented, as in OONI
// records that keep one certificate) is not itself a reason: the browser
// may have had the intermediate, and the probe cannot tell.
func (v *view) browserErrors(anchor int, serverName string, at time.Time) []string {
	reasons := []string{}
	if anchor >= 0 && v.leaf != nil && v.leaf.withheld == nil && v.verifyWithRoot(anchor, serverName, at) == nil {
		return reasons
	}
	add := func(r string) {
		if !slices.Contains(reasons, r) {
			reasons = append(reasons, r)
		}
	}
	path, reached := v.path(anchor, at)
	for _, e := range path {
		if e.root >= 0 {
			continue
		}
		isLeaf := e == v.leaf
		switch {
		case at.Before(e.cert.NotBefore) && isLeaf:
			add(ReasonLeafNotYetValid)
		case at.Before(e.cert.NotBefore):
			add(ReasonIntermediateNotYetValid)
		case at.After(e.cert.NotAfter) && isLeaf:
			add(ReasonLeafExpired)
		case at.After(e.cert.NotAfter):
			add(ReasonIntermediateExpired)
		}
	}
	// A withheld leaf's names were not kept: not judged.
	if v.leaf != nil && v.leaf.withheld == nil && serverName != "" && v.leaf.cert.VerifyHostname(serverName) != nil {
		add(ReasonNameMismatch)
	}
	if len(reasons) == 0 && anchor >= 0 && v.leaf != nil && v.leaf.withheld == nil && reached {
		add(ReasonChainInvalid)
	}
	return reasons
}

// verifyWithRoot verifies the leaf with the known root anchor as the only
// trusted root.
func (v *view) verifyWithRoot(anchor int, serverName string, at time.Time) error {
	roots := x509.NewCertPool()
	roots.AddCert(v.kb.roots[anchor].Cert)
	inter := x509.NewCertPool()
	for _, e := range v.entries {
		if e != v.leaf && !e.dup && e.withheld == nil {
			inter.AddCert(e.cert)
		}
	}
	_, err := v.leaf.cert.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		DNSName:       serverName,
		CurrentTime:   at,
	})
	return err
}

// path follows issuers from the leaf (or, without a leaf, from the first
// presented certificate that is not a known root) through the presented
// certificates, by signature, until a certificate signed by a known root,
// a known root, or no parent. reached reports whether it ended at anchor.
func (v *view) path(anchor int, at time.Time) (path []*entry, reached bool) {
	cur := v.leaf
	if cur == nil {
		for _, e := range v.entries {
			if !e.dup && e.root < 0 {
				cur = e
				break
			}
		}
	}
	inPath := map[*entry]bool{}
	for cur != nil {
		path = append(path, cur)
		inPath[cur] = true
		if cur.root >= 0 {
			return path, cur.root == anchor
		}
		if cur.signer >= 0 {
			return path, cur.signer == anchor
		}
		cur = v.presentedParent(cur, inPath, at)
	}
	return path, false
}

// presentedParent returns the presented certificate whose key verifies
// e's signature. Candidates are those named by e's authority key id or
// issuer name, the key id matches first and, among equals, those valid at
// at first, so that a valid copy of an intermediate wins over an expired
// one with the same name.
func (v *view) presentedParent(e *entry, inPath map[*entry]bool, at time.Time) *entry {
	type cand struct {
		p          *entry
		aki, valid bool
	}
	if e.withheld != nil {
		return nil // no signature to check
	}
	var cands []cand
	aki := e.cert.AuthorityKeyId
	for _, p := range v.entries {
		if p.dup || inPath[p] || p.sha256 == e.sha256 || p.withheld != nil {
			continue
		}
		akiMatch := len(aki) > 0 && bytes.Equal(aki, p.cert.SubjectKeyId)
		if akiMatch || bytes.Equal(e.cert.RawIssuer, p.cert.RawSubject) || e.issuer == p.subject {
			cands = append(cands, cand{p, akiMatch, validAt(p.cert, at)})
		}
	}
	score := func(c cand) int {
		s := 0
		if c.aki {
			s -= 2
		}
		if c.valid {
			s--
		}
		return s
	}
	slices.SortStableFunc(cands, func(a, b cand) int { return score(a) - score(b) })
	for _, c := range cands {
		if !v.spend() {
			return nil
		}
		if c.p.cert.CheckSignature(e.cert.SignatureAlgorithm, e.cert.RawTBSCertificate, e.cert.Signature) == nil {
			return c.p
		}
	}
	return nil
}
