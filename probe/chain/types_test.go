package chain

import (
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSerialHex compares SerialHex with what openssl 3 printed (x509
// -noout -text, "Serial Number:") for the embedded roots, and covers the
// cases the roots do not: a first byte with the high bit set (DER pads it
// with a zero byte, which openssl does not print), a short serial, zero
// and a negative one.
func TestSerialHex(t *testing.T) {
	for _, tc := range []struct {
		root string // a file under roots/, or "" for serial
		n    *big.Int
		want string
	}{
		{root: "isca-ca_20200228040803-2040_ee45853e5c81db8fdbb7f92c18b20972c744911c.pem", want: "28:7d:ce:0c:e3:c6:f7:aa:a3:3f:f9:65:e7:6e:a9:8c:82:4a:59:db"},
		{root: "isca_20200228053951-2050_ea5d093c312e1a516937e153c06c2d82127b47d6.pem", want: "45:1d:32:70:96:8c:19:99:7c:f2:e4:e3:b9:77:08:ef:e2:76:f3:18"},
		{root: "isca_20200228064823-2040_a02f7a63a91f871029613ae880875fdc867bd03f.pem", want: "10:89:fc:3f:19:c9:03:f3:83:9b:cf:70:b9:7d:c7:cf:aa:d3:d4:dd"},
		{root: "qaznet-trust-network_20160202054100-2046_5811835eefaa2028835ab955da6829bf043a756d.pem", want: "3d:95:7f:ca:1f:8c:0f:c8:69:2c:01:99:4e:b5:52:31:03:5b:9d:f1"},
		// openssl prints this 8-byte serial as "2524629941048074238 (0x2309498e297c5ffe)".
		{root: "isca-nur-sultan_20210428131800-2031_1ccf8c5b25dad7245226f334d69e530e131c0ce6.pem", want: "23:09:49:8e:29:7c:5f:fe"},
		{n: mustBig(t, "80112233445566778899aabbccddeeff0011"), want: "80:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11"},
		{n: big.NewInt(1006), want: "03:ee"},
		{n: big.NewInt(0), want: "00"},
		{n: big.NewInt(-255), want: "-ff"},
		{n: nil, want: ""},
	} {
		n := tc.n
		if tc.root != "" {
			n = rootSerial(t, tc.root)
		}
		if got := SerialHex(n); got != tc.want {
			t.Errorf("SerialHex(%v) (%s) = %q; want %q", n, tc.root, got, tc.want)
		}
	}
}

// colonHex is b in lower-case hex, a colon between bytes.
func colonHex(b []byte) string {
	h := hex.EncodeToString(b)
	var parts []string
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

func mustBig(t *testing.T, hex string) *big.Int {
	t.Helper()
	n, ok := new(big.Int).SetString(hex, 16)
	if !ok {
		t.Fatalf("bad hex %q", hex)
	}
	return n
}

func rootSerial(t *testing.T, name string) *big.Int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("roots", name))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatalf("%s: no PEM block", name)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c.SerialNumber
}
