package loadgen

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
)

// ReadLines decodes the JSON lines that presence-bench printed into files
// (one result a line) into values of T, in order, skipping lines that are
// not JSON objects: progress and other text mixed into the file.
func ReadLines[T any](paths ...string) ([]T, error) {
	var out []T
	for _, path := range paths {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 16<<20)
		for n := 1; sc.Scan(); n++ {
			if len(sc.Bytes()) == 0 || sc.Bytes()[0] != '{' {
				continue
			}
			var r T
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				f.Close()
				return nil, fmt.Errorf("%s:%d: %w", path, n, err)
			}
			out = append(out, r)
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	return out, nil
}
