package lab

import (
	"reflect"
	"testing"
)

// FuzzParseScenario feeds arbitrary bytes to ParseScenario (the YAML of
// `kzprobe lab --scenario`). It must not panic; what it accepts must be
// valid, and survive encode and parse unchanged.
func FuzzParseScenario(f *testing.F) {
	f.Add([]byte("name: mine\nlatency: 30ms\ndns_drop: 0.25\nsites:\n  - domain: RuTracker.org.\n    tls: intercept_isca\n  - domain: gone.example\n    dns: nonexistent\n"))
	f.Add([]byte("drip_interval: 200ms\nsites:\n  - domain: d.example\n    tls: drip\n  - domain: s.example\n    dns: silent\n    expect: ok\n"))
	f.Add([]byte("sites:\n  - domain: a.example\n---\nsites: []\n"))
	f.Add([]byte("a: &a [x, x]\nsites: [*a, *a]\n"))
	f.Add([]byte("latency: 5\nsites:\n  - domain: a.example\n"))
	for _, s := range []Scenario{DefaultScenario(), HostileScenario()} {
		data, err := s.encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseScenario(data)
		if err != nil {
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("ParseScenario accepted an invalid scenario: %v", err)
		}
		enc, err := s.encode()
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		again, err := ParseScenario(enc)
		if err != nil {
			t.Fatalf("re-parsing the encoded scenario: %v\n%s", err, enc)
		}
		if !reflect.DeepEqual(s, again) {
			t.Fatalf("encode and parse changed the scenario:\n%+v\n%+v", s, again)
		}
	})
}
