package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"kzprobe/lab"
	"kzprobe/measurement"
)

// The records against OONI's data-format specifications (github.com/ooni/spec,
// data-formats/), field by field: each field's name, its JSON type, and
// whether it may be null or absent. The tables below are the specs' field
// lists, written down from:
//
//   - df-000-base.md, "Specification": the toplevel keys, data format 0.2.0;
//   - df-002-dnst.md, "Query" and "Answer": test_keys.queries;
//   - df-005-tcpconnect.md, "TCPConnect" and "Status": test_keys.tcp_connect;
//   - df-006-tlshandshake.md, "TLSHandshake": test_keys.tls_handshakes, whose
//     peer_certificates are df-001-httpt.md's BinaryData.
//
// Where a spec types a list and OONI's own measurements write null for an
// empty one (answers, tls_handshakes, ... in ../shared/data/ooni-samples,
// as probe-cli's archival types do), the field is nullable here too: OONI's
// tools read what OONI writes.

// specField is one field of a spec's object.
type specField struct {
	name string
	// typ is the JSON type: "string", "int" (a number without fraction or
	// exponent), "float" (any number), "bool", "object", "array" or "map"
	// (an object read as a map).
	typ string
	// elem is the type of an array's or a map's elements.
	elem string
	// null: the value may be null. opt: the spec lets the field be absent.
	null, opt bool
	// kz says what kzprobe does: kzAlways writes it in every object,
	// kzSometimes in some (rcode: only when a response arrived), kzNever
	// does not write it (the spec's other optional fields, listed for
	// completeness).
	kz kzWrites
	// fields are the fields of an object, or of each object element of an
	// array.
	fields []specField
	// check, when set, checks the value (not null).
	check func(v any) error
}

type kzWrites int

const (
	kzAlways kzWrites = iota
	kzSometimes
	kzNever
)

// df-000-base.md, "Specification". bucket_date, id, report_filename and
// backend_version are the backend's, never a probe's; input_hashes and
// probe_city are optional and kzprobe has no value for them.
var specBase = []specField{
	{name: "annotations", typ: "map", elem: "string", opt: true},
	{name: "backend_version", typ: "string", opt: true, kz: kzNever},
	{name: "bucket_date", typ: "string", opt: true, kz: kzNever},
	{name: "data_format_version", typ: "string", check: equals("0.2.0")},
	{name: "extensions", typ: "map", elem: "int", opt: true},
	{name: "id", typ: "string", opt: true, kz: kzNever},
	{name: "input", typ: "string", null: true},
	{name: "input_hashes", typ: "array", elem: "string", opt: true, kz: kzNever},
	{name: "measurement_start_time", typ: "string", check: matches(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$`)},
	{name: "options", typ: "array", elem: "string", opt: true},
	{name: "probe_asn", typ: "string", check: matches(`^AS\d+$`)},
	{name: "probe_cc", typ: "string", check: matches(`^[A-Z]{2}$`)},
	{name: "probe_city", typ: "string", null: true, opt: true, kz: kzNever},
	{name: "probe_ip", typ: "string", opt: true},
	{name: "probe_network_name", typ: "string", opt: true},
	{name: "report_filename", typ: "string", opt: true, kz: kzNever},
	{name: "report_id", typ: "string"},
	{name: "resolver_asn", typ: "string", opt: true, check: matches(`^AS\d+$`)},
	{name: "resolver_ip", typ: "string", opt: true},
	{name: "resolver_network_name", typ: "string", opt: true},
	{name: "software_name", typ: "string"},
	{name: "software_version", typ: "string"},
	{name: "test_helpers", typ: "map", elem: "object", null: true, opt: true},
	{name: "test_keys", typ: "object"},
	{name: "test_name", typ: "string"},
	{name: "test_runtime", typ: "float"},
	{name: "test_start_time", typ: "string", check: matches(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$`)},
	{name: "test_version", typ: "string", check: matches(`^\d+\.\d+\.\d+$`)},
}

// kzprobeBase are the toplevel keys kzprobe writes that df-000 does not
// name: any other is a new key that this test should know of.
var kzprobeBase = []string{"measurement_uid"}

// df-002-dnst.md, "Answer".
var specAnswer = []specField{
	{name: "answer_type", typ: "string"},
	{name: "asn", typ: "int", opt: true, kz: kzNever},
	{name: "as_org_name", typ: "string", opt: true, kz: kzNever},
	{name: "hostname", typ: "string", opt: true, kz: kzSometimes},
	{name: "ipv4", typ: "string", opt: true, kz: kzSometimes},
	{name: "ipv6", typ: "string", opt: true, kz: kzSometimes},
	{name: "ttl", typ: "int", null: true},
}

// df-002-dnst.md, "Query". The SOA fields of Answer are left out: kzprobe
// asks A and AAAA only.
var specQuery = []specField{
	{name: "answers", typ: "array", elem: "object", null: true, fields: specAnswer},
	{name: "dial_id", typ: "int", opt: true, kz: kzNever},
	{name: "engine", typ: "string", opt: true, check: oneOf("udp", "tcp", "dot", "doh")},
	{name: "failure", typ: "string", null: true},
	{name: "getaddrinfo_error", typ: "int", opt: true, kz: kzNever},
	{name: "hostname", typ: "string"},
	{name: "query_type", typ: "string", check: oneOf("A", "AAAA")},
	// "an optional base64 string": null where a response was withheld or
	// none arrived, as probe-cli writes a missing one.
	{name: "raw_response", typ: "string", null: true, opt: true, check: base64String},
	{name: "rcode", typ: "int", opt: true, kz: kzSometimes},
	{name: "resolver_address", typ: "string"},
	{name: "resolver_hostname", typ: "string", null: true, opt: true, kz: kzNever},
	{name: "resolver_port", typ: "string", null: true, opt: true, kz: kzNever},
	{name: "t0", typ: "float"},
	{name: "t", typ: "float"},
	{name: "transaction_id", typ: "int", opt: true, kz: kzNever},
}

// df-005-tcpconnect.md, "TCPConnect" and "Status".
var specTCPConnect = []specField{
	{name: "ip", typ: "string"},
	{name: "port", typ: "int"},
	{name: "status", typ: "object", fields: []specField{
		{name: "failure", typ: "string", null: true},
		{name: "success", typ: "bool"},
	}},
}

// df-001-httpt.md, "BinaryData".
var specBinaryData = []specField{
	{name: "data", typ: "string", check: base64String},
	{name: "format", typ: "string", check: equals("base64")},
}

// df-006-tlshandshake.md, "TLSHandshake".
var specTLSHandshake = []specField{
	{name: "address", typ: "string"},
	{name: "cipher_suite", typ: "string"},
	{name: "conn_id", typ: "int", opt: true, kz: kzNever},
	{name: "failure", typ: "string", null: true},
	{name: "negotiated_protocol", typ: "string"},
	{name: "no_tls_verify", typ: "bool"},
	// null where no certificate came (a failed handshake), as probe-cli
	// writes it; an entry is null where a certificate was withheld for
	// privacy (withheld_certificates says which).
	{name: "peer_certificates", typ: "array", elem: "object", null: true, fields: specBinaryData},
	{name: "t", typ: "float"},
	{name: "tags", typ: "array", elem: "string"},
	{name: "tls_version", typ: "string"},
	{name: "transaction_id", typ: "int", opt: true, kz: kzNever},
}

// specTestKeys are the test_keys of df-002, df-005 and df-006 (each a
// list; null when empty, as OONI writes it), and kzprobe's own keys that
// hold the same objects: the control resolver's queries.
var specTestKeys = []specField{
	{name: "queries", typ: "array", elem: "object", null: true, fields: specQuery},
	{name: "control_queries", typ: "array", elem: "object", null: true, fields: specQuery},
	{name: "tcp_connect", typ: "array", elem: "object", null: true, fields: specTCPConnect},
	{name: "tls_handshakes", typ: "array", elem: "object", null: true, fields: specTLSHandshake},
}

// TestRecordsFollowOONISpecs runs `kzprobe run` against the default lab
// scenario (every verdict), one target given as a URL with a path, and
// checks every record it wrote against the spec tables above, and the
// values the envelope owes OONI: the input as given, and a report_id in
// the shape OONI's collectors give, with the ASN and the country.
func TestRecordsFollowOONISpecs(t *testing.T) {
	clearEnv(t)
	l, dir, files := startLab(t, lab.Config{Scenario: lab.DefaultScenario()})
	cfg := labConfig(l, files, dir)
	const url = "https://wikipedia.org/wiki/Main_Page?action=history"
	args := strings.Fields(labCommandLine(cfg))[2:] // drop "kzprobe run"
	if i := slices.Index(args, "wikipedia.org"); i < 0 || args[i-1] != "-d" {
		t.Fatalf("no -d wikipedia.org in %v", args)
	} else {
		args[i] = url
	}
	out := filepath.Join(dir, "run.jsonl")
	args = append([]string{"run", "-q", "-o", out, "--cc", "KZ", "--asn", "AS9198"}, args...)
	if code := execute(args); code != exitOK {
		t.Fatalf("kzprobe %s: exit %d", strings.Join(args, " "), code)
	}

	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, measurement.MaxLineBytes)
	verdicts := map[string]bool{}
	seen := map[string]bool{} // spec fields seen, by path
	n := 0
	for sc.Scan() {
		n++
		var rec map[string]any
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.UseNumber()
		if err := dec.Decode(&rec); err != nil {
			t.Fatalf("line %d: %v", n, err)
		}
		tk, _ := rec["test_keys"].(map[string]any)
		name := fmt.Sprintf("line %d (%v)", n, tk["domain"])
		var errs []string
		checkObject(rec, specBase, "", seen, &errs)
		checkObject(tk, specTestKeys, "test_keys.", seen, &errs)
		for k := range rec {
			if !slices.ContainsFunc(specBase, func(f specField) bool { return f.name == k }) && !slices.Contains(kzprobeBase, k) {
				errs = append(errs, fmt.Sprintf("%s: a toplevel key df-000 does not name (add it to kzprobeBase if it is meant)", k))
			}
		}
		if tk["domain"] == "wikipedia.org" && rec["input"] != url {
			errs = append(errs, fmt.Sprintf("input %q; want the target as given, %q", rec["input"], url))
		}
		if id, _ := rec["report_id"].(string); !regexp.MustCompile(`^\d{8}T\d{6}Z_kzprobetlsmitm_KZ_9198_n0_[A-Z2-7]{16}$`).MatchString(id) {
			errs = append(errs, fmt.Sprintf("report_id %q; want OONI's shape: time_kzprobetlsmitm_KZ_9198_n0_random", id))
		}
		for _, e := range errs {
			t.Errorf("%s: %s", name, e)
		}
		v, _ := tk["verdict"].(string)
		verdicts[v] = true
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for _, v := range measurement.Verdicts() {
		if !verdicts[string(v)] {
			t.Errorf("no record with verdict %s: the lab run does not cover every kind of record", v)
		}
	}
	// Every field kzprobe writes in every object was seen: the tables are
	// not checked against nothing (a run without a single handshake would
	// check none of df-006). The kzSometimes ones may not come up in a lab
	// (a CNAME's hostname).
	var never []string
	mark := func(path string, f specField) {
		if f.kz == kzAlways && !seen[path] {
			never = append(never, path)
		}
	}
	walkSpec(specBase, "", mark)
	walkSpec(specTestKeys, "test_keys.", mark)
	if len(never) > 0 {
		t.Errorf("fields kzprobe writes that no record of the run had: %v", never)
	}
}

// checkObject checks obj against fields, appending what differs to errs
// and marking the fields present in seen, by path (prefix + name; "[]"
// for the elements of an array).
func checkObject(obj map[string]any, fields []specField, prefix string, seen map[string]bool, errs *[]string) {
	for _, f := range fields {
		path := prefix + f.name
		v, ok := obj[f.name]
		switch {
		case !ok && f.kz == kzAlways:
			*errs = append(*errs, path+": absent; kzprobe writes it in every record")
			continue
		case !ok && !f.opt:
			*errs = append(*errs, path+": absent; the spec requires it")
			continue
		case !ok:
			continue
		case f.kz == kzNever:
			*errs = append(*errs, path+": present; the table says kzprobe never writes it")
		}
		seen[path] = true
		if v == nil {
			if !f.null {
				*errs = append(*errs, path+": null; the spec types it "+f.typ)
			}
			continue
		}
		if msg := typeError(v, f.typ); msg != "" {
			*errs = append(*errs, path+": "+msg)
			continue
		}
		if f.check != nil {
			if err := f.check(v); err != nil {
				*errs = append(*errs, path+": "+err.Error())
			}
		}
		switch f.typ {
		case "object":
			if f.fields != nil {
				checkObject(v.(map[string]any), f.fields, path+".", seen, errs)
			}
		case "array":
			for i, e := range v.([]any) {
				if e == nil && f.name == "peer_certificates" {
					continue // a withheld certificate
				}
				if msg := typeError(e, f.elem); msg != "" {
					*errs = append(*errs, fmt.Sprintf("%s[%d]: %s", path, i, msg))
				} else if f.fields != nil {
					checkObject(e.(map[string]any), f.fields, path+"[].", seen, errs)
				}
			}
		case "map":
			for k, e := range v.(map[string]any) {
				if msg := typeError(e, f.elem); msg != "" {
					*errs = append(*errs, path+"."+k+": "+msg)
				}
			}
		}
	}
}

// walkSpec calls fn for every field of fields, and of their objects, with
// the path checkObject marks it under.
func walkSpec(fields []specField, prefix string, fn func(path string, f specField)) {
	for _, f := range fields {
		path := prefix + f.name
		fn(path, f)
		switch f.typ {
		case "object":
			walkSpec(f.fields, path+".", fn)
		case "array":
			walkSpec(f.fields, path+"[].", fn)
		}
	}
}

// typeError says how v (decoded with UseNumber) is not of JSON type typ,
// "" when it is.
func typeError(v any, typ string) string {
	ok := false
	switch typ {
	case "string":
		_, ok = v.(string)
	case "int":
		if n, isNum := v.(json.Number); isNum {
			_, err := strconv.ParseInt(string(n), 10, 64)
			ok = err == nil
		}
	case "float":
		_, ok = v.(json.Number)
	case "bool":
		_, ok = v.(bool)
	case "object", "map":
		_, ok = v.(map[string]any)
	case "array":
		_, ok = v.([]any)
	default:
		return "unknown spec type " + typ
	}
	if ok {
		return ""
	}
	return fmt.Sprintf("%s is not of type %s", truncate(fmt.Sprint(v), 40), typ)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func equals(want string) func(any) error {
	return func(v any) error {
		if v != want {
			return fmt.Errorf("%v; want %q", v, want)
		}
		return nil
	}
}

func matches(re string) func(any) error {
	r := regexp.MustCompile(re)
	return func(v any) error {
		if s, _ := v.(string); !r.MatchString(s) {
			return fmt.Errorf("%q does not match %s", s, re)
		}
		return nil
	}
}

func oneOf(vals ...string) func(any) error {
	return func(v any) error {
		if s, _ := v.(string); !slices.Contains(vals, s) {
			return fmt.Errorf("%q; want one of %v", s, vals)
		}
		return nil
	}
}

func base64String(v any) error {
	var b []byte
	s, _ := v.(string)
	return json.Unmarshal([]byte(strconv.Quote(s)), &b) // encoding/json reads []byte as standard base64
}
