package main

import (
	"bytes"
	"runtime/debug"
	"testing"
)

// TestVersionOf: the stamp wins, then the module version the go command
// records, then the commit it records, then devVersion.
func TestVersionOf(t *testing.T) {
	withMain := func(v string, settings ...string) *debug.BuildInfo {
		bi := &debug.BuildInfo{Main: debug.Module{Path: "kzprobe", Version: v}}
		for i := 0; i+1 < len(settings); i += 2 {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
		}
		return bi
	}
	const rev = "0123456789abcdef0123456789abcdef01234567"
	for _, tc := range []struct {
		name    string
		stamped string
		bi      *debug.BuildInfo
		want    string
	}{
		{"stamped", "v1.2.3", withMain("v1.0.0", "vcs.revision", rev), "v1.2.3"},
		{"stamped, no build info", "v1.2.3", nil, "v1.2.3"},
		{"go install of a tagged module", "", withMain("v1.0.0", "vcs.revision", rev), "v1.0.0"},
		{"go build from a checkout", "", withMain("(devel)", "vcs", "git", "vcs.revision", rev, "vcs.modified", "false"), "0.1.0-dev+0123456789ab"},
		{"go build from a modified checkout", "", withMain("(devel)", "vcs.revision", rev, "vcs.modified", "true"), "0.1.0-dev+0123456789ab.dirty"},
		{"short revision", "", withMain("(devel)", "vcs.revision", "abc"), "0.1.0-dev+abc"},
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
