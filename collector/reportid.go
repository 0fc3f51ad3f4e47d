package collector

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// SetReportID returns line, a JSON object, with the value of its
// top-level report_id replaced by id (replaced is true), or, when it has
// none, with "report_id":id inserted as its first key; every other byte is
// unchanged. A line with two report_id keys is an error.
func SetReportID(line []byte, id string) (out []byte, replaced bool, err error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, false, errors.New("collector: the record is not a JSON object")
	}
	start, end := int64(-1), int64(-1)
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, false, fmt.Errorf("collector: reading the record: %w", err)
		}
		key, _ := t.(string)
		after := dec.InputOffset()
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false, fmt.Errorf("collector: reading the record: %w", err)
		}
		if key != "report_id" {
			continue
		}
		if start >= 0 {
			return nil, false, errors.New("collector: the record has two report_id keys")
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, false, errors.New("collector: the record's report_id is not a string")
		}
		end = dec.InputOffset()
		start = after + int64(bytes.IndexByte(line[after:end], '"'))
	}
	if _, err := dec.Token(); err != nil {
		return nil, false, fmt.Errorf("collector: reading the record: %w", err)
	}
	if rest := bytes.Trim(line[dec.InputOffset():], " \t\r\n"); len(rest) > 0 { // JSON's white space only
		return nil, false, errors.New("collector: the record has data after its JSON object")
	}
	enc, _ := json.Marshal(id)
	if start < 0 {
		i := bytes.IndexByte(line, '{') + 1
		sep := ","
		if bytes.Equal(bytes.TrimSpace(line[i:]), []byte("}")) {
			sep = ""
		}
		out = make([]byte, 0, len(line)+len(enc)+14)
		out = append(out, line[:i]...)
		out = append(out, `"report_id":`...)
		out = append(out, enc...)
		out = append(out, sep...)
		return append(out, line[i:]...), false, nil
	}
	out = make([]byte, 0, len(line)+len(enc))
	out = append(out, line[:start]...)
	out = append(out, enc...)
	return append(out, line[end:]...), true, nil
}
