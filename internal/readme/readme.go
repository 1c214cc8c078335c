// Package readme finds a section of the repository's README.md, so that
// tests can hold what the README promises to what the code does.
package readme

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Section returns the text under heading (e.g. "### Message examples") up
// to the next heading of any level. README.md is looked for in the
// current directory and its parents, so any package's test can call it.
func Section(t testing.TB, heading string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "README.md"))
		if err == nil {
			_, section, ok := strings.Cut(string(data), "\n"+heading+"\n")
			if !ok {
				t.Fatalf("README.md has no %q section", heading)
			}
			if end := strings.Index(section, "\n#"); end >= 0 {
				section = section[:end]
			}
			return section
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no README.md in this directory or above")
		}
		dir = parent
	}
}
