package main

import (
	"bytes"
	"runtime/debug"
	"testing"
)

// TestVersionOf: the stamp wins, then the module version the go command
// records, then devVersion.
func TestVersionOf(t *testing.T) {
	withMain := func(v string) *debug.BuildInfo {
		return &debug.BuildInfo{Main: debug.Module{Path: "kzprobe", Version: v}}
	}
	for _, tc := range []struct {
		name    string
		stamped string
		bi      *debug.BuildInfo
		want    string
	}{
		{"stamped", "v1.2.3", withMain("v0.0.0-20260101120000-0123456789ab"), "v1.2.3"},
		{"stamped, no build info", "v1.2.3", nil, "v1.2.3"},
		{"go build from a checkout", "", withMain("v0.0.0-20260101120000-0123456789ab+dirty"), "v0.0.0-20260101120000-0123456789ab+dirty"},
		{"go build -buildvcs=false", "", withMain("(devel)"), devVersion},
		{"go test", "", withMain(""), devVersion},
		{"no build info", "", nil, devVersion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := versionOf(tc.stamped, tc.bi); got != tc.want {
				t.Errorf("versionOf(%q, ...) = %q; want %q", tc.stamped, got, tc.want)
			}
		})
	}
}

// TestVersionFlagAlone: --version prints the version and a newline,
// nothing else, the same string `kzprobe version` and the records use.
func TestVersionFlagAlone(t *testing.T) {
	root := newRootCmd()
	var stdout, stderr bytes.Buffer
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	root.SetArgs([]string{"--version"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if got, want := stdout.String(), softwareVersion()+"\n"; got != want {
		t.Errorf("--version printed %q; want %q", got, want)
	}
}
