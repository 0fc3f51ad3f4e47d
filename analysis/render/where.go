package render

import (
	"html/template"
	"strconv"
	"strings"

	"kzprobe/analysis"
	"kzprobe/measurement"
)

// The trace's tables: where on the path each target was answered
// (analysis.WhereResult), and the boxes that answered.

func isTraceTable(name string) bool { return name == TableWhere || name == TableBoxes }

func hop(p *int) string {
	if p == nil {
		return ""
	}
	return strconv.Itoa(*p)
}

func hops(ps []int) string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = strconv.Itoa(p)
	}
	return strings.Join(out, " ")
}

// destinationText is the destination's distance and how it was learnt
// ("4 (udp)").
func destinationText(f *measurement.TraceFinding) string {
	if f.DestinationHops == nil {
		return ""
	}
	s := strconv.Itoa(*f.DestinationHops)
	if f.DestinationHopsFrom != "" {
		s += " (" + f.DestinationHopsFrom + ")"
	}
	return s
}

func proxyText(p *bool) string {
	switch {
	case p == nil:
		return ""
	case *p:
		return "yes"
	}
	return "no"
}

const whereNote = "From kzprobe trace: interference_hop is the hop whose box answered the target SNI in place of its server " +
	"(interception: a chain of an interception PKI or one the control did not get; reset, eof, alert), destination_hops the server's " +
	"distance (udp: its own port unreachable; tcp: whatever answered, maybe a proxy); answering_hop and before_hop are the routers at " +
	"that hop and one before, as /24 (/48) prefix and AS number (private, cgnat, vantage: no address recorded). " +
	"Trace records are counted in no other table."

func whereTable(w *analysis.WhereResult) Table {
	t := Table{
		Name:  TableWhere,
		Title: "Where on the path",
		Header: []string{"asn", "network", "domain", "interference", "interference_hop", "destination_hops", "transparent_proxy",
			"control", "answering_hop", "before_hop", "silent_hops", "time", "traces"},
		Note: whereNote,
	}
	if w == nil {
		return t
	}
	for _, r := range w.Rows {
		f := &r.Finding
		t.Rows = append(t.Rows, []string{
			r.ASN, r.Network, r.Domain, f.Interference, hop(f.InterferenceHop), destinationText(f), proxyText(f.TransparentProxy),
			f.ControlTravels, analysis.HopText(f.AnsweringHop), analysis.HopText(f.BeforeHop), hops(f.SilentHops),
			FormatTime(r.Time), strconv.Itoa(r.Traces),
		})
	}
	return t
}

func boxesTable(w *analysis.WhereResult) Table {
	t := Table{
		Name:   TableBoxes,
		Title:  "Boxes that answered in the servers' place",
		Header: []string{"prefix", "asn", "network_name", "networks", "shared", "same_asn_networks", "hops", "interference", "targets"},
		Note: "One row per answering hop (its prefix and AS number) of the where table's interfered targets. shared: it answered for " +
			"more than one vantage network, one box upstream of them; same_asn_networks counts the vantage networks answered by any box of its AS.",
	}
	if w == nil {
		return t
	}
	for _, b := range w.Boxes {
		shared := "no"
		if b.Shared {
			shared = "yes"
		}
		prefix := b.Prefix
		if prefix == "" {
			prefix = "(" + b.Class + ")"
		}
		t.Rows = append(t.Rows, []string{
			prefix, b.ASN, b.NetworkName, list(b.Networks), shared, strconv.Itoa(b.SameASN), hops(b.Hops), list(b.Interference), list(b.Targets),
		})
	}
	return t
}

func hHop(h *measurement.TraceHop) template.HTML {
	s := analysis.HopText(h)
	if s == "" {
		return ""
	}
	return `<span class="nw">` + hText(s) + `</span>`
}

func hOpt(s string) template.HTML { return hText(s) }

func whereHTML(w *analysis.WhereResult) htmlTable {
	t := htmlTable{
		ID: "where", Cards: 1200, Title: "Where on the path",
		Intro: "kzprobe trace: the ClientHello sent with the TTL set to 1, 2, 3 …; the hop whose box answered the target in its server's place, " +
			"the server's own distance, and the routers at that hop and one before. Trace records are counted in no other table.",
		Cols: cols("ASN", "network", "domain", "interference", "#hop", "#destination hops|destination", "transparent proxy|proxy",
			"control", "answering hop", "hop before", "silent hops", "time", "#traces"),
		Empty: "No trace.",
		Note:  whereNote,
	}
	for _, r := range w.Rows {
		f := &r.Finding
		inter := hText(f.Interference)
		if f.Interference != "" && f.Interference != measurement.InterferenceNone {
			inter = `<span class="warn">` + inter + `</span>`
		}
		t.Rows = append(t.Rows, []template.HTML{
			hText(networkLabel(r.ASN)), hText(r.Network), hText(r.Domain), inter, hOpt(hop(f.InterferenceHop)), hOpt(destinationText(f)),
			hOpt(proxyText(f.TransparentProxy)), hText(f.ControlTravels), hHop(f.AnsweringHop), hHop(f.BeforeHop), hOpt(hops(f.SilentHops)),
			hTime(r.Time), hNum(r.Traces),
		})
	}
	return t
}

func boxesHTML(w *analysis.WhereResult) htmlTable {
	t := htmlTable{
		ID: "boxes", Cards: 920, Title: "Boxes that answered in the servers' place", Sub: true,
		Cols:  cols("prefix", "ASN", "network name", "vantage networks", "shared", "#same-AS networks", "hops", "interference", "targets"),
		Empty: "No target was answered by a box on the way.",
		Note:  "Shared: the box answered for more than one vantage network, one box upstream of them.",
	}
	for _, b := range w.Boxes {
		shared := template.HTML("no")
		if b.Shared {
			shared = `<b class="warn">yes</b>`
		}
		prefix := b.Prefix
		if prefix == "" {
			prefix = "(" + b.Class + ")"
		}
		t.Rows = append(t.Rows, []template.HTML{
			`<span class="nw">` + hText(prefix) + `</span>`, hText(b.ASN), hText(b.NetworkName), hList(b.Networks), shared, hNum(b.SameASN),
			hText(hops(b.Hops)), hText(list(b.Interference)), hList(b.Targets),
		})
	}
	return t
}
