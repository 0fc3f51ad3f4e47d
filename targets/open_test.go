package targets

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// closeRecorder is a stdin that records whether it was closed.
type closeRecorder struct {
	io.Reader
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

func TestOpen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name     string
		file     string // written in dir unless "-"; "testdata/..." is used as is
		content  string
		want     []Target // Source "@" is replaced by the path
		wantErrs []string
	}{
		{
			name:     "stdin as text",
			file:     "-",
			content:  "a.kz\n1.2.3.4\nhttps://b.kz:8443/\n",
			want:     []Target{tg("a.kz", 0, "a.kz", "stdin:1"), tg("b.kz", 8443, "https://b.kz:8443/", "stdin:3")},
			wantErrs: []string{`stdin:2: "1.2.3.4": IP literal, not a domain (skipped)`},
		},
		{
			name:    "stdin as CSV, found by its header",
			file:    "-",
			content: "url,category_code\nhttps://a.kz/,NEWS\n",
			want:    []Target{tg("a.kz", 0, "https://a.kz/", "stdin:2")},
		},
		{
			name:    "stdin as CSV with a BOM and CRLF",
			file:    "-",
			content: "\ufeffurl,notes\r\nhttps://a.kz/,x\r\n",
			want:    []Target{tg("a.kz", 0, "https://a.kz/", "stdin:2")},
		},
		{
			name:     "ranked list (Tranco) by its first line, whatever the name",
			file:     "top-1m.csv",
			content:  "1,a.kz\r\n2, b.kz \n\n# comment\n3,1.2.3.4\nx,c.kz\n5,https://d.kz/\n",
			want:     []Target{tg("a.kz", 0, "a.kz", "@:1"), tg("b.kz", 0, "b.kz", "@:2"), tg("d.kz", 0, "https://d.kz/", "@:7")},
			wantErrs: []string{`@:5: "1.2.3.4": IP literal, not a domain (skipped)`, `@:6: "x,c.kz": not a "rank,domain" line of a ranked list (skipped)`},
		},
		{
			name:    "ranked list on stdin, with a BOM",
			file:    "-",
			content: "\ufeff1,a.kz\n2,b.kz",
			want:    []Target{tg("a.kz", 0, "a.kz", "stdin:1"), tg("b.kz", 0, "b.kz", "stdin:2")},
		},
		{
			name:    "empty stdin",
			file:    "-",
			content: "",
		},
		{
			name:    "CSV by extension, one column",
			file:    "list.csv",
			content: "url\nhttps://a.kz/\n",
			want:    []Target{tg("a.kz", 0, "https://a.kz/", "@:2")},
		},
		{
			name:    "CSV by upper-case extension",
			file:    "LIST.CSV",
			content: "notes,URL\nx,http://a.kz/\n",
			want:    []Target{tg("a.kz", 0, "http://a.kz/", "@:2")},
		},
		{
			name:    "CSV by header in a .txt file",
			file:    "citizenlab.txt",
			content: "url,category_code,category_description,date_added,source,notes\nhttps://a.kz/,NEWS,News Media,2019-05-25,x,\n",
			want:    []Target{tg("a.kz", 0, "https://a.kz/", "@:2")},
		},
		{
			name:     "text when the header has no comma",
			file:     "one.txt",
			content:  "url\nb.kz\n",
			want:     []Target{tg("b.kz", 0, "b.kz", "@:2")},
			wantErrs: []string{`@:1: "url": single-label name, not a public domain (skipped)`},
		},
		{
			name:    "text with a comment first",
			file:    "list",
			content: "# url,notes\na.kz\n",
			want:    []Target{tg("a.kz", 0, "a.kz", "@:2")},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			stdin := &closeRecorder{Reader: strings.NewReader("")}
			path := tc.file
			if path == "-" {
				stdin.Reader = strings.NewReader(tc.content)
			} else {
				path = filepath.Join(dir, tc.file)
				if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			r, closer, err := Open(path, stdin)
			if err != nil {
				t.Fatalf("Open(%q): %v", path, err)
			}
			got := collect(t, r, 100)
			if err := closer.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if stdin.closed {
				t.Errorf("Open's closer closed stdin; want it left open")
			}
			if got.fatal != nil {
				t.Fatalf("got fatal error %v; want none", got.fatal)
			}
			var want []Target
			for _, w := range tc.want {
				w.Source = strings.Replace(w.Source, "@", path, 1)
				want = append(want, w)
			}
			var wantErrs []string
			for _, e := range tc.wantErrs {
				wantErrs = append(wantErrs, strings.Replace(e, "@", path, 1))
			}
			if diff := cmp.Diff(want, got.targets); diff != "" {
				t.Errorf("targets mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantErrs, got.errs); diff != "" {
				t.Errorf("line errors mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOpenCitizenLab(t *testing.T) {
	t.Parallel()
	r, closer, err := Open(fixture, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	got, bad, err := ReadAll(r)
	if err != nil || len(bad) != 0 {
		t.Fatalf("ReadAll: got errors %v, %v; want none", bad, err)
	}
	if want := fixtureRows - 5; len(got) != want {
		t.Errorf("got %d targets; want %d", len(got), want)
	}
	if want := tg("www.akorda.kz", 0, "http://www.akorda.kz/", fixture+":2"); got[0] != want {
		t.Errorf("got[0] = %+v; want %+v", got[0], want)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	noURL := filepath.Join(dir, "nourl.csv")
	if err := os.WriteFile(noURL, []byte("domain,notes\na.kz,x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.txt")
	tests := []struct {
		name    string
		path    string
		stdin   io.Reader
		wantIs  error
		wantErr string
	}{
		{
			name:    "missing file",
			path:    missing,
			wantIs:  fs.ErrNotExist,
			wantErr: "targets: target list " + missing + " does not exist; check the path, or give - to read the list from stdin: open " + missing + ": no such file or directory",
		},
		{
			name:    "directory",
			path:    dir,
			wantErr: "targets: target list " + dir + " is a directory; give a file with one domain a line, or a CSV file",
		},
		{
			name:    "CSV without a url column",
			path:    noURL,
			wantIs:  ErrNoURLColumn,
			wantErr: noURL + `: targets: CSV header has no "url" column (header is "domain,notes"); use a CSV file with a url column, or a text file with one domain a line`,
		},
		{
			name:    "no stdin",
			path:    "-",
			wantErr: "targets: no standard input to read the list from",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, closer, err := Open(tc.path, tc.stdin)
			if err == nil {
				closer.Close()
				t.Fatalf("Open(%q) = %v; want an error", tc.path, r)
			}
			if r != nil || closer != nil {
				t.Errorf("Open(%q) returned a reader or closer with its error", tc.path)
			}
			if tc.wantIs != nil {
				expectErr(t, err, tc.wantIs)
			}
			if got := err.Error(); got != tc.wantErr {
				t.Errorf("got error %q; want %q", got, tc.wantErr)
			}
		})
	}
}

func TestOpenUnreadableFile(t *testing.T) {
	t.Parallel()
	if os.Geteuid() == 0 {
		t.Skip("root can read files without read permission")
	}
	path := filepath.Join(t.TempDir(), "secret.txt")
	if err := os.WriteFile(path, []byte("a.kz\n"), 0o000); err != nil {
		t.Fatal(err)
	}
	_, _, err := Open(path, nil)
	expectErr(t, err, fs.ErrPermission)
	if want := "targets: target list " + path + " is not readable; check its permissions"; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("got error %q; want it to start with %q", err, want)
	}
}

// TestOpenStdinStreams checks that Open and Next do not wait for more input
// than the first line: a list piped slowly into stdin starts at once.
func TestOpenStdinStreams(t *testing.T) {
	t.Parallel()
	pr, pw := io.Pipe()
	defer pw.Close()
	done := make(chan error, 1)
	go func() {
		if _, err := io.WriteString(pw, "a.kz\n"); err != nil {
			done <- err
			return
		}
		// The writer holds the pipe open until the test ends.
		done <- nil
	}()
	type result struct {
		t   Target
		err error
	}
	got := make(chan result, 1)
	go func() {
		r, _, err := Open("-", pr)
		if err != nil {
			got <- result{err: err}
			return
		}
		tgt, err := r.Next()
		got <- result{tgt, err}
	}()
	select {
	case res := <-got:
		if res.err != nil {
			t.Fatal(res.err)
		}
		if want := tg("a.kz", 0, "a.kz", "stdin:1"); res.t != want {
			t.Errorf("got %+v; want %+v", res.t, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Open and Next still waiting for more input after the first line")
	}
	if err := <-done; err != nil && !errors.Is(err, io.ErrClosedPipe) {
		t.Error(err)
	}
}
