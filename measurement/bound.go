package measurement

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
)

// MaxLineElements bounds the array elements one line may decode, all its
// arrays together (queries, answers, handshakes, certificates, chains and
// what they hold): past it, every array of the line is cut. The line bound
// (MaxLineBytes) counts bytes, not objects: 64 MiB of `{},` are 22
// million DNS queries, gigabytes once decoded. A kzprobe record
// holds a few hundred.
const MaxLineElements = 20_000

// unmarshalBounded decodes the line b into m within MaxLineElements,
// returning how many array elements it left out. A line with fewer commas
// than the bound cannot pass it (each element past an array's first
// follows a comma, and nesting is bounded by encoding/json) and is decoded
// directly; any other is first copied without the elements past the
// bound (trimElements).
func unmarshalBounded(b []byte, m *Measurement) (cut int, err error) {
	if bytes.Count(b, []byte{','}) < MaxLineElements {
		return 0, json.Unmarshal(b, m)
	}
	trimmed, cut, err := trimElements(b, MaxLineElements)
	if err != nil {
		return 0, err
	}
	return cut, json.Unmarshal(trimmed, m)
}

// trimElements copies the JSON value b keeping array elements, at any
// depth and in order, until budget of them are kept, and leaving out every
// element after; it returns the copy and how many elements it left out
// (each counted once, whatever it holds). It reads b with encoding/json's
// tokenizer, so it costs a scan of b and no more memory than the copy.
func trimElements(b []byte, budget int) (out []byte, cut int, err error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	// Each open container: whether it is an array, and its tokens so far
	// (an object's alternate key, value).
	type level struct {
		array bool
		n     int
	}
	var stack []level
	skip, kept := 0, 0 // depth inside an element left out; elements kept
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return out, cut, nil
		}
		if err != nil {
			return nil, 0, err
		}
		d, delim := tok.(json.Delim)
		closing := delim && (d == '}' || d == ']')
		switch {
		case skip > 0:
			if closing {
				skip--
			} else if delim {
				skip++
			}
			continue
		case closing:
			stack = stack[:len(stack)-1]
			out = append(out, byte(d))
			continue
		}
		if top := len(stack) - 1; top >= 0 {
			lv := &stack[top]
			switch {
			case lv.array && kept >= budget:
				cut++
				if delim {
					skip = 1
				}
				continue
			case lv.array:
				kept++
				if lv.n > 0 {
					out = append(out, ',')
				}
			case lv.n%2 == 1:
				out = append(out, ':')
			case lv.n > 0:
				out = append(out, ',')
			}
			lv.n++
		}
		switch v := tok.(type) {
		case json.Delim:
			out = append(out, byte(v))
			stack = append(stack, level{array: v == '['})
		case string:
			q, _ := json.Marshal(v)
			out = append(out, q...)
		case json.Number:
			out = append(out, v...)
		case bool:
			out = strconv.AppendBool(out, v)
		case nil:
			out = append(out, "null"...)
		}
	}
}
