package main

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"kzprobe/analysis"
	"kzprobe/lab"
	"kzprobe/measurement"
	"kzprobe/probe/chain"
)

// withheldLabRun is one `kzprobe run` over a privacy lab and what
// identifies its lab's PKI.
type withheldLabRun struct {
	out                string // the records
	root, corporate    string // the lab's ISCA and corporate roots, PEM files
	rootSHA1, corpSHA1 string
	current, expired   string // the SHA-1s of the lab's ISCA intermediates
	// more names the lab's other fingerprints and serials: the
	// intermediates' SHA-256s and serials.
	more []string
}

func sha1Hex(der []byte) string {
	s := sha1.Sum(der)
	return hex.EncodeToString(s[:])
}

// runWithheldLab runs `kzprobe run` from a lab client address over a lab
// with cfg, with extra flags, and returns the records' file.
func runWithheldLab(t *testing.T, l *lab.Lab, base []string, extra ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "m.jsonl")
	args := append(append(append([]string{}, base...), extra...), "-q", "--bind", labClient(l).String(), "-o", out)
	if code, printed := runCaptured(args); code != exitOK {
		t.Fatalf("kzprobe run: exit %d:\n%s", code, printed)
	}
	return out
}

// interceptionView is what analyze's interception tables say of one
// run, with the lab's own fingerprints replaced by names, so that runs
// over two labs (two PKIs) compare.
type interceptionView struct {
	Summary       [8]int
	Intermediates []string
	Networks      []string
	Domains       []string
}

func viewOf(t *testing.T, r withheldLabRun, res *analysis.Result) interceptionView {
	t.Helper()
	name := r.names
	s := res.Summary
	v := interceptionView{Summary: [8]int{s.Measurements, s.Handshakes, s.Intercepted, s.Intermediates,
		s.Domains, s.InterceptedDomains, s.OutsideWindow, s.GapSightings}}
	for _, im := range res.Intermediates {
		v.Intermediates = append(v.Intermediates, name(strings.Join([]string{im.SHA1, im.Subject, im.Issuer,
			im.NotAfter.Sub(im.NotBefore).String(), im.SignerRootSHA1, im.SignerRootName, im.Evidence,
			strings.Join(im.Domains, " "), strings.Join(im.Networks, " ")}, " | ")+
			" sightings "+itoa(im.Sightings)+" outside "+itoa(im.OutsideWindow)))
	}
	for _, n := range res.Networks {
		v.Networks = append(v.Networks, name(n.ASN+" "+itoa(n.Intercepted)+"/"+itoa(n.Measurements)+" "+strings.Join(n.Intermediates, ",")))
	}
	for _, d := range res.Domains {
		v.Domains = append(v.Domains, name(d.Domain+" "+itoa(d.Intercepted)+"/"+itoa(d.Measurements)+" "+strings.Join(d.Intermediates, ",")))
	}
	return v
}

// names replaces the lab's fingerprints in s by names.
func (r withheldLabRun) names(s string) string {
	return strings.NewReplacer(append([]string{r.current, "CURRENT", r.expired, "EXPIRED", r.rootSHA1, "ROOT", r.corpSHA1, "CORPORATE"}, r.more...)...).Replace(s)
}

// findings judges again, as analyze does, every handshake's chain of the
// records in r.out, with the lab's roots when withRoots, and returns per
// domain the findings: evidence, root and intermediates (fingerprints,
// names, serial, the window's length, signer), the lab's fingerprints named; and where
// the evidence came from (chain.Interception.EvidenceSource), per domain.
func findings(t *testing.T, r withheldLabRun, withRoots bool) (map[string][]string, map[string]string) {
	t.Helper()
	judge := &analysis.Judge{}
	if withRoots {
		kb, err := chain.Default()
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{r.root, r.corporate} {
			pem, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := kb.AddRootsPEM(pem, p); err != nil {
				t.Fatal(err)
			}
		}
		judge.Analyzer = chain.NewAnalyzer(nil, kb)
	}
	out, sources := map[string][]string{}, map[string]string{}
	rd := &analysis.Reader{}
	if _, err := rd.ReadPaths([]string{r.out}, func(rec *analysis.Record) error {
		hs := rec.Handshakes()
		for i := range hs {
			f := judge.HandshakeFacts(&hs[i])
			if f == nil {
				continue
			}
			if f.ParseErrors != 0 {
				t.Errorf("%s: %d certificates unparsable", rec.Domain, f.ParseErrors)
			}
			in := f.Interception
			if in == nil {
				out[rec.Domain] = append(out[rec.Domain], "none")
				continue
			}
			sources[rec.Domain] += in.EvidenceSource
			s := fmt.Sprintf("%s %s %s %v", in.Evidence, in.RootSHA1, in.RootName, in.Rules)
			for _, im := range in.Intermediates {
				// The window's length: two labs' certificates start when
				// each lab did, maybe a second apart (the same lab's runs
				// are compared window for window in rows).
				s += fmt.Sprintf(" [%s %s %s %s %s %s %s %v]", im.SHA1, im.SHA256, im.Serial, im.Subject, windowLength(t, im.NotBefore, im.NotAfter), im.SignerRootSHA1, im.SignerRootName, im.Known)
			}
			out[rec.Domain] = append(out[rec.Domain], r.names(s))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out, sources
}

// windowLength is the length of a validity window given in RFC 3339.
func windowLength(t *testing.T, notBefore, notAfter string) time.Duration {
	t.Helper()
	nb, err1 := time.Parse(time.RFC3339, notBefore)
	na, err2 := time.Parse(time.RFC3339, notAfter)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatalf("validity window %q - %q: %v", notBefore, notAfter, err)
	}
	return na.Sub(nb)
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestAnalyzeWithheldLeaves runs the real probe over a lab whose
// middlebox writes the client's address into every leaf it forges, so
// that the records withhold those leaves (privacy: --include-ip off), and reads the
// records back with `kzprobe analyze`, with and without the lab's root as
// --interception-roots: the findings, intermediates, signer roots, expiry
// and evidence are those of the same run over a lab that leaks nothing, and
// of the same lab run with --include-ip (the leaves kept). The withheld
// leaves are judged from their kept facts, never as unparsable.
func TestAnalyzeWithheldLeaves(t *testing.T) {
	clearEnv(t)
	sites := []lab.Site{
		{Domain: "intercepted.example", TLS: lab.InterceptISCA},
		{Domain: "expired.example", TLS: lab.InterceptISCAExpired},
		{Domain: "corporate.example", TLS: lab.InterceptCorporate},
		{Domain: "clean.example", TLS: lab.Pass},
	}
	start := func(echo bool) (*lab.Lab, []string, withheldLabRun) {
		l, base := privacyLab(t, lab.Config{EchoClient: echo, Scenario: lab.Scenario{Name: "withheld", Sites: sites}})
		root := ""
		for i, a := range base {
			if a == "--interception-roots" {
				root = base[i+1]
			}
		}
		if root == "" {
			t.Fatal("the lab's command line names no interception root")
		}
		// The probe takes the corporate root as an interception root too:
		// its leaves, signed by the root with no intermediate, are then
		// the evidence of their chain.
		corporate := filepath.Join(filepath.Dir(root), "corporate-root.pem")
		base = append(base, "--interception-roots", corporate)
		return l, base, withheldLabRun{root: root, corporate: corporate,
			rootSHA1: sha1Hex(l.PKI.ISCARoot.Raw), corpSHA1: sha1Hex(l.PKI.CorporateRoot.Raw),
			current: sha1Hex(l.PKI.ISCAIntermediate.Raw), expired: sha1Hex(l.PKI.ISCAExpiredIntermediate.Raw),
			more: []string{sha256Hex(l.PKI.ISCAIntermediate.Raw), "CURRENT-SHA256", sha256Hex(l.PKI.ISCAExpiredIntermediate.Raw), "EXPIRED-SHA256",
				l.PKI.ISCAIntermediate.SerialNumber.String(), "CURRENT-SERIAL", l.PKI.ISCAExpiredIntermediate.SerialNumber.String(), "EXPIRED-SERIAL"}}
	}
	plainLab, plainBase, plain := start(false)
	plain.out = runWithheldLab(t, plainLab, plainBase)
	echoLab, echoBase, withheld := start(true)
	kept := withheld
	withheld.out = runWithheldLab(t, echoLab, echoBase)
	kept.out = runWithheldLab(t, echoLab, echoBase, "--include-ip")

	// The records withhold the forged leaves (and only them).
	data, err := os.ReadFile(withheld.out)
	if err != nil {
		t.Fatal(err)
	}
	nWithheld := 0
	if _, err := measurement.ReadJSONL(strings.NewReader(string(data)), func(m *measurement.Measurement) error {
		for _, h := range m.TestKeys.TLSHandshakes {
			for _, w := range h.WithheldCertificates {
				if w.Index != 0 {
					t.Errorf("%s: certificate %d withheld; want only leaves", m.Input, w.Index)
				}
				nWithheld++
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if nWithheld == 0 {
		t.Fatal("no certificate withheld: the lab leaked no address")
	}

	for _, withRoots := range []bool{false, true} {
		name := "without roots"
		if withRoots {
			name = "with --interception-roots"
		}
		t.Run(name, func(t *testing.T) {
			analyze := func(r withheldLabRun) (*analysis.Result, interceptionView) {
				args := []string{"analyze", "--format", "json", r.out}
				if withRoots {
					args = append(args, "--interception-roots", r.root, "--interception-roots", r.corporate)
				}
				stdout, stderr, code := kzprobe(t, args...)
				if code != exitOK {
					t.Fatalf("analyze: exit %d: %s", code, stderr)
				}
				var res analysis.Result
				if err := json.Unmarshal([]byte(stdout), &res); err != nil {
					t.Fatal(err)
				}
				return &res, viewOf(t, r, &res)
			}
			pf, ps := findings(t, plain, withRoots)
			wf, ws := findings(t, withheld, withRoots)
			kf, ks := findings(t, kept, withRoots)
			if diff := cmp.Diff(pf, wf); diff != "" {
				t.Errorf("findings of the withheld leaves against a lab that leaks nothing (-plain +withheld):\n%s", diff)
			}
			if diff := cmp.Diff(kf, wf); diff != "" {
				t.Errorf("findings of the withheld leaves against the same leaves kept (-kept +withheld):\n%s", diff)
			}
			// The corporate leaf is its chain's evidence: the signature
			// the probe checked before withholding it, as recorded; the
			// other chains' evidence is their intermediates', checked.
			wantCorp, wantSources := "none", map[string]string{}
			if withRoots {
				wantCorp, wantSources = "signature CORPORATE", map[string]string{"corporate.example": chain.EvidenceRecorded}
			}
			if got := wf["corporate.example"]; len(got) == 0 || !strings.HasPrefix(got[0], wantCorp) {
				t.Errorf("corporate.example: findings %q; want %q", got, wantCorp)
			}
			for _, src := range []map[string]string{ps, ks} {
				for d, s := range src {
					if s != "" {
						t.Errorf("%s: evidence from %q with every certificate kept", d, s)
					}
				}
			}
			for d := range ws {
				if ws[d] == "" {
					delete(ws, d)
				}
			}
			if diff := cmp.Diff(wantSources, ws); diff != "" {
				t.Errorf("evidence sources of the withheld run (-want +got):\n%s", diff)
			}
			_, pv := analyze(plain)
			wres, wv := analyze(withheld)
			kres, kv := analyze(kept)
			if diff := cmp.Diff(pv, wv); diff != "" {
				t.Errorf("withheld leaves against a lab that leaks nothing (-plain +withheld):\n%s", diff)
			}
			if diff := cmp.Diff(kv, wv); diff != "" {
				t.Errorf("withheld leaves against the same leaves kept (-kept +withheld):\n%s", diff)
			}
			// The same lab's runs name the same certificates, with the
			// same windows.
			type row struct{ SHA1, SHA256, Serial, Signer, Evidence, NotBefore, NotAfter string }
			rows := func(res *analysis.Result) []row {
				var out []row
				for _, im := range res.Intermediates {
					out = append(out, row{im.SHA1, im.SHA256, im.Serial, im.SignerRootSHA1, im.Evidence,
						im.NotBefore.String(), im.NotAfter.String()})
				}
				return out
			}
			if diff := cmp.Diff(rows(kres), rows(wres)); diff != "" {
				t.Errorf("intermediates (-kept +withheld):\n%s", diff)
			}
			want := "CURRENT | CN=Information Security Certification Authority,O=ISCA,C=KZ | CN=Information Security Certification Authority,O=ISCA,C=KZ"
			if len(wv.Intermediates) != 2 || !strings.HasPrefix(wv.Intermediates[0], want) && !strings.HasPrefix(wv.Intermediates[1], want) {
				t.Errorf("intermediates %q; want the lab's current and expired ones", wv.Intermediates)
			}
			signer, evidence := "unknown", "issuer_name"
			if withRoots {
				signer, evidence = "ROOT", "signature"
			}
			for _, im := range wv.Intermediates {
				if !strings.Contains(im, " | "+signer+" | ") || !strings.Contains(im, " | "+evidence+" | ") {
					t.Errorf("intermediate %q; want signer %s, evidence %s", im, signer, evidence)
				}
			}
		})
	}
}
