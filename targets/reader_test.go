package targets

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

// fixture is the Citizen Lab test list for Kazakhstan, byte-identical to
// citizenlab/test-lists lists/kz.csv (see testdata/SOURCES.md).
const fixture = "testdata/kz.csv"

// fixtureRows is the number of data rows in the fixture (554 lines, one of
// them the header).
const fixtureRows = 553

// collected is everything a Reader returned until io.EOF or a fatal error.
type collected struct {
	targets []Target
	errs    []string // LineError messages, in order
	fatal   error
}

// collect calls Next until io.EOF or a fatal error, without deduplication.
// It fails t when Next keeps returning results past maxCalls.
func collect(t testing.TB, r *Reader, maxCalls int) collected {
	t.Helper()
	var c collected
	for range maxCalls {
		tg, err := r.Next()
		if err == io.EOF {
			return c
		}
		var le *LineError
		switch {
		case errors.As(err, &le):
			if tg != (Target{}) {
				t.Fatalf("Next returned %+v with line error %v; want the zero Target", tg, err)
			}
			c.errs = append(c.errs, le.Error())
		case err != nil:
			c.fatal = err
			return c
		default:
			c.targets = append(c.targets, tg)
		}
	}
	t.Fatalf("Next did not return io.EOF after %d calls", maxCalls)
	return c
}

// tg builds an expected Target.
func tg(domain string, port int, input, source string) Target {
	return Target{Domain: domain, Port: port, Input: input, Source: source}
}

func TestTextReader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		input    string
		want     []Target
		wantErrs []string
	}{
		{
			name:  "comments and blank lines",
			input: "# header\n\nexample.com\n  # indented comment\nx.kz # trailing comment\n\tspaced.kz  \nhash.kz\t# after a tab\n#\n",
			want: []Target{
				tg("example.com", 0, "example.com", "list.txt:3"),
				tg("x.kz", 0, "x.kz", "list.txt:5"),
				tg("spaced.kz", 0, "spaced.kz", "list.txt:6"),
				tg("hash.kz", 0, "hash.kz", "list.txt:7"),
			},
		},
		{
			name:  "hash inside a URL is not a comment",
			input: "http://namba.kz/#!/\nhttps://x.kz/#frag # comment\n",
			want: []Target{
				tg("namba.kz", 0, "http://namba.kz/#!/", "list.txt:1"),
				tg("x.kz", 0, "https://x.kz/#frag", "list.txt:2"),
			},
		},
		{
			name:  "URLs with ports and paths",
			input: "https://example.com:8443/path?q=1\nhttp://x.kz/a/b\nexample.org:8080\nHTTPS://Y.KZ:443\n",
			want: []Target{
				tg("example.com", 8443, "https://example.com:8443/path?q=1", "list.txt:1"),
				tg("x.kz", 0, "http://x.kz/a/b", "list.txt:2"),
				tg("example.org", 8080, "example.org:8080", "list.txt:3"),
				tg("y.kz", 443, "HTTPS://Y.KZ:443", "list.txt:4"),
			},
		},
		{
			name:  "IDN names",
			input: "пример.рф\nhttps://қазақстан.kz/news\nXN--E1AFMKFD.XN--P1AI.\n",
			want: []Target{
				tg("xn--e1afmkfd.xn--p1ai", 0, "пример.рф", "list.txt:1"),
				tg("xn--80aaa0a6awh12ed.kz", 0, "https://қазақстан.kz/news", "list.txt:2"),
				tg("xn--e1afmkfd.xn--p1ai", 0, "XN--E1AFMKFD.XN--P1AI.", "list.txt:3"),
			},
		},
		{
			name:  "CRLF line endings",
			input: "a.kz\r\n# comment\r\n\r\nb.kz\r\n",
			want:  []Target{tg("a.kz", 0, "a.kz", "list.txt:1"), tg("b.kz", 0, "b.kz", "list.txt:4")},
		},
		{
			name:  "BOM, CRLF and no final newline",
			input: "\ufeffa.kz\r\nb.kz",
			want:  []Target{tg("a.kz", 0, "a.kz", "list.txt:1"), tg("b.kz", 0, "b.kz", "list.txt:2")},
		},
		{
			name:  "BOM before a comment",
			input: "\ufeff# list\na.kz\n",
			want:  []Target{tg("a.kz", 0, "a.kz", "list.txt:2")},
		},
		{
			name:  "duplicates are all returned by Next",
			input: "a.kz\nA.KZ.\nhttps://a.kz/\n",
			want: []Target{
				tg("a.kz", 0, "a.kz", "list.txt:1"),
				tg("a.kz", 0, "A.KZ.", "list.txt:2"),
				tg("a.kz", 0, "https://a.kz/", "list.txt:3"),
			},
		},
		{
			name:  "bad lines are reported with their line numbers",
			input: "# list\nexample.com\n1.2.3.4\nhttp://x/\nftp://y.kz/\ngood.kz:8443\n[::1]:443\na..kz\n\nlast.kz:0\nuser@mail.kz\n" + strings.Repeat("a", 64) + ".kz\nfinal.kz\n",
			want: []Target{
				tg("example.com", 0, "example.com", "list.txt:2"),
				tg("good.kz", 8443, "good.kz:8443", "list.txt:6"),
				tg("final.kz", 0, "final.kz", "list.txt:13"),
			},
			wantErrs: []string{
				`list.txt:3: "1.2.3.4": IP literal, not a domain (skipped)`,
				`list.txt:4: "http://x/": single-label name, not a public domain (skipped)`,
				`list.txt:5: "ftp://y.kz/": unsupported URL scheme (want http or https): "ftp" (skipped)`,
				`list.txt:7: "[::1]:443": IP literal, not a domain (skipped)`,
				`list.txt:8: "a..kz": malformed domain or URL: empty label (skipped)`,
				`list.txt:10: "last.kz:0": invalid port: 0 is out of range 1-65535 (skipped)`,
				`list.txt:11: "user@mail.kz": malformed domain or URL: '@' outside a URL (skipped)`,
				`list.txt:12: "` + strings.Repeat("a", 64) + `.kz": label longer than 63 bytes: "` + strings.Repeat("a", 64) + `" is 64 bytes (skipped)`,
			},
		},
		{
			name:  "empty input",
			input: "",
		},
		{
			name:  "only comments",
			input: "# a\n# b\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := collect(t, NewTextReader(strings.NewReader(tc.input), "list.txt"), 1000)
			if got.fatal != nil {
				t.Fatalf("got fatal error %v; want none", got.fatal)
			}
			if diff := cmp.Diff(tc.want, got.targets); diff != "" {
				t.Errorf("targets mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantErrs, got.errs); diff != "" {
				t.Errorf("line errors mismatch (-want +got):\n%s", diff)
			}
			for _, g := range got.targets {
				checkRenormalizes(t, g)
			}
		})
	}
}

func TestTextReaderLongLine(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 100_000)
	input := long + ".kz\n# " + long + "\nok.kz\n" + long + "\n" + strings.Repeat(" ", 300) + long
	got := collect(t, NewTextReader(strings.NewReader(input), "big.txt"), 100)
	if got.fatal != nil {
		t.Fatalf("got fatal error %v; want none", got.fatal)
	}
	want := []Target{tg("ok.kz", 0, "ok.kz", "big.txt:3")}
	if diff := cmp.Diff(want, got.targets); diff != "" {
		t.Errorf("targets mismatch (-want +got):\n%s", diff)
	}
	shown := strings.Repeat("a", maxShownInput) + "..."
	wantErrs := []string{
		`big.txt:1: "` + shown + `": line too long (skipped)`,
		`big.txt:4: "` + shown + `": line too long (skipped)`,
		`big.txt:5: "...": line too long (skipped)`,
	}
	if diff := cmp.Diff(wantErrs, got.errs); diff != "" {
		t.Errorf("line errors mismatch (-want +got):\n%s", diff)
	}
}

func TestReaderFatalError(t *testing.T) {
	t.Parallel()
	errDisk := errors.New("disk on fire")
	tests := []struct {
		name string
		open func(io.Reader) (*Reader, error)
		head string
	}{
		{"text", func(r io.Reader) (*Reader, error) { return NewTextReader(r, "list.txt"), nil }, "a.kz\n"},
		{"CSV", func(r io.Reader) (*Reader, error) { return NewCSVReader(r, "list.txt") }, "url\nhttps://a.kz/\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := tc.open(io.MultiReader(strings.NewReader(tc.head), iotest.ErrReader(errDisk)))
			if err != nil {
				t.Fatal(err)
			}
			got := collect(t, r, 10)
			if len(got.targets) != 1 || got.targets[0].Domain != "a.kz" {
				t.Errorf("got targets %+v; want a.kz only", got.targets)
			}
			if !errors.Is(got.fatal, errDisk) {
				t.Fatalf("got fatal error %v; want %v", got.fatal, errDisk)
			}
			if want := "targets: reading list.txt: "; !strings.HasPrefix(got.fatal.Error(), want) {
				t.Errorf("got error %q; want it to start with %q", got.fatal, want)
			}
			if _, err := r.Next(); err != got.fatal {
				t.Errorf("second Next after the fatal error: got %v; want %v again", err, got.fatal)
			}
		})
	}
}

// fixtureRecords reads the fixture with encoding/csv alone, independently of
// the package: the data rows, each with its line number.
func fixtureRecords(t testing.TB) (records [][]string, lines []int) {
	t.Helper()
	f, err := os.Open(fixture)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cr := csv.NewReader(f)
	all, err := cr.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	// No record of the fixture spans lines, so row i is on line i+1.
	for i := range all[1:] {
		lines = append(lines, i+2)
	}
	return all[1:], lines
}

// fixtureURLs returns the url field of every data row of the fixture.
func fixtureURLs(t testing.TB) []string {
	t.Helper()
	recs, _ := fixtureRecords(t)
	var urls []string
	for _, rec := range recs {
		urls = append(urls, rec[0])
	}
	return urls
}

func TestCSVReaderCitizenLab(t *testing.T) {
	t.Parallel()
	recs, lines := fixtureRecords(t)
	if len(recs) != fixtureRows {
		t.Fatalf("fixture has %d data rows; want %d (was testdata/kz.csv changed?)", len(recs), fixtureRows)
	}
	f, err := os.Open(fixture)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := NewCSVReader(f, "kz.csv")
	if err != nil {
		t.Fatal(err)
	}
	got := collect(t, r, 10*fixtureRows)
	if got.fatal != nil {
		t.Fatalf("got fatal error %v; want none", got.fatal)
	}

	t.Run("every row is parsed or reported", func(t *testing.T) {
		if n := len(got.targets) + len(got.errs); n != fixtureRows {
			t.Errorf("got %d targets + %d line errors = %d; want %d rows", len(got.targets), len(got.errs), n, fixtureRows)
		}
		// Every URL in the Kazakhstan list is a valid http(s) URL of a
		// public domain, so none is reported.
		if len(got.errs) != 0 {
			t.Errorf("got line errors %q; want none", got.errs)
		}
	})
	t.Run("schemes", func(t *testing.T) {
		schemes := make(map[string]int)
		for _, g := range got.targets {
			scheme, _, _ := strings.Cut(g.Input, "://")
			schemes[scheme]++
		}
		if want := map[string]int{"http": 117, "https": 436}; !cmp.Equal(schemes, want) {
			t.Errorf("got URLs by scheme %v; want %v", schemes, want)
		}
	})
	t.Run("each target is its row", func(t *testing.T) {
		if len(got.targets) != len(recs) {
			t.Skipf("got %d targets; want %d", len(got.targets), len(recs))
		}
		for i, g := range got.targets {
			if want := "kz.csv:" + strconv.Itoa(lines[i]); g.Source != want || g.Input != recs[i][0] {
				t.Errorf("target %d = %+v; want Input %q and Source %q", i, g, recs[i][0], want)
			}
			checkRenormalizes(t, g)
		}
	})

	spot := []struct {
		name string
		want Target
	}{
		{"first row", tg("www.akorda.kz", 0, "http://www.akorda.kz/", "kz.csv:2")},
		{"URL with a fragment", tg("namba.kz", 0, "http://namba.kz/#!/", "kz.csv:40")},
		{"rutracker", tg("rutracker.org", 0, "https://rutracker.org/", "kz.csv:122")},
		{"http only", tg("compromat.ru", 0, "http://compromat.ru/", "kz.csv:144")},
		{"URL with a query", tg("nnmclub.to", 0, "https://nnmclub.to/forum/search.php?search_author=psycrow17/", "kz.csv:314")},
		{"xakep", tg("xakep.ru", 0, "https://xakep.ru/", "kz.csv:373")},
		{"row with a quoted note", tg("disconnect.me", 0, "https://disconnect.me/", "kz.csv:416")},
		{"last row", tg("www.transparency.kz", 0, "https://www.transparency.kz/", "kz.csv:554")},
	}
	bySource := make(map[string]Target)
	for _, g := range got.targets {
		bySource[g.Source] = g
	}
	for _, tc := range spot {
		t.Run(tc.name, func(t *testing.T) {
			if g := bySource[tc.want.Source]; g != tc.want {
				t.Errorf("got %+v; want %+v", g, tc.want)
			}
		})
	}
}

func TestReadAllCitizenLab(t *testing.T) {
	t.Parallel()
	f, err := os.Open(fixture)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := NewCSVReader(f, "kz.csv")
	if err != nil {
		t.Fatal(err)
	}
	got, bad, err := ReadAll(r)
	if err != nil || len(bad) != 0 {
		t.Fatalf("ReadAll: got errors %v, %v; want none", bad, err)
	}
	// Five domains appear twice: namba.kz, kk.wikipedia.org,
	// www.blogger.com, nnmclub.to and yandex.ru.
	if want := fixtureRows - 5; len(got) != want {
		t.Errorf("got %d distinct targets; want %d", len(got), want)
	}
	if want := tg("namba.kz", 0, "http://namba.kz/#!/", "kz.csv:40"); got[38] != want {
		t.Errorf("got[38] = %+v; want the first namba.kz row %+v", got[38], want)
	}
}

func TestCSVReader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		input    string
		want     []Target
		wantErrs []string
	}{
		{
			name:  "url column found by name in any position and case",
			input: "category_code, URL ,notes\nNEWS,https://a.kz/,x\n",
			want:  []Target{tg("a.kz", 0, "https://a.kz/", "t.csv:2")},
		},
		{
			name:  "BOM before the header",
			input: "\ufeffurl,notes\nhttps://a.kz/,\n",
			want:  []Target{tg("a.kz", 0, "https://a.kz/", "t.csv:2")},
		},
		{
			name:  "CRLF and no final newline",
			input: "url,notes\r\nhttps://a.kz/,x\r\nhttps://b.kz:8443/p,y",
			want:  []Target{tg("a.kz", 0, "https://a.kz/", "t.csv:2"), tg("b.kz", 8443, "https://b.kz:8443/p", "t.csv:3")},
		},
		{
			name:  "quoted note over two lines",
			input: "url,notes\nhttps://a.kz/,\"line one\nline two\"\nhttps://b.kz/,\n",
			want:  []Target{tg("a.kz", 0, "https://a.kz/", "t.csv:2"), tg("b.kz", 0, "https://b.kz/", "t.csv:4")},
		},
		{
			name:  "url field on the second line of a record",
			input: "notes,url\n\"two\nlines\",https://a.kz/\n",
			want:  []Target{tg("a.kz", 0, "https://a.kz/", "t.csv:3")},
		},
		{
			name:  "blank lines and spaces around the url",
			input: "url,notes\n\n  https://a.kz/  ,x\n   \n\t\n",
			want:  []Target{tg("a.kz", 0, "https://a.kz/", "t.csv:3")},
		},
		{
			name:  "IDN url",
			input: "url\nhttps://пример.рф/\n",
			want:  []Target{tg("xn--e1afmkfd.xn--p1ai", 0, "https://пример.рф/", "t.csv:2")},
		},
		{
			name: "bad rows are reported with their line numbers",
			input: "category_code,url,notes\n" +
				"NEWS,https://1.2.3.4/,x\n" +
				"NEWS,,empty url\n" +
				"NEWS,https://a\"b.kz/,bare quote\n" +
				"NEWS\n" +
				"NEWS,https://ok.kz:8443/,fine\n" +
				"NEWS,\"https://q.kz/\",quoted\n",
			want: []Target{
				tg("ok.kz", 8443, "https://ok.kz:8443/", "t.csv:6"),
				tg("q.kz", 0, "https://q.kz/", "t.csv:7"),
			},
			wantErrs: []string{
				`t.csv:2: "https://1.2.3.4/": IP literal, not a domain (skipped)`,
				`t.csv:3: empty input (skipped)`,
				`t.csv:4: malformed CSV row: bare " in non-quoted-field (skipped)`,
				`t.csv:5: "NEWS": malformed CSV row: no field 2 (url) in a row of 1 (skipped)`,
			},
		},
		{
			name:     "unterminated quote reported at the row where it starts",
			input:    "url,notes\nhttps://a.kz/,\"open\nhttps://b.kz/,\n",
			wantErrs: []string{`t.csv:2: malformed CSV row: extraneous or missing " in quoted-field (skipped)`},
		},
		{
			name:  "header only",
			input: "url,category_code,category_description,date_added,source,notes\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := NewCSVReader(strings.NewReader(tc.input), "t.csv")
			if err != nil {
				t.Fatalf("NewCSVReader: %v", err)
			}
			got := collect(t, r, 1000)
			if got.fatal != nil {
				t.Fatalf("got fatal error %v; want none", got.fatal)
			}
			if diff := cmp.Diff(tc.want, got.targets); diff != "" {
				t.Errorf("targets mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantErrs, got.errs); diff != "" {
				t.Errorf("line errors mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewCSVReaderErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		input   string
		wantErr string
	}{
		{"no url column", "domain,notes\na.kz,x\n", `lists/x.csv: targets: CSV header has no "url" column (header is "domain,notes"); use a CSV file with a url column, or a text file with one domain a line`},
		{"empty file", "", `lists/x.csv: targets: CSV header has no "url" column: the file is empty`},
		{"unparsable header", "url,\"notes\n", `lists/x.csv: targets: CSV header has no "url" column: cannot parse the header: extraneous or missing " in quoted-field`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := NewCSVReader(strings.NewReader(tc.input), "lists/x.csv")
			if err == nil {
				t.Fatalf("got reader %v; want an error", r)
			}
			expectErr(t, err, ErrNoURLColumn)
			if got := err.Error(); got != tc.wantErr {
				t.Errorf("got error %q; want %q", got, tc.wantErr)
			}
		})
	}
}

func TestCSVReaderRecordTooLong(t *testing.T) {
	t.Parallel()
	runaway := "\"" + strings.Repeat("runaway quote\n", 200_000)
	tests := []struct {
		name        string
		input       string
		wantDomains []string
		wantPrefix  string
	}{
		{
			name:        "after a good row",
			input:       "url,notes\nhttps://a.kz/,x\nhttps://b.kz/," + runaway,
			wantDomains: []string{"a.kz"},
			wantPrefix:  "targets: reading t.csv: after line 2: ",
		},
		{
			name:       "first row",
			input:      "url,notes\nhttps://b.kz/," + runaway,
			wantPrefix: "targets: reading t.csv: after line 1: ",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := NewCSVReader(strings.NewReader(tc.input), "t.csv")
			if err != nil {
				t.Fatal(err)
			}
			got := collect(t, r, 100)
			var domains []string
			for _, g := range got.targets {
				domains = append(domains, g.Domain)
			}
			if diff := cmp.Diff(tc.wantDomains, domains); diff != "" {
				t.Errorf("domains mismatch (-want +got):\n%s", diff)
			}
			expectErr(t, got.fatal, ErrRecordTooLong)
			if !strings.HasPrefix(got.fatal.Error(), tc.wantPrefix) {
				t.Errorf("got error %q; want it to start with %q", got.fatal, tc.wantPrefix)
			}
		})
	}
}

func TestNewCSVReaderRecordTooLong(t *testing.T) {
	t.Parallel()
	_, err := NewCSVReader(strings.NewReader("\"url"+strings.Repeat("x", 2<<20)), "t.csv")
	expectErr(t, err, ErrRecordTooLong)
}

func TestLineErrorMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  *LineError
		want string
	}{
		{"IP literal", &LineError{File: "list.txt", Line: 12, Input: "1.2.3.4", Err: ErrIPLiteral}, `list.txt:12: "1.2.3.4": IP literal, not a domain (skipped)`},
		{"wrapped detail", &LineError{File: "stdin", Line: 3, Input: "a..kz", Err: fmt.Errorf("%w: empty label", ErrMalformed)}, `stdin:3: "a..kz": malformed domain or URL: empty label (skipped)`},
		{"no input", &LineError{File: "x.csv", Line: 4, Err: ErrBadRow}, `x.csv:4: malformed CSV row (skipped)`},
		{"control characters quoted", &LineError{File: "l", Line: 1, Input: "a\x1b[31m.kz", Err: ErrMalformed}, `l:1: "a\x1b[31m.kz": malformed domain or URL (skipped)`},
		{"nil Err", &LineError{File: "l", Line: 1, Input: "x"}, `l:1: "x": invalid target (skipped)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("got %q; want %q", got, tc.want)
			}
			if tc.err.Err != nil && !errors.Is(tc.err, tc.err.Err) {
				t.Errorf("errors.Is(%v, %v) = false; want true", tc.err, tc.err.Err)
			}
		})
	}
}

func TestReadAll(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		input    string
		want     []Target
		wantErrs []string
	}{
		{
			name:  "duplicates dropped in first-seen order",
			input: "b.kz\na.kz\nB.KZ.\nhttps://a.kz/x\na.kz:8443\nb.kz\nhttps://a.kz:8443/\nc.kz\n",
			want: []Target{
				tg("b.kz", 0, "b.kz", "l:1"),
				tg("a.kz", 0, "a.kz", "l:2"),
				tg("a.kz", 8443, "a.kz:8443", "l:5"),
				tg("c.kz", 0, "c.kz", "l:8"),
			},
		},
		{
			name:  "IDN and punycode spellings are duplicates",
			input: "пример.рф\nxn--e1afmkfd.xn--p1ai\nhttps://ПРИМЕР.РФ/\n",
			want:  []Target{tg("xn--e1afmkfd.xn--p1ai", 0, "пример.рф", "l:1")},
		},
		{
			name:     "line errors collected",
			input:    "1.2.3.4\na.kz\n1.2.3.4\n",
			want:     []Target{tg("a.kz", 0, "a.kz", "l:2")},
			wantErrs: []string{`l:1: "1.2.3.4": IP literal, not a domain (skipped)`, `l:3: "1.2.3.4": IP literal, not a domain (skipped)`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, bad, err := ReadAll(NewTextReader(strings.NewReader(tc.input), "l"))
			if err != nil {
				t.Fatalf("got error %v; want none", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("targets mismatch (-want +got):\n%s", diff)
			}
			var msgs []string
			for _, le := range bad {
				msgs = append(msgs, le.Error())
			}
			if diff := cmp.Diff(tc.wantErrs, msgs); diff != "" {
				t.Errorf("line errors mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadAllFatal(t *testing.T) {
	t.Parallel()
	errDisk := errors.New("disk on fire")
	r := NewTextReader(io.MultiReader(strings.NewReader("a.kz\n1.2.3.4\n"), iotest.ErrReader(errDisk)), "l")
	got, bad, err := ReadAll(r)
	if !errors.Is(err, errDisk) {
		t.Fatalf("got error %v; want %v", err, errDisk)
	}
	if len(got) != 1 || len(bad) != 1 {
		t.Errorf("got %d targets and %d line errors; want 1 and 1", len(got), len(bad))
	}
}

// lineSource generates n lines ("d<i>.example.kz\n") on demand and records
// how far it has been read, so a test can check that a Reader streams.
type lineSource struct {
	n, next int
	pending []byte
	read    int // bytes handed out
}

func (s *lineSource) Read(p []byte) (int, error) {
	for len(s.pending) < len(p) && s.next < s.n {
		s.pending = fmt.Appendf(s.pending, "d%d.example.kz\n", s.next)
		s.next++
	}
	if len(s.pending) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.pending)
	s.pending = s.pending[:copy(s.pending, s.pending[n:])]
	s.read += n
	return n, nil
}

// TestTextReaderStreams reads a million-line list and checks that the Reader
// never reads more than its buffer ahead of the target it returns, so the
// list is never in memory whole.
func TestTextReaderStreams(t *testing.T) {
	t.Parallel()
	n := 1_000_000
	if testing.Short() {
		n = 100_000
	}
	src := &lineSource{n: n}
	r := NewTextReader(src, "big.txt")
	d := NewDeduper()
	consumed := 0 // bytes of the lines returned so far
	for i := 0; ; i++ {
		got, err := r.Next()
		if err == io.EOF {
			if i != n {
				t.Fatalf("got %d targets; want %d", i, n)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("d%d.example.kz", i); got.Domain != want {
			t.Fatalf("target %d: got %q; want %q", i, got.Domain, want)
		}
		consumed += len(got.Input) + 1
		if ahead := src.read - consumed; ahead > maxLine {
			t.Fatalf("after %d lines the reader is %d bytes ahead; want at most %d", i+1, ahead, maxLine)
		}
		if d.Seen(got) {
			t.Fatalf("target %d (%s) reported as a duplicate", i, got.Domain)
		}
	}
	if d.Len() != n {
		t.Errorf("Deduper.Len() = %d; want %d", d.Len(), n)
	}
	// 8-byte slots, between 3/8 and 3/4 full: at most 22 bytes a target
	// (16 MiB for a million).
	if got := 8 * len(d.set.slots); got > 22*n {
		t.Errorf("Deduper holds %d bytes for %d targets; want at most %d", got, n, 22*n)
	}
}

// benchList returns a generated list of n lines in the shapes of real lists:
// bare domains, URLs with paths, ports, upper case, comments, IDN names.
func benchList(n int) []byte {
	var b bytes.Buffer
	b.WriteString("# generated benchmark list\n")
	for i := range n - 1 {
		switch i % 10 {
		case 0:
			fmt.Fprintf(&b, "https://www.site%d.kz/path/%d?q=1\n", i, i)
		case 1:
			fmt.Fprintf(&b, "http://news%d.example.ru/\n", i)
		case 2:
			fmt.Fprintf(&b, "Site%d.Example.COM.\n", i)
		case 3:
			fmt.Fprintf(&b, "host%d.example.org:8443 # with a port\n", i)
		case 4:
			fmt.Fprintf(&b, "сайт%d.рф\n", i)
		case 5:
			b.WriteString("\n")
		default:
			fmt.Fprintf(&b, "d%d.example.kz\n", i)
		}
	}
	return b.Bytes()
}

func BenchmarkTextReader(b *testing.B) {
	const lines = 100_000
	data := benchList(lines)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r := NewTextReader(bytes.NewReader(data), "bench.txt")
		for {
			_, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*lines), "ns/line")
}

func BenchmarkCSVReader(b *testing.B) {
	data, err := os.ReadFile(fixture)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := NewCSVReader(bytes.NewReader(data), "kz.csv")
		if err != nil {
			b.Fatal(err)
		}
		for {
			_, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}

func FuzzTextReader(f *testing.F) {
	f.Add([]byte("# list\nexample.com\n1.2.3.4\nhttps://x.kz:8443/p # c\n"))
	f.Add([]byte("\ufeffa.kz\r\nb.kz"))
	f.Add([]byte("пример.рф\n\n  # x\n[::1]:443\nhttp://namba.kz/#!/"))
	urls := fixtureURLs(f)
	f.Add([]byte(strings.Join(urls[:40], "\n")))
	f.Add([]byte(strings.Join(urls[400:440], "\r\n")))
	for _, u := range urls[:20] {
		f.Add([]byte(u + "\n"))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewTextReader(bytes.NewReader(data), "fuzz")
		lastLine := 0
		for range bytes.Count(data, []byte("\n")) + 2 {
			got, err := r.Next()
			if err == io.EOF {
				return
			}
			line := 0
			var le *LineError
			switch {
			case errors.As(err, &le):
				if le.File != "fuzz" {
					t.Fatalf("LineError.File = %q; want %q", le.File, "fuzz")
				}
				line = le.Line
			case err != nil:
				t.Fatalf("got fatal error %v from an in-memory list; want none", err)
			default:
				checkRenormalizes(t, got)
				n, err := strconv.Atoi(strings.TrimPrefix(got.Source, "fuzz:"))
				if err != nil || !strings.HasPrefix(got.Source, "fuzz:") {
					t.Fatalf("Source = %q; want fuzz:<line>", got.Source)
				}
				line = n
				if got.Input != strings.TrimSpace(got.Input) || strings.ContainsAny(got.Input, "\n") {
					t.Fatalf("Input %q: want one trimmed line", got.Input)
				}
			}
			if line <= lastLine {
				t.Fatalf("line %d after line %d; want increasing line numbers", line, lastLine)
			}
			lastLine = line
		}
		t.Fatalf("Next did not return io.EOF")
	})
}

func FuzzCSVReader(f *testing.F) {
	data, err := os.ReadFile(fixture)
	if err != nil {
		f.Fatal(err)
	}
	head := bytes.SplitAfter(data, []byte("\n"))
	f.Add(bytes.Join(head[:30], nil))
	f.Add(bytes.Join(append(head[:1:1], head[415:420]...), nil))
	f.Add([]byte("category_code,url\nNEWS,https://a.kz/\n,\nx,\"y\nz\",https://b.kz/\n"))
	f.Add([]byte("\ufeffurl\r\n1.2.3.4\r\n\"https://a\"\"b.kz/\"\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewCSVReader(bytes.NewReader(data), "fuzz.csv")
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.csv") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		for range bytes.Count(data, []byte("\n")) + 2 {
			got, err := r.Next()
			if err == io.EOF {
				return
			}
			var le *LineError
			switch {
			case errors.As(err, &le):
				if le.File != "fuzz.csv" || le.Line < 1 {
					t.Fatalf("LineError %+v: want File fuzz.csv and a line", le)
				}
			case err != nil:
				if !errors.Is(err, ErrRecordTooLong) {
					t.Fatalf("got fatal error %v from an in-memory list; want none", err)
				}
				return
			default:
				checkRenormalizes(t, got)
				if !strings.HasPrefix(got.Source, "fuzz.csv:") {
					t.Fatalf("Source = %q; want fuzz.csv:<line>", got.Source)
				}
			}
		}
		t.Fatalf("Next did not return io.EOF")
	})
}

// FuzzRankedReader: a ranked list never fails fatally in memory, each
// target renormalises to itself, and line numbers only grow.
func FuzzRankedReader(f *testing.F) {
	f.Add([]byte("1,a.kz\n2,b.kz\r\n"))
	f.Add([]byte("\ufeff1,xn--e1afmkfd.xn--p1ai\n# c\n\n3,1.2.3.4\nx,y.kz\n4,https://c.kz:8443/p\n5,\n,6\n"))
	f.Add([]byte("99999999999,a.kz\n1,a.kz,extra\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewRankedReader(bytes.NewReader(data), "fuzz")
		lastLine := 0
		for range bytes.Count(data, []byte("\n")) + 2 {
			got, err := r.Next()
			if err == io.EOF {
				return
			}
			line := 0
			var le *LineError
			switch {
			case errors.As(err, &le):
				line = le.Line
			case err != nil:
				t.Fatalf("got fatal error %v from an in-memory list; want none", err)
			default:
				checkRenormalizes(t, got)
				n, err := strconv.Atoi(strings.TrimPrefix(got.Source, "fuzz:"))
				if err != nil {
					t.Fatalf("Source = %q; want fuzz:<line>", got.Source)
				}
				line = n
			}
			if line <= lastLine {
				t.Fatalf("line %d after line %d; want increasing line numbers", line, lastLine)
			}
			lastLine = line
		}
		t.Fatalf("Next did not return io.EOF")
	})
}
