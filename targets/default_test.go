package targets

import (
	"strconv"
	"strings"
	"testing"
)

func TestDefault(t *testing.T) {
	t.Parallel()
	want := []string{
		"360tv.ru", "astrakhan.sm.news", "compromat.ru", "cont.ws", "knews.kg",
		"kz.tsargrad.tv", "regnum.ru", "rutracker.org", "sproot.it", "stanradar.com",
		"ukraina.ru", "www.for.kg", "www.pinterest.com", "xakep.ru",
	}
	got := Default()
	if len(got) != len(want) {
		t.Fatalf("got %d targets; want %d", len(got), len(want))
	}
	lines := strings.Split(defaultList, "\n")
	for i, g := range got {
		t.Run(want[i], func(t *testing.T) {
			if g.Domain != want[i] || g.Port != 0 || g.Input != want[i] {
				t.Errorf("got %+v; want domain and input %q, port 0", g, want[i])
			}
			// Source points at the line of default.txt that holds it.
			rest, ok := strings.CutPrefix(g.Source, "default:")
			n, err := strconv.Atoi(rest)
			if !ok || err != nil || n < 1 || n > len(lines) || strings.TrimSpace(lines[n-1]) != want[i] {
				t.Errorf("Source %q does not point at the line of %q in default.txt", g.Source, want[i])
			}
		})
	}
}

func TestDefaultListIsClean(t *testing.T) {
	t.Parallel()
	got, bad, err := ReadAll(NewTextReader(strings.NewReader(defaultList), "default"))
	if err != nil {
		t.Fatal(err)
	}
	for _, le := range bad {
		t.Errorf("default.txt: %v", le)
	}
	// Every non-comment line is a distinct target.
	entries := 0
	for _, line := range strings.Split(defaultList, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			entries++
		}
	}
	if len(got) != entries {
		t.Errorf("got %d targets from %d entries; want no duplicates", len(got), entries)
	}
	if !strings.HasPrefix(defaultList, "#") || !strings.Contains(defaultList, "OONI 2024 report") {
		t.Errorf("default.txt must start with a comment saying where the list comes from")
	}
}

func TestDefaultReturnsNewSlice(t *testing.T) {
	t.Parallel()
	a := Default()
	a[0].Domain = "changed.example"
	if b := Default(); b[0].Domain != "360tv.ru" {
		t.Errorf("after changing a returned slice, Default()[0].Domain = %q; want %q", b[0].Domain, "360tv.ru")
	}
}

// TestDefaultInCitizenLabList checks the default list against the real test
// list: 13 of the 14 domains are in lists/kz.csv, www.pinterest.com is in
// lists/global.csv only.
func TestDefaultInCitizenLabList(t *testing.T) {
	t.Parallel()
	inKZ := make(map[string]bool)
	for _, u := range fixtureURLs(t) {
		tg, err := Normalize(u)
		if err != nil {
			t.Fatalf("fixture url %q: %v", u, err)
		}
		inKZ[tg.Domain] = true
	}
	for _, d := range Default() {
		t.Run(d.Domain, func(t *testing.T) {
			want := d.Domain != "www.pinterest.com"
			if got := inKZ[d.Domain]; got != want {
				t.Errorf("in kz.csv: got %v; want %v", got, want)
			}
		})
	}
}

func TestFromNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		names    []string
		want     []Target
		wantErrs []string
	}{
		{
			name:  "names and URLs",
			names: []string{"Example.COM", "https://x.kz:8443/p", "пример.рф"},
			want: []Target{
				tg("example.com", 0, "Example.COM", "flag"),
				tg("x.kz", 8443, "https://x.kz:8443/p", "flag"),
				tg("xn--e1afmkfd.xn--p1ai", 0, "пример.рф", "flag"),
			},
		},
		{
			name:  "duplicates dropped in first-seen order",
			names: []string{"b.kz", "a.kz", "B.KZ.", "a.kz:8443", "a.kz"},
			want: []Target{
				tg("b.kz", 0, "b.kz", "flag"),
				tg("a.kz", 0, "a.kz", "flag"),
				tg("a.kz", 8443, "a.kz:8443", "flag"),
			},
		},
		{
			name:  "bad names reported by position, the rest kept",
			names: []string{"a.kz", "1.2.3.4", "", "b.kz"},
			want:  []Target{tg("a.kz", 0, "a.kz", "flag"), tg("b.kz", 0, "b.kz", "flag")},
			wantErrs: []string{
				`flag:2: "1.2.3.4": IP literal, not a domain (skipped)`,
				`flag:3: empty input (skipped)`,
			},
		},
		{
			name: "none",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, errs := FromNames(tc.names)
			if len(got) != len(tc.want) {
				t.Fatalf("got %+v; want %+v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("target %d: got %+v; want %+v", i, got[i], tc.want[i])
				}
			}
			if len(errs) != len(tc.wantErrs) {
				t.Fatalf("got errors %v; want %q", errs, tc.wantErrs)
			}
			for i, err := range errs {
				if err.Error() != tc.wantErrs[i] {
					t.Errorf("error %d: got %q; want %q", i, err, tc.wantErrs[i])
				}
			}
		})
	}
}
