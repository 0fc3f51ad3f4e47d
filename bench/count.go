package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// countVerdicts counts the lines of a JSONL output and their verdicts.
func countVerdicts(path string) (int, map[string]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, nil, fmt.Errorf("counting the verdicts: %w", err)
	}
	defer f.Close()
	return countVerdictLines(f)
}

// countVerdictLines counts the lines of JSONL measurements read from r and
// their verdicts. It looks for the "verdict" key in each line rather than
// decoding it: a million records are counted in seconds.
func countVerdictLines(r io.Reader) (int, map[string]int, error) {
	n, verdicts := 0, map[string]int{}
	key := []byte(`"verdict":"`)
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A long line: its verdict is in the test keys, after the
			// chains; read on to the end of the line.
			var long []byte
			long = append(long, line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if len(line) > 0 {
			n++
			if i := bytes.Index(line, key); i >= 0 {
				v := line[i+len(key):]
				if j := bytes.IndexByte(v, '"'); j >= 0 {
					verdicts[string(v[:j])]++
				}
			}
		}
		if err == io.EOF {
			return n, verdicts, nil
		}
		if err != nil {
			return n, verdicts, err
		}
	}
}
