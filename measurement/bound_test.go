package measurement

import (
	"bytes"
	"encoding/json"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// elements counts the slice elements of v, at any depth (bytes are not
// counted: they are one base64 string in JSON).
func elements(v reflect.Value) int {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return 0
		}
		return elements(v.Elem())
	case reflect.Struct:
		n := 0
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				n += elements(v.Field(i))
			}
		}
		return n
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return 0
		}
		n := v.Len()
		for i := range v.Len() {
			n += elements(v.Index(i))
		}
		return n
	case reflect.Map:
		n := 0
		for _, k := range v.MapKeys() {
			n += elements(v.MapIndex(k))
		}
		return n
	}
	return 0
}

// hostileLine is a kzprobe record whose field holds head, then elem
// repeated to about size bytes, then tail.
func hostileLine(head, elem, tail string, size int) string {
	n := (size - len(head) - len(tail)) / (len(elem) + 1)
	return `{"input":"h.example","test_keys":{"domain":"h.example","verdict":"ok",` + head + strings.Repeat(elem+",", n) + elem + tail + "}}"
}

// TestReadJSONLBoundsWhatALineDecodes: a line of a few MiB whose arrays
// hold millions of empty objects or strings (queries, answers,
// handshakes, certificates) decodes at most MaxLineElements of them, read
// in part and counted in Partial, and what it holds is bounded, where it
// held hundreds of megabytes.
func TestReadJSONLBoundsWhatALineDecodes(t *testing.T) {
	var good bytes.Buffer
	if err := NewWriter(&good, -1).Write(sampleMeasurement("a.example")); err != nil {
		t.Fatal(err)
	}
	const size = 4 << 20
	for _, tc := range []struct {
		name, head, elem, tail string
	}{
		{"queries", `"queries":[`, `{}`, `]`},
		{"answers", `"queries":[{"answers":[`, `{}`, `]}]`},
		{"cnames", `"control_queries":[{"cnames":[`, `""`, `]}]`},
		{"tls_handshakes", `"tls_handshakes":[`, `{}`, `]`},
		{"peer_certificates", `"tls_handshakes":[{"peer_certificates":[`, `""`, `]}]`},
		{"chains", `"chains":[`, `{}`, `]`},
		{"nested", `"queries":[`, `{"answers":[{},{},{},{},{},{},{},{}]}`, `]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := good.String() + hostileLine(tc.head, tc.elem, tc.tail, size) + "\n" + good.String()
			var got []*Measurement
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			st, err := ReadJSONL(strings.NewReader(in), func(m *Measurement) error {
				got = append(got, m)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			// What the decoded records hold (got keeps them).
			runtime.GC()
			runtime.ReadMemStats(&after)
			if held := int64(after.HeapAlloc) - int64(before.HeapAlloc); held > 16<<20 {
				t.Errorf("the records of a %d MiB line hold %d MiB; want under 16", size>>20, held>>20)
			}
			if len(got) != 3 || st.Bad != 0 || st.Partial != 1 || len(st.PartialLines) != 1 || st.PartialLines[0] != 2 {
				t.Fatalf("%d records, stats %+v; want 3 records, line 2 read in part", len(got), st)
			}
			h := got[1]
			if h.TestKeys.Domain != "h.example" || h.TestKeys.Verdict != VerdictOK {
				t.Errorf("the hostile record lost its domain or verdict: %q %q", h.TestKeys.Domain, h.TestKeys.Verdict)
			}
			if n := elements(reflect.ValueOf(h)); n > MaxLineElements {
				t.Errorf("the record holds %d elements; the bound is %d", n, MaxLineElements)
			}
		})
	}

	// A record within the bound decodes as encoding/json decodes it.
	var want, gotM Measurement
	json.Unmarshal(bytes.TrimSpace(good.Bytes()), &want)
	ReadJSONL(&good, func(m *Measurement) error { gotM = *m; return nil })
	if !reflect.DeepEqual(want, gotM) {
		t.Errorf("a record within the bound decodes differently:\n%+v\n%+v", gotM, want)
	}
}

// FuzzTrimElements: trimElements keeps valid JSON valid, keeps at most
// budget array elements, and changes nothing within the budget.
func FuzzTrimElements(f *testing.F) {
	f.Add([]byte(`{"a":[1,2,3,[4,5,6]],"b":{"c":[{},{},{}]},"d":"[,]","e":null,"f":true,"g":-1.5e3}`), 4)
	f.Add([]byte(`[[],[[]],[[],[]],"x\u00e9<>&",null]`), 2)
	f.Add([]byte(`{"queries":[{"answers":[{},{}]},{"answers":[{}]}]}`), 100)
	f.Fuzz(func(t *testing.T, data []byte, budget int) {
		if budget < 0 || budget > 64 || !json.Valid(data) {
			return
		}
		out, cut, err := trimElements(data, budget)
		if err != nil {
			return // nested past encoding/json's depth
		}
		if !json.Valid(out) {
			t.Fatalf("trimElements(%q, %d) = %q: not JSON", data, budget, out)
		}
		var in, o any
		json.Unmarshal(data, &in)
		json.Unmarshal(out, &o)
		kept, total := tokenElements(out), tokenElements(data)
		if kept > budget || kept+cut > total {
			t.Errorf("trimElements(%q, %d) = %q: %d elements kept and %d cut of %d", data, budget, out, kept, cut, total)
		}
		if cut == 0 && !reflect.DeepEqual(in, o) || total <= budget && cut != 0 {
			t.Errorf("trimElements(%q, %d) = %q, %d cut; the input has %d elements", data, budget, out, cut, total)
		}
	})
}

// tokenElements counts the array elements of the JSON value data, at any
// depth, with encoding/json's tokenizer (decoding into maps would lose
// the values of repeated keys).
func tokenElements(data []byte) int {
	dec := json.NewDecoder(bytes.NewReader(data))
	var arrays []bool // per open container: is it an array
	n := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return n
		}
		d, delim := tok.(json.Delim)
		if delim && (d == ']' || d == '}') {
			arrays = arrays[:len(arrays)-1]
			continue
		}
		if len(arrays) > 0 && arrays[len(arrays)-1] {
			n++
		}
		if delim {
			arrays = append(arrays, d == '[')
		}
	}
}
