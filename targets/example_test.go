package targets_test

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"kzprobe/targets"
)

func ExampleNormalize() {
	for _, in := range []string{"Example.COM.", "https://x.kz:8443/path?q", "пример.рф", "1.2.3.4"} {
		t, err := targets.Normalize(in)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(t)
	}
	// Output:
	// example.com
	// x.kz:8443
	// xn--e1afmkfd.xn--p1ai
	// targets: IP literal, not a domain
}

// A list is streamed: bad lines are reported and skipped, duplicates are
// dropped with a Deduper, and only an I/O error stops the run.
func ExampleReader() {
	list := "# suspects\nregnum.ru\n1.2.3.4\nhttps://Regnum.ru/news\nhttps://xakep.ru:8443/\n"
	r := targets.NewTextReader(strings.NewReader(list), "list.txt")
	seen := targets.NewDeduper()
	for {
		t, err := r.Next()
		if err == io.EOF {
			break
		}
		var le *targets.LineError
		if errors.As(err, &le) {
			fmt.Println(le)
			continue
		}
		if err != nil {
			fmt.Println("fatal:", err)
			return
		}
		if seen.Seen(t) {
			continue
		}
		fmt.Println(t.Source, t)
	}
	// Output:
	// list.txt:2 regnum.ru
	// list.txt:3: "1.2.3.4": IP literal, not a domain (skipped)
	// list.txt:5 xakep.ru:8443
}

func ExampleOpen() {
	stdin := strings.NewReader("url,category_code\nhttps://rutracker.org/,FILE\n")
	r, closer, err := targets.Open("-", stdin)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer closer.Close()
	ts, _, _ := targets.ReadAll(r)
	fmt.Println(ts[0].Domain, ts[0].Source)
	// Output:
	// rutracker.org stdin:2
}
