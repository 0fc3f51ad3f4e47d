package analysis_test

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"kzprobe/analysis"
	"kzprobe/analysis/analysistest"
	"kzprobe/probe/chain"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// testdata is the absolute path of testdata/, which stays right when a
// test changes directory.
var testdata = func() string {
	p, err := filepath.Abs("testdata")
	if err != nil {
		panic(err)
	}
	return p
}()

// reportFixture writes the report fixture into a new folder and returns it
// with a Judge that knows the fixture's test roots.
func reportFixture(t testing.TB) (*analysistest.Fixture, *analysis.Judge) {
	t.Helper()
	fx, err := analysistest.WriteReportFixture(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return fx, fixtureJudge(t, fx.PKI)
}

func fixtureJudge(t testing.TB, p *analysistest.PKI) *analysis.Judge {
	t.Helper()
	kb, err := chain.Default()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kb.AddRootsPEM(p.RootsPEM(), "analysistest"); err != nil {
		t.Fatal(err)
	}
	return &analysis.Judge{Analyzer: chain.NewAnalyzer(nil, kb)}
}

// golden compares got with testdata/name, rewriting it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join(testdata, name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got; go test -update rewrites it):\n%s", path, diff)
	}
}
