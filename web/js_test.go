// The JavaScript client's and the demo page's tests, run by go test.
// TestMain, with its goroutine-leak check, is in web_test.go.
package web_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/presenced/presenced/web"
)

// TestStaticFiles checks that the embedded files are there and that every
// local file the demo page loads is among them.
func TestStaticFiles(t *testing.T) {
	static := web.FS()
	for _, name := range []string{"index.html", "demo.js", "demo.css", "presence.js", "presence.d.ts"} {
		if _, err := fs.Stat(static, name); err != nil {
			t.Errorf("%s is not embedded: %v", name, err)
		}
	}
	page, err := fs.ReadFile(static, "index.html")
	if err != nil {
		t.Fatal(err)
	}
	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllSubmatch(page, -1)
	if len(refs) < 3 {
		t.Fatalf("index.html loads %d files; expected the script, the style sheet and the client", len(refs))
	}
	for _, ref := range refs {
		name := string(ref[1])
		if strings.Contains(name, ":") || strings.HasPrefix(name, "#") {
			continue // data: URLs and anchors
		}
		if _, err := fs.Stat(static, name); err != nil {
			t.Errorf("index.html loads %s, which is not embedded", name)
		}
	}
	demo, err := fs.ReadFile(static, "demo.js")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(demo, []byte(`from './presence.js'`)) {
		t.Error("demo.js must import the client as apps do, from ./presence.js")
	}
}

// TestClientNode runs the client's own tests under Node's test runner:
// web/test/client.test.mjs against a real presenced, and
// web/test/types.test.mjs, which checks presence.d.ts with tsc.
func TestClientNode(t *testing.T) {
	node := requireNode(t, "ws", "typescript")
	runNode(t, node, 5*time.Minute, "test/client.test.mjs", "test/types.test.mjs")
}

// TestDemoChromium runs the demo page end to end in headless Chromium
// (web/test/demo.e2e.test.mjs).
func TestDemoChromium(t *testing.T) {
	node := requireNode(t, "ws", "playwright-core")
	chromium := os.Getenv("CHROMIUM_PATH")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		unavailable(t, "no Chromium at "+chromium+" (apt-get install chromium)")
	}
	runNode(t, node, 5*time.Minute, "test/demo.e2e.test.mjs")
}

// unavailable skips a test that needs something this machine lacks, or
// fails it under CI, which must provide everything.
func unavailable(t *testing.T, what string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true but %s", what)
	}
	t.Skip("skipped: " + what)
}

// requireNode returns the path of node (20 or newer) once the npm
// packages are installed (npm ci in web/).
func requireNode(t *testing.T, packages ...string) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		unavailable(t, "node is not installed (apt-get install nodejs npm)")
	}
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		unavailable(t, "node --version failed: "+err.Error())
	}
	version := strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
	major, _ := strconv.Atoi(strings.SplitN(version, ".", 2)[0])
	if major < 20 {
		unavailable(t, "node "+version+" is older than 20")
	}
	for _, p := range packages {
		if _, err := os.Stat(filepath.Join("node_modules", p, "package.json")); err != nil {
			unavailable(t, "node_modules/"+p+" is missing (run npm ci in web/)")
		}
	}
	return node
}

// runNode builds presenced and runs node test files with it. Node's report
// is logged; the test fails when node does.
func runNode(t *testing.T, node string, timeout time.Duration, files ...string) {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		unavailable(t, "the go command is not on PATH, so presenced cannot be built")
	}
	trackInputs(t)
	bin := filepath.Join(t.TempDir(), "presenced")
	build := exec.Command(goTool, "build", "-o", bin, "./cmd/presenced")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/presenced: %v\n%s", err, out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{"--test", "--test-reporter=spec"}, files...)...)
	file := strings.Join(files, " ")
	cmd.Env = append(os.Environ(), "PRESENCED_BIN="+bin, "FORCE_COLOR=0", "NO_COLOR=1")
	// Node, the servers and browsers it starts share a process group, so
	// that a timeout ends them all.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err = cmd.Run()
	t.Logf("node --test %s:\n%s", file, out.String())
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("node --test %s did not finish within %v", file, timeout)
	}
	if err != nil {
		t.Fatalf("node --test %s: %v", file, err)
	}
	// A run that executed nothing has shown nothing.
	if m := regexp.MustCompile(`(?m)^ℹ pass (\d+)$`).FindSubmatch(out.Bytes()); m == nil || string(m[1]) == "0" {
		t.Fatalf("node --test %s passed no test", file)
	}
}

// trackInputs stats every file that node and the server built for it read,
// so that go test's cache, which sees only this process's file accesses,
// runs these tests again when any of them changes: the module's Go
// sources, the client, the demo, the node tests and the lock file.
func trackInputs(t *testing.T) {
	t.Helper()
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "node_modules", "docs", "testdata":
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(path) {
		case ".go", ".mod", ".sum", ".js", ".mjs", ".ts", ".html", ".css", ".json", ".sql":
			_, err := os.Stat(path)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatalf("listing the test's inputs: %v", err)
	}
}
