package main

import (
	"bytes"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Configuration errors in plain words: what a key's value is and what it
// should be, instead of Go's strconv and mapstructure messages, and the
// line of a YAML syntax error where the mistake is.

// scalarHook decodes the whole numbers and booleans of the configuration,
// whichever source gives them (a file's YAML, KZPROBE_* text, a flag), and
// says what is wrong with a value that is not one: `is "abc", not a whole
// number` where the decoder said `strconv.ParseInt: invalid syntax`.
func scalarHook(_, to reflect.Type, data any) (any, error) {
	switch to.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if to == reflect.TypeFor[time.Duration]() {
			return data, nil // durationHook's
		}
		switch v := data.(type) {
		case string:
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, to.Bits())
			if err != nil {
				return nil, fmt.Errorf("is %q, not a whole number", v)
			}
			return n, nil
		case float32, float64:
			f := reflect.ValueOf(v).Float()
			if f != float64(int64(f)) {
				return nil, fmt.Errorf("is %v, not a whole number", v)
			}
			return int64(f), nil
		case bool:
			return nil, fmt.Errorf("is %v, not a whole number", v)
		}
		if isCollection(data) {
			return nil, fmt.Errorf("is %s, not a whole number", describeCollection(data))
		}
	case reflect.Bool:
		switch v := data.(type) {
		case string:
			b, err := strconv.ParseBool(strings.TrimSpace(v))
			if err != nil {
				return nil, fmt.Errorf("is %q, not true or false", v)
			}
			return b, nil
		case int, int64, float64:
			return nil, fmt.Errorf("is %v, not true or false", v)
		}
		if isCollection(data) {
			return nil, fmt.Errorf("is %s, not true or false", describeCollection(data))
		}
	case reflect.String:
		if isCollection(data) {
			return nil, fmt.Errorf("is %s, not a single value", describeCollection(data))
		}
	}
	return data, nil
}

func isCollection(data any) bool {
	if data == nil {
		return false
	}
	k := reflect.TypeOf(data).Kind()
	return k == reflect.Slice || k == reflect.Map
}

func describeCollection(data any) string {
	if reflect.TypeOf(data).Kind() == reflect.Map {
		return "a mapping of keys"
	}
	return "a list"
}

// yamlLine finds "line N:" in a YAML error.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlSyntaxError is the error of a configuration file that is not valid
// YAML, naming the line where the mistake is, with its text. The YAML
// parser names the line where the construct that failed began (for a key
// indented one space too far, the key before it); the first prefix of the
// file that fails the same way ends at the line that is wrong.
func yamlSyntaxError(file string, data []byte, err error) error {
	msg := err.Error()
	line := 0
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	if len(lines) <= 2000 { // a configuration file; bounded work
		for k := 1; k <= len(lines); k++ {
			var n yaml.Node
			perr := yaml.Unmarshal(bytes.Join(lines[:k], nil), &n)
			if perr == nil {
				continue
			}
			pmsg := perr.Error()
			if m := yamlLine.FindStringSubmatch(pmsg); m != nil {
				pmsg = m[2]
			}
			if pmsg == msg {
				line = k
				break
			}
		}
	}
	if line < 1 || line > len(lines) {
		return fmt.Errorf("%w: %s: not valid YAML: %s", ErrConfig, file, msg)
	}
	text := strings.TrimRight(string(lines[line-1]), "\r\n")
	return fmt.Errorf("%w: %s:%d: not valid YAML (%s): %q", ErrConfig, file, line, msg, text)
}
