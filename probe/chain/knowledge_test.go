package chain

import (
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// sourcesFacts is the table "All 10 certificates" of roots/SOURCES.md
// (Chromium's blocklist, checked with openssl), with subjects as Go prints
// them. Every embedded root must match it, and every row must be embedded.
var sourcesFacts = []struct {
	file, subject, serialHex, notBefore, notAfter string
	sha1, sha256, spkiSHA256, ski                 string
}{
	{
		file:       "qaznet-trust-network_20160202054100-2046_5811835eefaa2028835ab955da6829bf043a756d.pem",
		subject:    "CN=Qaznet Trust Network,C=KZ",
		serialHex:  "3D957FCA1F8C0FC8692C01994EB55231035B9DF1",
		notBefore:  "2016-02-02 05:41:00",
		notAfter:   "2046-02-02 05:41:00",
		sha1:       "5811835eefaa2028835ab955da6829bf043a756d",
		sha256:     "00309c736dd661da6f1eb24173aa849944c168a43a15bffd192eecfdb6f8dbd2",
		spkiSHA256: "b5ba8dd7f89564c2889d3d6453c84998c77824919b64ea0835aa62986591be50",
		ski:        "F494BFDE50B6DB6B243D9EF7BE3AAE36D7FB0E05",
	},
	{
		file:       "isca-ca_20200228040803-2040_ee45853e5c81db8fdbb7f92c18b20972c744911c.pem",
		subject:    "CN=Information Security Certification Authority CA,O=ISCA,C=KZ",
		serialHex:  "287DCE0CE3C6F7AAA33FF965E76EA98C824A59DB",
		notBefore:  "2020-02-28 04:08:03",
		notAfter:   "2040-02-28 04:08:03",
		sha1:       "ee45853e5c81db8fdbb7f92c18b20972c744911c",
		sha256:     "61c0fc2e38b5b6f9071b42cee54a9013d858b6697c68b460948551b3249576a1",
		spkiSHA256: "8e12d0cb3b7df3ea2257579489fd8658c95603ea6cf4b73163a41eb7b7e93fee",
		ski:        "A87DCE0CE3C6F7AAA33FF965E76EA98C824A59DB",
	},
	{
		file:       "isca_20200228053951-2050_ea5d093c312e1a516937e153c06c2d82127b47d6.pem",
		subject:    "CN=Information Security Certification Authority,O=ISCA,C=KZ",
		serialHex:  "451D3270968C19997CF2E4E3B97708EFE276F318",
		notBefore:  "2020-02-28 05:39:51",
		notAfter:   "2050-02-28 05:39:51",
		sha1:       "ea5d093c312e1a516937e153c06c2d82127b47d6",
		sha256:     "c530fadc9bfa265e63b755cc6ee04c2d70d60bb916ce2f331dc7359362571b25",
		spkiSHA256: "02a95f43431019e9dc225f05f419330190deb4a3f1869caac9842b403dcbee77",
		ski:        "C51D3270968C19997CF2E4E3B97708EFE276F318",
	},
	{
		file:       "isca_20200228061640-2050_1375ebdcf56359aae0423e861ac8fc6231511ce6.pem",
		subject:    "CN=Information Security Certification Authority,O=ISCA,C=KZ",
		serialHex:  "320412DF4C2FB102F3980CAA76BA610AE62C8492",
		notBefore:  "2020-02-28 06:16:40",
		notAfter:   "2050-02-28 06:16:40",
		sha1:       "1375ebdcf56359aae0423e861ac8fc6231511ce6",
		sha256:     "89107c8e50e029b7b5f4ff0ccd2956bcc9d0c8ba2bfb6a58374ed63a6b034a30",
		spkiSHA256: "8928c59398b0f171c0f96fdae6ab8dd0f48ee06d174da10c404ac00143c7a749",
		ski:        "B20412DF4C2FB102F3980CAA76BA610AE62C8492",
	},
	{
		file:       "isca_20200228063037-2040_bd36c412740f799dad39e9a6450ddccd099e93d9.pem",
		subject:    "CN=Information Security Certification Authority,O=ISCA,C=KZ",
		serialHex:  "5877D30C6F0F3C367F8C34F286FDA52843BBB9F3",
		notBefore:  "2020-02-28 06:30:37",
		notAfter:   "2040-02-28 06:30:37",
		sha1:       "bd36c412740f799dad39e9a6450ddccd099e93d9",
		sha256:     "06fd20629c143b9eab28d2799caefc5d23fde267d16c631e3f5b8b4bab3f68e6",
		spkiSHA256: "e47c5cd2dc8babb4e53f8a4983920275ef6ffaacb089e87a2c1fbe5a585f05ed",
		ski:        "D877D30C6F0F3C367F8C34F286FDA52843BBB9F3",
	},
	{
		file:       "isca_20200228064338-2040_cf8544570afef0ad517e5ea8c90459e7c1cbb29e.pem",
		subject:    "CN=Information Security Certification Authority,O=ISCA,C=KZ",
		serialHex:  "7BC4B832F3A5C223EAB091B6DA6BF84F710B4240",
		notBefore:  "2020-02-28 06:43:38",
		notAfter:   "2040-02-28 06:43:38",
		sha1:       "cf8544570afef0ad517e5ea8c90459e7c1cbb29e",
		sha256:     "1df696f021ab1c3ace9a376b07ed7256a40214cd3396d7934087614924e2d7ef",
		spkiSHA256: "b13fa2e6131a888a01f3d62056fb0efbe999eb6b6e14927613e02ba8b8fb046e",
		ski:        "7BC4B832F3A5C223EAB091B6DA6BF84F710B4240",
	},
	{
		file:       "isca_20200228064602-2040_fabda72fa1f620c160420a496194b61f82a01b4a.pem",
		subject:    "CN=Information Security Certification Authority,O=ISCA,C=KZ",
		serialHex:  "254498FCAADD96DE5181472ED07B163FF79E6AD3",
		notBefore:  "2020-02-28 06:46:02",
		notAfter:   "2040-02-28 06:46:02",
		sha1:       "fabda72fa1f620c160420a496194b61f82a01b4a",
		sha256:     "0bd39de4793cdc117138f47708aa4d583acf67adb059a0d91f668d1803bf6489",
		spkiSHA256: "39736588b94a4ce767f731cad53f4cbe44137e321eadcaef8ce79a229bbca989",
		ski:        "254498FCAADD96DE5181472ED07B163FF79E6AD3",
	},
	{
		file:       "isca_20200228064823-2040_a02f7a63a91f871029613ae880875fdc867bd03f.pem",
		subject:    "CN=Information Security Certification Authority,O=ISCA,C=KZ",
		serialHex:  "1089FC3F19C903F3839BCF70B97DC7CFAAD3D4DD",
		notBefore:  "2020-02-28 06:48:23",
		notAfter:   "2040-02-28 06:48:23",
		sha1:       "a02f7a63a91f871029613ae880875fdc867bd03f",
		sha256:     "c95c133b68319ee516b5f41e377f589878af1556567cc2834ef03b1d10830fd3",
		spkiSHA256: "ea12705de7c48f6fcce2cb8dbc542e0fc38ac38e08880dd04a02ef67c93ae135",
		ski:        "9089FC3F19C903F3839BCF70B97DC7CFAAD3D4DD",
	},
	{
		file:       "isca_20200228070441-2050_bfd7f531eca8e3d65b4738167b160b7a95a8d894.pem",
		subject:    "CN=Information Security Certification Authority,O=ISCA,C=KZ",
		serialHex:  "6C47089C34A88E43DDE0DEE30661558DA9CB2E70",
		notBefore:  "2020-02-28 07:04:41",
		notAfter:   "2050-02-28 07:04:41",
		sha1:       "bfd7f531eca8e3d65b4738167b160b7a95a8d894",
		sha256:     "235150de7df7db2e538d461bc4d210c4e0819be2c4c76969476e3cbe67b723dd",
		spkiSHA256: "3472e4f16c570e0dd388aaaa4a64a34a4b939f1ca770996b5be0037c1aded9c1",
		ski:        "EC47089C34A88E43DDE0DEE30661558DA9CB2E70",
	},
	{
		file:       "isca-nur-sultan_20210428131800-2031_1ccf8c5b25dad7245226f334d69e530e131c0ce6.pem",
		subject:    "CN=Information Security Certification Authority,O=ISCA,L=Nur-Sultan,ST=Nur-Sultan,C=KZ",
		serialHex:  "2309498E297C5FFE",
		notBefore:  "2021-04-28 13:18:00",
		notAfter:   "2031-04-28 13:18:00",
		sha1:       "1ccf8c5b25dad7245226f334d69e530e131c0ce6",
		sha256:     "0230a604d99220e5612ee7862ab9f7a6e18e4f1ac4c9e27075788cc5220169ab",
		spkiSHA256: "c56217b7a828c7341c0ae7a590d8790d4def536652e60ae5b8bdfa26978fe09c",
		ski:        "267E997CCD7B8E88AC3DA972CBD4B5625D2B0D6A",
	},
}

// reportRootFacts are the roots of the OONI 2024 report, as the report and
// its facts as data (report-facts.json) give them: SHA-1, decimal serial and
// validity (UTC).
var reportRootFacts = []struct{ sha1, serial, notBefore, notAfter string }{
	{"fabda72fa1f620c160420a496194b61f82a01b4a", "212762436239719553268722926518842178639864163027", "2020-02-28 06:46:02", "2040-02-28 06:46:02"},
	{"ea5d093c312e1a516937e153c06c2d82127b47d6", "394571478723635638549382697435194886177070445336", "2020-02-28 05:39:51", "2050-02-28 05:39:51"},
	{"1375ebdcf56359aae0423e861ac8fc6231511ce6", "285540385527369649610289916863209926796774245522", "2020-02-28 06:16:40", "2050-02-28 06:16:40"},
	{"bfd7f531eca8e3d65b4738167b160b7a95a8d894", "618155106210402083740770170610017403616935751280", "2020-02-28 07:04:41", "2050-02-28 07:04:41"},
}

// reportIntermediateFacts are the seven intermediates of the report (SHA-1,
// serial, not before, not after, signing root or "unknown").
var reportIntermediateFacts = []KnownIntermediate{
	{SHA1: "c0e15a945595372030f0d45938ebb6081bb39fb5", Serial: "542829070264121061358597976201233251364726286334", NotBefore: factAt("2021-06-18 12:54:34"), NotAfter: factAt("2021-09-01 12:54:34"), SignerRootSHA1: "fabda72fa1f620c160420a496194b61f82a01b4a"},
	{SHA1: "90f9aa29195ecbfbf2c943ab1d5102f3ec84a68c", Serial: "600636309019776433832878055409971857043873967144", NotBefore: factAt("2021-08-19 12:39:14"), NotAfter: factAt("2021-11-02 12:39:14"), SignerRootSHA1: SignerUnknown},
	{SHA1: "8634ecaefb5d02463d2a9ce42178001154752561", Serial: "293697198316360729812453916520636458008892047728", NotBefore: factAt("2023-08-09 06:33:35"), NotAfter: factAt("2023-10-23 06:33:35"), SignerRootSHA1: "ea5d093c312e1a516937e153c06c2d82127b47d6"},
	{SHA1: "cb074692a22395fa615a89a86d877c9abc034867", Serial: "203432698505598047390349427507107109607746033885", NotBefore: factAt("2023-11-02 09:03:07"), NotAfter: factAt("2024-01-16 09:03:07"), SignerRootSHA1: "ea5d093c312e1a516937e153c06c2d82127b47d6"},
	{SHA1: "dfcd9dcb64edd86e333ad6247e2deda7dcf10ebd", Serial: "621829445753241691614495298860851878603068917060", NotBefore: factAt("2023-11-28 11:24:53"), NotAfter: factAt("2024-02-11 11:24:53"), SignerRootSHA1: "1375ebdcf56359aae0423e861ac8fc6231511ce6"},
	{SHA1: "5d54c6afa4fd4685359875595565ae9f8caab914", Serial: "499633659418679795571951434192241531137344178316", NotBefore: factAt("2024-03-20 05:50:15"), NotAfter: factAt("2024-06-03 05:50:15"), SignerRootSHA1: SignerUnknown},
	{SHA1: "76e9f2a52c149586be8f389d8a71ac41d3f423d1", Serial: "414124517712191942334357388114692622770498879745", NotBefore: factAt("2024-08-23 10:46:59"), NotAfter: factAt("2024-11-06 10:46:59"), SignerRootSHA1: "bfd7f531eca8e3d65b4738167b160b7a95a8d894"},
}

func factAt(s string) time.Time {
	t, err := time.Parse(factTime, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestDefaultRootsMatchSources(t *testing.T) {
	t.Parallel()
	kb, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	roots := kb.Roots()
	if got, want := len(roots), len(sourcesFacts); got != want {
		t.Errorf("got %d embedded roots; want %d", got, want)
	}
	for _, f := range sourcesFacts {
		t.Run(f.sha1[:8], func(t *testing.T) {
			r, ok := kb.RootBySHA1(f.sha1)
			if !ok {
				t.Fatalf("root %s (%s) not embedded", f.sha1, f.file)
			}
			serial, ok := new(big.Int).SetString(f.serialHex, 16)
			if !ok {
				t.Fatalf("bad serial in table: %s", f.serialHex)
			}
			got := map[string]string{
				"source":     r.Source,
				"subject":    r.Subject,
				"serial":     r.Cert.SerialNumber.String(),
				"not_before": r.NotBefore.Format(factTime),
				"not_after":  r.NotAfter.Format(factTime),
				"sha1":       r.SHA1,
				"sha256":     r.SHA256,
				"spki":       r.SPKISHA256,
				"ski":        r.SubjectKeyID,
				"self":       errString(r.Cert.CheckSignatureFrom(r.Cert)),
			}
			want := map[string]string{
				"source":     "embedded:roots/" + f.file,
				"subject":    f.subject,
				"serial":     serial.String(),
				"not_before": f.notBefore,
				"not_after":  f.notAfter,
				"sha1":       f.sha1,
				"sha256":     f.sha256,
				"spki":       f.spkiSHA256,
				"ski":        strings.ToLower(f.ski),
				"self":       "",
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("root %s (-want +got):\n%s", f.file, d)
			}
			if r.NotBefore.Location() != time.UTC || r.NotAfter.Location() != time.UTC {
				t.Errorf("validity not in UTC: %v, %v", r.NotBefore, r.NotAfter)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestDefaultRootsMatchReport(t *testing.T) {
	t.Parallel()
	kb, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range reportRootFacts {
		r, ok := kb.RootBySHA1(f.sha1)
		if !ok {
			t.Errorf("report root %s not embedded", f.sha1)
			continue
		}
		got := []string{r.Cert.SerialNumber.String(), r.NotBefore.Format(factTime), r.NotAfter.Format(factTime), r.Name}
		want := []string{f.serial, f.notBefore, f.notAfter, ISCACommonName}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("root %s (-want +got):\n%s", f.sha1, d)
		}
	}
}

func TestDefaultIntermediatesMatchReport(t *testing.T) {
	t.Parallel()
	kb, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	got := kb.Intermediates()
	for i := range got {
		got[i].SeenIn = "" // not among the facts above
	}
	if d := cmp.Diff(reportIntermediateFacts, got); d != "" {
		t.Errorf("intermediates (-want +got):\n%s", d)
	}
	for _, in := range got {
		if in.SignerRootSHA1 == SignerUnknown {
			continue
		}
		if _, ok := kb.RootBySHA1(in.SignerRootSHA1); !ok {
			t.Errorf("intermediate %s: signer %s is not an embedded root", in.SHA1, in.SignerRootSHA1)
		}
		if d := in.NotAfter.Sub(in.NotBefore); d != 75*24*time.Hour {
			t.Errorf("intermediate %s: lifetime %v; want 75 days", in.SHA1, d)
		}
	}
}

func TestLookupNormalizesHex(t *testing.T) {
	t.Parallel()
	kb, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := kb.RootBySHA1("FA:BD:A7:2F:A1:F6:20:C1:60:42:0A:49:61:94:B6:1F:82:A0:1B:4A"); !ok || r.SHA1 != realISCA {
		t.Errorf("RootBySHA1(colon upper) = %q, %v; want %s, true", r.SHA1, ok, realISCA)
	}
	if in, ok := kb.IntermediateBySHA1(" 76E9F2A52C149586BE8F389D8A71AC41D3F423D1 "); !ok || in.SignerRootSHA1 != "bfd7f531eca8e3d65b4738167b160b7a95a8d894" {
		t.Errorf("IntermediateBySHA1 = %+v, %v", in, ok)
	}
	if _, ok := kb.RootBySHA1("0000000000000000000000000000000000000000"); ok {
		t.Error("RootBySHA1(zeros) found a root")
	}
}

func TestAddRootsPEM(t *testing.T) {
	t.Parallel()
	root := mint(t, certOpts{rawSubject: realSubject(t, realISCA), ca: true}, nil)
	other := mint(t, certOpts{name: "Example Interception Root", ca: true}, nil)

	kb1, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	bundle := append(append(root.PEM(), []byte("junk between blocks\n-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")...), other.PEM()...)
	n, err := kb1.AddRootsPEM(bundle, "lab.pem")
	if err != nil || n != 2 {
		t.Fatalf("AddRootsPEM = %d, %v; want 2, nil", n, err)
	}
	if n, err := kb1.AddRootsPEM(root.PEM(), "again.pem"); err != nil || n != 0 {
		t.Errorf("AddRootsPEM(duplicate) = %d, %v; want 0, nil", n, err)
	}
	r, ok := kb1.RootBySHA1(hexSHA1(root.DER))
	if !ok || r.Source != "lab.pem" || r.Name != ISCACommonName || r.Cert == nil {
		t.Errorf("added root = %+v, %v", r, ok)
	}
	if got := len(kb1.Roots()); got != 12 {
		t.Errorf("after adding: %d roots; want 12", got)
	}

	// Another knowledge base is not affected.
	kb2, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if got := len(kb2.Roots()); got != 10 {
		t.Errorf("fresh Default: %d roots; want 10", got)
	}
	if _, ok := kb2.RootBySHA1(hexSHA1(root.DER)); ok {
		t.Error("fresh Default knows a root added to another knowledge base")
	}

	// Bad input adds nothing.
	if _, err := kb2.AddRootsPEM([]byte("not pem"), "empty.pem"); !errors.Is(err, ErrNoCertificates) {
		t.Errorf("AddRootsPEM(no PEM) error = %v; want ErrNoCertificates", err)
	}
	bad := append(root.PEM(), []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")...)
	if n, err := kb2.AddRootsPEM(bad, "bad.pem"); err == nil || n != 0 || !strings.Contains(err.Error(), "bad.pem") {
		t.Errorf("AddRootsPEM(bad block) = %d, %v; want 0 and an error naming bad.pem", n, err)
	}
	if got := len(kb2.Roots()); got != 10 {
		t.Errorf("after failed adds: %d roots; want 10", got)
	}
}

func TestRulesAreNamed(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, r := range Rules() {
		if r.Name == "" || r.Description == "" || r.match == nil {
			t.Errorf("rule %+v is incomplete", r)
		}
		if seen[r.Name] {
			t.Errorf("rule %s listed twice", r.Name)
		}
		seen[r.Name] = true
	}
	for _, name := range []string{RuleISCAIssuerName, RuleQaznetIssuerName, RuleQaznet2019Forgery} {
		if !seen[name] {
			t.Errorf("rule %s missing", name)
		}
	}
}

// TestRealRootNames: every embedded root carries one of the names the rules
// know, so issuer-name evidence covers the whole real PKI.
func TestRealRootNames(t *testing.T) {
	t.Parallel()
	kb, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range kb.Roots() {
		if !isISCAName(r.Cert.Subject) && r.Cert.Subject.CommonName != QaznetCommonName {
			t.Errorf("root %s: subject %q matches no ISCA or Qaznet name", r.SHA1, r.Subject)
		}
	}
}
