package chain

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// TestSPKIPinMatchesOpenSSL pins a generated certificate and compares the
// pin with what the openssl pipeline of kzprobe sweep --help prints, in
// both of the forms it accepts.
func TestSPKIPinMatchesOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	c := mint(t, certOpts{name: "endpoint.example.test", dns: []string{"endpoint.example.test"}}, nil)
	pin, err := SPKIPin(c.DER)
	if err != nil {
		t.Fatal(err)
	}
	der := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command("openssl", "x509", "-pubkey", "-noout")
		cmd.Stdin = bytes.NewReader(c.PEM())
		pub, err := cmd.Output()
		if err != nil {
			t.Fatalf("openssl x509: %v", err)
		}
		cmd = exec.Command("openssl", "pkey", "-pubin", "-outform", "der")
		cmd.Stdin = bytes.NewReader(pub)
		spki, err := cmd.Output()
		if err != nil {
			t.Fatalf("openssl pkey: %v", err)
		}
		cmd = exec.Command("openssl", append([]string{"dgst", "-sha256"}, args...)...)
		cmd.Stdin = bytes.NewReader(spki)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("openssl dgst: %v", err)
		}
		return out
	}
	b64 := base64.StdEncoding.EncodeToString(der("-binary"))
	hexLine := strings.TrimSpace(string(der()))
	for _, s := range []string{"sha256:" + b64, "sha256:" + hexLine} {
		got, err := ParsePin(s)
		if err != nil {
			t.Fatalf("ParsePin(%q): %v", s, err)
		}
		if got != pin {
			t.Errorf("ParsePin(%q) = %s; want %s (SPKIPin)", s, got, pin)
		}
	}
}

func TestParsePin(t *testing.T) {
	sum := sha256.Sum256([]byte("kzprobe"))
	want := Pin(sum)
	b64 := base64.StdEncoding.EncodeToString(sum[:])
	hx := hex.EncodeToString(sum[:])
	colons := strings.ToUpper(hx[:2])
	for i := 2; i < len(hx); i += 2 {
		colons += ":" + strings.ToUpper(hx[i:i+2])
	}
	good := []struct{ name, in string }{
		{"canonical", want.String()},
		{"base64", "sha256:" + b64},
		{"base64 without padding", "sha256:" + strings.TrimRight(b64, "=")},
		{"base64 URL alphabet", "sha256:" + base64.URLEncoding.EncodeToString(sum[:])},
		{"curl form", "sha256//" + b64},
		{"upper-case prefix", "SHA256:" + b64},
		{"hex", "sha256:" + hx},
		{"hex with colons", "sha256:" + colons},
		{"openssl dgst line", "sha256:SHA2-256(stdin)= " + hx},
		{"blanks around", "  sha256:" + b64 + "\n"},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParsePin(tc.in)
			if err != nil {
				t.Fatalf("ParsePin(%q): %v", tc.in, err)
			}
			if got != want {
				t.Errorf("ParsePin(%q) = %s; want %s", tc.in, got, want)
			}
		})
	}
	bad := []struct{ name, in string }{
		{"empty", ""},
		{"no prefix", b64},
		{"other hash", "sha1:" + b64},
		{"short", "sha256:" + b64[:20]},
		{"hex too short", "sha256:" + hx[:62]},
		{"not base64", "sha256:%%%"},
		{"sha-512 size", "sha256:" + base64.StdEncoding.EncodeToString(make([]byte, 64))},
	}
	for _, tc := range bad {
		t.Run("bad "+tc.name, func(t *testing.T) {
			if p, err := ParsePin(tc.in); !errors.Is(err, ErrBadPin) {
				t.Errorf("ParsePin(%q) = %s, %v; want an ErrBadPin", tc.in, p, err)
			}
		})
	}
}

// FuzzParsePin: whatever ParsePin accepts, its canonical form reads back
// as the same pin.
func FuzzParsePin(f *testing.F) {
	f.Add("sha256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")
	f.Add("sha256//47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU")
	f.Add("sha256:SHA2-256(stdin)= e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
	f.Add("sha256:E3:B0:C4:42")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePin(s)
		if err != nil {
			return
		}
		back, err := ParsePin(p.String())
		if err != nil || back != p {
			t.Fatalf("ParsePin(%q) = %s, whose text reads back as %s, %v", s, p, back, err)
		}
	})
}
