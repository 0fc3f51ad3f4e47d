package main

import (
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// helpDefault is how pflag shows a default at the end of a flag's help:
// " (default X)", or nothing for a zero value.
func helpDefault(t *testing.T, d any) string {
	t.Helper()
	var v string
	switch d := d.(type) {
	case string:
		if d != "" {
			v = strconv.Quote(d)
		}
	case int:
		if d != 0 {
			v = strconv.Itoa(d)
		}
	case bool:
		if d {
			v = "true"
		}
	case time.Duration:
		if d != 0 {
			v = d.String()
		}
	case []string:
		if len(d) > 0 {
			v = "[" + strings.Join(d, ",") + "]"
		}
	default:
		t.Fatalf("default %v of type %T", d, d)
	}
	if v == "" {
		return ""
	}
	return " (default " + v + ")"
}

// helpFlag is one flag line of --help: "  -i, --input FILE   usage".
var helpFlag = regexp.MustCompile(`^\s+(?:-[a-zA-Z], )?--([a-z0-9-]+)(?: \S+)?\s{2,}(.*)$`)

// runHelp runs the real binary's `kzprobe run --help` and returns the
// help text of each flag by name.
func runHelp(t *testing.T) map[string]string {
	t.Helper()
	cmd := exec.Command(kzprobeBinary(t), "run", "--help")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")} // no KZPROBE_*: help shows built-in defaults anyway
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kzprobe run --help: %v", err)
	}
	flags := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if m := helpFlag.FindStringSubmatch(line); m != nil {
			flags[m[1]] = strings.TrimRight(m[2], " ")
		}
	}
	if len(flags) == 0 {
		t.Fatalf("no flag in kzprobe run --help:\n%s", out)
	}
	return flags
}

// TestDefaultsAgree keeps the three faces of the built-in defaults in step
// with the settings table: `kzprobe run --help` of the real binary shows
// each flag with its setting's usage and default and no flag outside the
// table; probe.yaml, loaded through loadConfig as `-c probe.yaml` is,
// decodes to the same configuration as the defaults alone, and names each
// key's flag in its section. Changing a default in one place only fails it.
func TestDefaultsAgree(t *testing.T) {
	clearEnv(t)
	help := runHelp(t)
	for _, s := range settings {
		if s.flag == "" {
			continue
		}
		got, ok := help[s.flag]
		if !ok {
			t.Errorf("--%s (%s) is not in kzprobe run --help", s.flag, s.key)
			continue
		}
		want := strings.ReplaceAll(s.usage, "`", "") + helpDefault(t, s.def)
		if got != want {
			t.Errorf("--help of --%s:\n got %q\nwant %q (usage and default of %s)", s.flag, got, want, s.key)
		}
	}
	for name := range help {
		if _, ok := runFlags[name]; !ok && name != "config" && name != "resume" && name != "help" {
			t.Errorf("--%s is in kzprobe run --help but sets no key of the settings table", name)
		}
	}

	fromFile, err := loadConfig("../../probe.yaml", nil, nil)
	if err != nil {
		t.Fatalf("loading probe.yaml: %v", err)
	}
	builtIn, err := loadConfig("", nil, nil)
	if err != nil {
		t.Fatalf("loading the defaults: %v", err)
	}
	if !reflect.DeepEqual(fromFile, builtIn) {
		t.Errorf("probe.yaml differs from the built-in defaults:\nfile:     %+v\ndefaults: %+v", fromFile, builtIn)
	}

	data, err := os.ReadFile("../../probe.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sections := probeYAMLSections(string(data))
	for _, s := range settings {
		if s.flag == "" {
			continue
		}
		sec, _, _ := strings.Cut(s.key, ".")
		text := sections[sec]
		if !strings.Contains(text, "--"+s.flag) && (s.short == "" || !regexp.MustCompile(`\W-`+s.short+`\b`).MatchString(text)) {
			t.Errorf("probe.yaml's %s section does not name --%s, the flag of %s", sec, s.flag, s.key)
		}
	}
}

// probeYAMLSections splits probe.yaml into its top-level sections' text.
func probeYAMLSections(doc string) map[string]string {
	out := map[string]string{}
	cur := ""
	for _, line := range strings.Split(doc, "\n") {
		if k, ok := strings.CutSuffix(line, ":"); ok && !strings.HasPrefix(line, " ") && !strings.HasPrefix(line, "#") {
			cur = k
		}
		out[cur] += line + "\n"
	}
	return out
}

// TestSettingsTableIsComplete checks that every key of Config is in the
// settings table and each key and flag is there once, so that a new key
// cannot skip the table.
func TestSettingsTableIsComplete(t *testing.T) {
	keys, flags := map[string]bool{}, map[string]bool{}
	for _, s := range settings {
		if keys[s.key] {
			t.Errorf("key %s twice in the settings table", s.key)
		}
		keys[s.key] = true
		if s.flag != "" && flags[s.flag] {
			t.Errorf("flag --%s twice in the settings table", s.flag)
		}
		flags[s.flag] = true
	}
	var want []string
	ct := reflect.TypeFor[Config]()
	for i := range ct.NumField() {
		sec := ct.Field(i)
		for j := range sec.Type.NumField() {
			f := sec.Type.Field(j)
			if tag := f.Tag.Get("mapstructure"); tag != "-" {
				want = append(want, sec.Tag.Get("mapstructure")+"."+tag)
			}
		}
	}
	for _, k := range want {
		if !keys[k] {
			t.Errorf("Config key %s has no setting", k)
		}
	}
	if len(want) != len(settings) {
		t.Errorf("%d settings for %d Config keys", len(settings), len(want))
	}
}
