package measurement

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"kzprobe/probe/chain"
)

// TestBase64BytesJSON: a DNS raw_response is written as df-002 writes it,
// a plain base64 string, and read from that and from the {"data",
// "format"} object of records before format 0.2.0.
func TestBase64BytesJSON(t *testing.T) {
	in := Base64Bytes{0, 1, 2, 0xff}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `"AAEC/w=="`; got != want {
		t.Errorf("marshal = %s; want %s", got, want)
	}
	if b, _ := json.Marshal(Base64Bytes(nil)); string(b) != "null" {
		t.Errorf("marshal nil = %s; want null", b)
	}
	for _, tc := range []struct {
		in      string
		want    Base64Bytes
		wantErr bool
	}{
		{in: `"AAEC/w=="`, want: in},
		{in: `{"data":"AAEC/w==","format":"base64"}`, want: in},
		{in: `null`, want: nil},
		{in: `{"data":"AA==","format":"hex"}`, wantErr: true},
		{in: `"not base64!"`, wantErr: true},
		{in: `42`, wantErr: true},
	} {
		var out Base64Bytes
		err := json.Unmarshal([]byte(tc.in), &out)
		if (err != nil) != tc.wantErr || !bytes.Equal(out, tc.want) {
			t.Errorf("unmarshal %s = %v, %v; want %v (error %v)", tc.in, out, err, tc.want, tc.wantErr)
		}
	}
}

// interceptionAt is a judgement whose chain leads to the root named name.
func interceptionAt(name string) *chain.Judgement {
	return &chain.Judgement{ServerName: "x.example", Certificates: []chain.CertInfo{}, ParseErrors: []string{},
		Interception: &chain.Interception{Evidence: chain.EvidenceSignature, RootName: name, RootSHA1: "ab12",
			Rules: []string{}, Intermediates: []chain.Intermediate{}, BrowserErrorReasons: []string{}}}
}

// TestSetInterception: the strongest finding is recorded as the index of
// the first chain that holds it, and a finding no chain holds is not
// recorded at all.
func TestSetInterception(t *testing.T) {
	a, b := interceptionAt("A"), interceptionAt("B")
	tk := TestKeys{Chains: []*chain.Judgement{nil, a, b, b}}
	for _, tc := range []struct {
		name string
		in   *chain.Interception
		want *int
	}{
		{"second chain", a.Interception, ptr(1)},
		{"shared judgement: first holder", b.Interception, ptr(2)},
		{"none", nil, nil},
		{"held by no chain", interceptionAt("A").Interception, nil},
	} {
		tk.SetInterception(tc.in)
		if !cmp.Equal(tk.InterceptionChain, tc.want) || (tc.want == nil) != (tk.Interception == nil) {
			t.Errorf("%s: interception_chain %v, interception %v; want %v", tc.name, deref(tk.InterceptionChain), tk.Interception, deref(tc.want))
		}
		if tc.want != nil && tk.Interception != tk.Chains[*tc.want].Interception {
			t.Errorf("%s: Interception is not chain %d's finding", tc.name, *tc.want)
		}
	}
}

func ptr(i int) *int { return &i }

func deref(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

// TestTestKeysInterceptionJSON: the strongest finding is written once, in
// its chain, with interception_chain naming it; it is read back from
// that, and from the second copy (test_keys.interception) of records
// before format 0.2.0.
func TestTestKeysInterceptionJSON(t *testing.T) {
	b := interceptionAt("B")
	chains := mustJSON(t, []*chain.Judgement{nil, interceptionAt("A"), b})
	oldB := mustJSON(t, b.Interception)
	for _, tc := range []struct {
		name      string
		json      string
		wantRoot  string // "" for none
		wantChain *int
		wantErr   string
	}{
		{name: "0.2.0", json: `{"chains":` + chains + `,"interception_chain":2}`, wantRoot: "B", wantChain: ptr(2)},
		{name: "0.2.0 none", json: `{"chains":` + chains + `,"interception_chain":null}`},
		{name: "0.1.0", json: `{"chains":` + chains + `,"interception":` + oldB + `}`, wantRoot: "B", wantChain: ptr(2)},
		{name: "0.1.0 none", json: `{"chains":` + chains + `,"interception":null}`},
		{name: "0.1.0 finding in no chain", json: `{"chains":[],"interception":` + oldB + `}`, wantRoot: "B"},
		{name: "index out of range", json: `{"chains":` + chains + `,"interception_chain":3}`, wantErr: "names no chain"},
		{name: "index at a null chain", json: `{"chains":` + chains + `,"interception_chain":0}`, wantErr: "names no chain"},
		{name: "negative index", json: `{"chains":` + chains + `,"interception_chain":-1}`, wantErr: "names no chain"},
	} {
		var tk TestKeys
		err := json.Unmarshal([]byte(tc.json), &tk)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: error %v; want one saying %q", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		root := ""
		if tk.Interception != nil {
			root = tk.Interception.RootName
		}
		if root != tc.wantRoot || !cmp.Equal(tk.InterceptionChain, tc.wantChain) {
			t.Errorf("%s: interception %q at chain %v; want %q at %v", tc.name, root, deref(tk.InterceptionChain), tc.wantRoot, deref(tc.wantChain))
		}
	}
}

// TestWriteOneInterception writes a record whose two handshakes presented
// the same intercepted chain: the finding is in the chains and nowhere
// else, and it reads back.
func TestWriteOneInterception(t *testing.T) {
	j := interceptionAt("Information Security Certification Authority")
	m := sampleMeasurement("x.example")
	m.TestKeys.Chains = []*chain.Judgement{j, j}
	m.TestKeys.SetInterception(chain.Strongest(m.TestKeys.Chains))
	var buf bytes.Buffer
	if err := NewWriter(&buf, -1).Write(m); err != nil {
		t.Fatal(err)
	}
	var raw struct {
		TestKeys map[string]json.RawMessage `json:"test_keys"`
	}
	if err := json.Unmarshal(buf.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	if _, ok := raw.TestKeys["interception"]; ok {
		t.Error("test_keys.interception written: a second copy of the chain's finding")
	}
	if got := string(raw.TestKeys["interception_chain"]); got != "0" {
		t.Errorf("interception_chain = %s; want 0", got)
	}
	var back *Measurement
	if _, err := ReadJSONL(&buf, func(m *Measurement) error { back = m; return nil }); err != nil || back == nil {
		t.Fatalf("read back: %v", err)
	}
	if d := cmp.Diff(j.Interception, back.TestKeys.Interception); d != "" {
		t.Errorf("interception read back (-want +got):\n%s", d)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// FuzzTestKeysJSON: whatever test_keys decode, Interception is the finding
// of the chain interception_chain names, and writing and reading them
// again keeps it.
func FuzzTestKeysJSON(f *testing.F) {
	chains := `[null,{"interception":{"evidence":"signature","root_name":"A"}}]`
	f.Add([]byte(`{"chains":` + chains + `,"interception_chain":1}`))
	f.Add([]byte(`{"chains":` + chains + `,"interception":{"evidence":"signature","root_name":"A"}}`))
	f.Add([]byte(`{"chains":` + chains + `,"interception_chain":7}`))
	f.Add([]byte(`{"queries":[{"raw_response":"AAEC","rcode":3}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var tk TestKeys
		if json.Unmarshal(data, &tk) != nil {
			return
		}
		if i := tk.InterceptionChain; i != nil && tk.Interception != tk.Chains[*i].Interception {
			t.Fatalf("interception_chain %d: Interception is not that chain's finding", *i)
		}
		b, err := json.Marshal(&tk)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		var again TestKeys
		if err := json.Unmarshal(b, &again); err != nil {
			t.Fatalf("reading %s: %v", b, err)
		}
		if tk.InterceptionChain != nil && !cmp.Equal(tk.Interception, again.Interception) {
			t.Fatalf("interception changed on a round trip:\n%s", cmp.Diff(tk.Interception, again.Interception))
		}
	})
}
