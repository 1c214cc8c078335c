// Package needs is how a test says that it needs something the machine
// may lack (a PostgreSQL server, Node, Chromium), so that what did not run
// is said where the person who ran `go test ./...` sees it, without -v.
//
// A test calls [Missing] when a requirement is absent: the test skips,
// or fails under CI=true, because CI must not pass by skipping. The
// package's TestMain runs its tests through [Main], which, once they are
// done, runs the functions given to [AtEnd] and writes one short block
// naming each skipped test, what it lacked and the command that provides
// it:
//
//	func TestMain(m *testing.M) { goleak.VerifyTestMain(needs.Main(m)) }
//
// # Where the block goes
//
// go test ./... discards everything a passing package's test binary
// writes, skip messages included, unless -v is given. So the block goes
// to the go command's own standard error (/proc/<parent>/fd/2, on Linux)
// when the test binary runs under go test in that mode and that stream is
// a pipe or a terminal; elsewhere (-v, -json, a single package run in its
// directory, a binary run by hand, other systems) it goes to the binary's
// own standard error, which is then shown. A regular file is not written
// behind the go command's back: the two writers' offsets would clash.
//
// go test caches a passing result and replays it without running the
// binary, so the block shows when the tests run, not on a cached replay;
// the command it names therefore ends with -count=1.
package needs

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

var (
	mu      sync.Mutex
	active  bool       // Main runs the tests
	atEnd   []func()   // run after the tests, last registered first
	skipped []skipNote // in the order the tests skipped
)

type skipNote struct{ test, what, enable string }

// Missing skips t because what (e.g. "node is not on PATH") is missing,
// or fails it under CI=true. enable is the one command that provides it,
// e.g. "apt-get install nodejs npm". The skip is reported when the
// package's tests end; Missing fails t when TestMain does not run them
// through Main, since the report would then be lost.
func Missing(t testing.TB, what, enable string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true, so this test must run, but %s (to provide it: %s)", what, enable)
	}
	mu.Lock()
	ok := active
	if ok {
		skipped = append(skipped, skipNote{test: t.Name(), what: what, enable: enable})
	}
	mu.Unlock()
	if !ok {
		t.Fatalf("%s, and this package's TestMain does not report skips: make it goleak.VerifyTestMain(needs.Main(m))", what)
	}
	t.Skipf("skipped: %s (to run it: %s)", what, enable)
}

// AtEnd registers f to run once the package's tests are done, before the
// goroutine-leak check; a resource shared by the tests of one binary (a
// private PostgreSQL server) is stopped there. It reports false when
// TestMain does not run the tests through Main, so that f would never
// run.
func AtEnd(f func()) bool {
	mu.Lock()
	defer mu.Unlock()
	if active {
		atEnd = append(atEnd, f)
	}
	return active
}

// M runs a package's tests; see Main.
type M struct{ m *testing.M }

// Main wraps m for goleak.VerifyTestMain (or any caller of Run).
func Main(m *testing.M) M { return M{m} }

// Run runs the tests, then the AtEnd functions, then writes the report of
// skipped tests. It returns the tests' exit code.
func (m M) Run() int {
	mu.Lock()
	active = true
	mu.Unlock()
	code := m.m.Run()
	mu.Lock()
	ends, notes := atEnd, skipped
	atEnd, skipped, active = nil, nil, false
	mu.Unlock()
	for _, f := range slices.Backward(ends) {
		f()
	}
	if block := report(packageName(), notes); block != "" {
		w, closeW := reportWriter()
		_, _ = io.WriteString(w, block) // one write: lines of parallel packages do not mix
		closeW()
	}
	return code
}

// report formats the block for the skips of pkg: one entry per
// requirement, naming the tests it held back and the command that
// provides it. It is empty when nothing skipped.
func report(pkg string, notes []skipNote) string {
	if len(notes) == 0 {
		return ""
	}
	type req struct{ what, enable string }
	var order []req
	tests := map[req][]string{}
	for _, n := range notes {
		r := req{n.what, n.enable}
		if _, seen := tests[r]; !seen {
			order = append(order, r)
		}
		tests[r] = append(tests[r], n.test)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "--- SKIP %s: %d test(s) did not run\n", pkg, len(notes))
	for _, r := range order {
		fmt.Fprintf(&b, "    %s: %s\n", strings.Join(tests[r], ", "), r.what)
		fmt.Fprintf(&b, "      to run them: %s, then go test -count=1 %s\n", r.enable, pkg)
	}
	return b.String()
}

// packageName names the package under test as go test's summary does, by
// its directory relative to the module's root ("./web").
func packageName() string {
	dir, err := os.Getwd()
	if err != nil {
		return "this package"
	}
	for root := dir; ; {
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
			rel, err := filepath.Rel(root, dir)
			if err != nil || rel == "." {
				return "."
			}
			return "./" + filepath.ToSlash(rel)
		}
		parent := filepath.Dir(root)
		if parent == root {
			return dir
		}
		root = parent
	}
}

// reportWriter picks where the block is seen (see the package comment).
func reportWriter() (io.Writer, func()) {
	own := func() (io.Writer, func()) { return os.Stderr, func() {} }
	if v := flag.Lookup("test.v"); v != nil && v.Value.String() != "false" {
		return own() // -v or -json: go test shows this binary's output
	}
	parent := fmt.Sprintf("/proc/%d", os.Getppid())
	exe, err := os.Readlink(parent + "/exe")
	if err != nil || strings.TrimSuffix(filepath.Base(exe), ".exe") != "go" {
		return own()
	}
	if sameFile(os.Stdout, parent+"/fd/1") {
		return own() // go test streams this binary's output
	}
	info, err := os.Stat(parent + "/fd/2")
	if err != nil || info.Mode()&(os.ModeNamedPipe|os.ModeCharDevice) == 0 {
		return own()
	}
	f, err := os.OpenFile(parent+"/fd/2", os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return own()
	}
	return f, func() { _ = f.Close() }
}

func sameFile(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	return err == nil && os.SameFile(a, b)
}
