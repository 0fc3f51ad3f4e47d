package main

import (
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"kzprobe/measurement"
)

// TestReleaseBinaryOneVersion builds the host's release binary with
// scripts/release.sh and a stamped version, and checks that the one
// string is what --version prints alone, what `kzprobe version` names,
// what every record of a real run says in software_version, and that the
// binary is static and trimmed as the script promises. The run writes to
// its default output name, in a folder of its own.
func TestReleaseBinaryOneVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a release binary")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("scripts/release.sh needs bash")
	}
	const stamped = "v9.8.7-rc.1+test"
	dist := t.TempDir()
	target := runtime.GOOS + "/" + runtime.GOARCH
	script := exec.Command("bash", filepath.Join("..", "..", "scripts", "release.sh"),
		"--version", stamped, "--out", dist, "--targets", target, "--allow-dirty")
	if out, err := script.CombinedOutput(); err != nil {
		t.Fatalf("release.sh: %v\n%s", err, out)
	}
	name := "kzprobe-" + runtime.GOOS + "-" + runtime.GOARCH
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	bin := filepath.Join(dist, name)

	t.Run("--version", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(bin, "--version")
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%v\n%s", err, stderr.String())
		}
		if got := stdout.String(); got != stamped+"\n" {
			t.Errorf("--version printed %q; want exactly %q", got, stamped+"\n")
		}
		if stderr.Len() != 0 {
			t.Errorf("--version wrote to stderr: %q", stderr.String())
		}
	})

	t.Run("version command", func(t *testing.T) {
		out, err := exec.Command(bin, "version").Output()
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("kzprobe %s (test %s %s)\n", stamped, measurement.TestName, measurement.TestVersion)
		if string(out) != want {
			t.Errorf("version printed %q; want %q", out, want)
		}
	})

	t.Run("build information", func(t *testing.T) {
		bi, err := buildinfo.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		settings := map[string]string{}
		for _, s := range bi.Settings {
			settings[s.Key] = s.Value
		}
		for key, want := range map[string]string{
			"CGO_ENABLED": "0", "-trimpath": "true", "GOOS": runtime.GOOS, "GOARCH": runtime.GOARCH,
		} {
			if settings[key] != want {
				t.Errorf("build setting %s = %q; want %q", key, settings[key], want)
			}
		}
		if _, ok := settings["vcs.revision"]; ok {
			t.Errorf("vcs.revision recorded; -buildvcs=false keeps the bytes independent of the checkout")
		}
	})

	t.Run("SHA256SUMS", func(t *testing.T) {
		sums, err := os.ReadFile(filepath.Join(dist, "SHA256SUMS"))
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		// The format sha256sum -c and shasum -a 256 -c read: hash, two
		// spaces, file name.
		want := hex.EncodeToString(sum[:]) + "  " + name + "\n"
		if string(sums) != want {
			t.Errorf("SHA256SUMS = %q; want %q", sums, want)
		}
	})

	t.Run("records", func(t *testing.T) {
		l, args := slowLab(t, 3, 0)
		dir := t.TempDir()
		before := time.Now().UTC().Truncate(time.Second)
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir // no -o: the default output name, here
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("run: %v\n%s", err, out)
		}
		after := time.Now().UTC()
		files, _ := filepath.Glob(filepath.Join(dir, "measurements-*.jsonl"))
		if len(files) != 1 {
			t.Fatalf("want one measurements-*.jsonl in the run's folder; found %q", files)
		}
		base := filepath.Base(files[0])
		at, err := time.Parse("20060102T150405Z", strings.TrimSuffix(strings.TrimPrefix(base, "measurements-"), ".jsonl"))
		if err != nil || at.Before(before) || at.After(after) {
			t.Errorf("output %s: not the run's start time in UTC (between %s and %s): %v", base, before, after, err)
		}
		f, err := os.Open(files[0])
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var versions []string
		if _, err := measurement.ReadJSONL(f, func(m *measurement.Measurement) error {
			versions = append(versions, m.SoftwareVersion)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(versions) != len(l.Scenario.Sites) {
			t.Fatalf("%d records; want %d", len(versions), len(l.Scenario.Sites))
		}
		for i, v := range versions {
			if v != stamped {
				t.Errorf("record %d: software_version = %q; want %q", i, v, stamped)
			}
		}
	})
}

// TestDefaultOutputName: the default output file is named by the run's
// UTC start time, in a form every volunteer's file system accepts (no ':'
// or other character Windows refuses) and that sorts by time.
func TestDefaultOutputName(t *testing.T) {
	almaty := time.FixedZone("Asia/Almaty", 5*3600)
	times := []time.Time{
		time.Date(2019, 7, 17, 23, 59, 59, 0, time.UTC),
		time.Date(2019, 7, 18, 5, 0, 0, 0, almaty), // 00:00:00 UTC, after the first
		time.Date(2019, 12, 31, 23, 59, 59, 999_999_999, time.UTC),
		time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2024, 2, 29, 9, 5, 3, 0, time.UTC),
		time.Date(2026, 10, 1, 12, 0, 0, 0, almaty),
		time.Date(2026, 10, 1, 7, 0, 1, 0, time.UTC),
	}
	var names []string
	for _, at := range times {
		name := defaultOutputName(at)
		names = append(names, name)
		if why := invalidOnWindows(name); why != "" {
			t.Errorf("%s: %s", name, why)
		}
		if filepath.Base(name) != name {
			t.Errorf("%s is not a plain file name", name)
		}
		stamp := strings.TrimSuffix(strings.TrimPrefix(name, "measurements-"), ".jsonl")
		back, err := time.Parse("20060102T150405Z", stamp)
		if err != nil || !back.Equal(at.Truncate(time.Second)) {
			t.Errorf("%s does not name %s in UTC: %v %v", name, at.UTC(), back, err)
		}
	}
	if got := defaultOutputName(times[0]); got != "measurements-20190717T235959Z.jsonl" {
		t.Errorf("defaultOutputName = %q", got)
	}
	if !slices.IsSorted(names) {
		t.Errorf("names of increasing times do not sort: %q", names)
	}

	// The file openOutput creates is that name, in the working folder.
	dir := t.TempDir()
	t.Chdir(dir)
	out, err := openOutput("", outputNew, times[4], nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	out.Close()
	if want := filepath.Join(dir, "measurements-20240229T090503Z.jsonl"); out.Path != want {
		t.Errorf("openOutput wrote %s; want %s", out.Path, want)
	}
	if _, err := os.Stat(out.Path); err != nil {
		t.Error(err)
	}
}

// invalidOnWindows says why name cannot be a file name on Windows, or "".
// https://learn.microsoft.com/windows/win32/fileio/naming-a-file
func invalidOnWindows(name string) string {
	for _, r := range name {
		if r < 32 || strings.ContainsRune(`<>:"/\|?*`, r) {
			return fmt.Sprintf("character %q is reserved on Windows", r)
		}
		if r > 126 {
			return fmt.Sprintf("non-ASCII character %q", r)
		}
	}
	if strings.HasSuffix(name, ".") || strings.HasSuffix(name, " ") {
		return "ends with a dot or a space"
	}
	stem := strings.ToUpper(strings.SplitN(name, ".", 2)[0])
	switch stem {
	case "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8", "COM9",
		"LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9":
		return "a reserved device name"
	}
	return ""
}

// TestInvalidOnWindows: the checker above finds what it should, including
// the RFC 3339 form a careless change would bring.
func TestInvalidOnWindows(t *testing.T) {
	for name, bad := range map[string]bool{
		"measurements-20190717T235959Z.jsonl":     false,
		"measurements-2019-07-17T23:59:59Z.jsonl": true,
		"measurements-2019-07-17 23.59.59 .jsonl": false,
		"measurements.":                   true,
		"nul.jsonl":                       true,
		"a?b":                             true,
		"measurements-2019\u202f07.jsonl": true,
		"measurements-20190717T235959.123Z.jsonl":   false,
		"measurements-20190717T235959Z.jsonl\x00.x": true,
	} {
		if got := invalidOnWindows(name) != ""; got != bad {
			t.Errorf("invalidOnWindows(%q) = %q; want invalid=%v", name, invalidOnWindows(name), bad)
		}
	}
}
