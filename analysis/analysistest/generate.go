package analysistest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"kzprobe/measurement"
)

// Generator writes OONI-style JSONL in bulk for benchmarks: real OONI
// measurements (given as templates) and the fixture's intercepted ones, one
// per line, with the input, network, time and report id varied on every
// line. A line costs a few copies, not a JSON encoding, so a gigabyte takes
// seconds.
type Generator struct {
	// Templates are whole OONI measurements (one JSON document each).
	Templates [][]byte
	// Intercepted is the fraction of lines that are intercepted KZ
	// measurements through the fixture's intermediates; zero means 0.3.
	Intercepted float64
	// Leaves is how many distinct intercepted chains (a leaf per domain
	// and intermediate) are used; zero means 500.
	Leaves int
	// Networks and Domains are how many distinct ASNs and domains appear;
	// zero means 60 and 3000.
	Networks, Domains int
	// Seed makes the output reproducible.
	Seed uint64
}

// placeholders substituted on every line. They are JSON strings, so a
// template with them is still a JSON document until substituted.
const (
	phInput = "\u0001input\u0001"
	phASN   = "\u0001asn\u0001"
	phName  = "\u0001name\u0001"
	phTime  = "\u0001time\u0001"
	phRID   = "\u0001rid\u0001"
)

// template is a measurement cut at its placeholders.
type template struct {
	parts [][]byte // text between placeholders
	holes []string // the placeholder after each part but the last
	input string   // the input to keep, "" to vary it
}

func cut(doc map[string]any) (*template, error) {
	doc["input"] = phInput
	doc["probe_asn"] = phASN
	doc["probe_network_name"] = phName
	doc["measurement_start_time"] = phTime
	doc["report_id"] = phRID
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	t := &template{}
	for {
		i := bytes.Index(b, []byte(`"\u0001`))
		if i < 0 {
			t.parts = append(t.parts, b)
			return t, nil
		}
		j := bytes.Index(b[i+7:], []byte(`\u0001"`))
		if j < 0 {
			return nil, errors.New("analysistest: unterminated placeholder")
		}
		name := string(b[i+7 : i+7+j])
		t.parts = append(t.parts, b[:i])
		t.holes = append(t.holes, name)
		b = b[i+7+j+7:]
	}
}

// Write writes about size bytes of JSONL to w and returns the number of
// lines.
func (g *Generator) Write(w io.Writer, size int64) (int, error) {
	p, err := NewReportPKI()
	if err != nil {
		return 0, err
	}
	frac := g.Intercepted
	if frac == 0 {
		frac = 0.3
	}
	nLeaves, nNets, nDoms := g.Leaves, g.Networks, g.Domains
	if nLeaves == 0 {
		nLeaves = 500
	}
	if nNets == 0 {
		nNets = 60
	}
	if nDoms == 0 {
		nDoms = 3000
	}
	var real []*template
	for _, raw := range g.Templates {
		var doc map[string]any
		if err := json.Unmarshal(raw, &doc); err != nil {
			return 0, fmt.Errorf("analysistest: template: %w", err)
		}
		t, err := cut(doc)
		if err != nil {
			return 0, err
		}
		real = append(real, t)
	}
	// Intercepted templates: one per distinct chain.
	var kz []*template
	for i := range nLeaves {
		inter := i % len(ReportIntermediates)
		domain := fmt.Sprintf("%s.%d.example", ReportDomains[i%len(ReportDomains)], i/len(ReportDomains))
		// The time placeholder is replaced below, so any plan time works.
		m := p.OONIMeasurement(Sighting{Inter: inter, Time: "2024-01-01 00:00:00", ASN: "AS9198", Domain: domain})
		t, err := cut(m)
		if err != nil {
			return 0, err
		}
		t.input = "https://" + domain + "/"
		kz = append(kz, t)
	}
	if len(real) == 0 && frac < 1 {
		frac = 1
	}

	rng := rand.New(rand.NewPCG(g.Seed, 0x6b7a70726f6265))
	start := time.Date(2021, 6, 1, 0, 0, 0, 0, time.UTC).Unix()
	span := time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC).Unix() - start
	bw := bufio.NewWriterSize(w, 1<<20)
	var written int64
	lines := 0
	vals := map[string]string{}
	for written < size {
		var t *template
		net := rng.IntN(nNets)
		if rng.Float64() < frac {
			t = kz[rng.IntN(len(kz))]
			n := ReportNetworks[net%len(ReportNetworks)]
			vals["asn"], vals["name"] = n.ASN, n.Name
		} else {
			t = real[rng.IntN(len(real))]
			vals["asn"], vals["name"] = fmt.Sprintf("AS%d", 64512+net), fmt.Sprintf("Example Network %d", net)
		}
		ts := time.Unix(start+rng.Int64N(span), 0).UTC()
		vals["time"] = ts.Format(measurement.TimeLayout)
		vals["input"] = t.input
		if t.input == "" {
			vals["input"] = fmt.Sprintf("https://site%d.example/", rng.IntN(nDoms))
		}
		vals["rid"] = fmt.Sprintf("%s_webconnectivity_%s_n1_gen%d", ts.Format("20060102T150405Z"), vals["asn"], lines)
		for i, part := range t.parts {
			n, err := bw.Write(part)
			written += int64(n)
			if err != nil {
				return lines, err
			}
			if i < len(t.holes) {
				n, _ := fmt.Fprintf(bw, "%q", vals[t.holes[i]])
				written += int64(n)
			}
		}
		bw.WriteByte('\n')
		written++
		lines++
	}
	return lines, bw.Flush()
}
