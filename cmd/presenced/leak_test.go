package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryPackageChecksForLeakedGoroutines keeps the rule that every
// package with tests runs them under goleak.VerifyTestMain, so that a
// goroutine without an owner and a stop fails its package's tests.
func TestEveryPackageChecksForLeakedGoroutines(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	withTests := map[string]bool{} // directory: has goleak.VerifyTestMain
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules") && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		dir := filepath.Dir(path)
		withTests[dir] = withTests[dir] || strings.Contains(string(src), "goleak.VerifyTestMain(")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(withTests) < 5 {
		t.Fatalf("found tests in only %d directories under %s; the walk is broken", len(withTests), root)
	}
	for dir, ok := range withTests {
		if !ok {
			rel, _ := filepath.Rel(root, dir)
			t.Errorf("package %s has tests but no TestMain calling goleak.VerifyTestMain", rel)
		}
	}
}
