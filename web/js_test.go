// The JavaScript client's and the demo page's tests, run by go test.
// TestMain, with its goroutine-leak check, is in web_test.go.
package web_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/presenced/presenced/internal/needs"
	"github.com/presenced/presenced/web"
)

// TestStaticFiles checks that the embedded files are there, that every
// local file the demo page loads is among them, and that /presence.js and
// /presence.d.ts are the package's build.
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
	for name, built := range map[string]string{"presence.js": "client/dist/presence.js", "presence.d.ts": "client/dist/presence.d.ts"} {
		served, err := fs.ReadFile(static, name)
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(built)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(served, want) {
			t.Errorf("%s is not %s", name, built)
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

// TestClientNode runs the client's own tests under Node's test runner,
// against a real presenced: web/test/client.test.mjs, status.test.mjs,
// liveness.test.mjs, devices.test.mjs and connect.test.mjs.
func TestClientNode(t *testing.T) {
	node := requireNode(t, "ws")
	runNode(t, node, 5*time.Minute, "test/client.test.mjs", "test/status.test.mjs", "test/liveness.test.mjs", "test/devices.test.mjs", "test/connect.test.mjs")
}

// TestClientPackage runs the tests of @presenced/client as a package:
// web/test/types.test.mjs (the declarations, with tsc), package.test.mjs
// (the build, its size, and the packed tarball in fresh projects),
// react.test.mjs (the React bindings in jsdom against a real presenced)
// and react-native.test.mjs (the React Native helper with fake AppState
// and NetInfo).
func TestClientPackage(t *testing.T) {
	node := requireNode(t, "ws", "typescript", "esbuild", "react", "react-dom", "jsdom", "@testing-library/react", "@types/react")
	if _, err := exec.LookPath("npm"); err != nil {
		needs.Missing(t, "npm is not on PATH, so the package cannot be packed", "apt-get install npm")
	}
	runNode(t, node, 5*time.Minute, "test/types.test.mjs", "test/package.test.mjs", "test/react.test.mjs", "test/react-native.test.mjs")
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
		needs.Missing(t, "no Chromium at "+chromium+" (or at $CHROMIUM_PATH)", "apt-get install chromium")
	}
	runNode(t, node, 5*time.Minute, "test/demo.e2e.test.mjs")
}

// requireNode returns the path of node (20 or newer) once the npm
// packages are installed, installing them with npm ci when they are not.
func requireNode(t *testing.T, packages ...string) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		needs.Missing(t, "node is not on PATH", "apt-get install nodejs npm")
	}
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		needs.Missing(t, "node --version failed: "+err.Error(), "apt-get install nodejs npm")
	}
	version := strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
	major, _ := strconv.Atoi(strings.SplitN(version, ".", 2)[0])
	if major < 20 {
		needs.Missing(t, "node "+version+" is older than 20", "put Node 20 or newer first on PATH (.ci/run shows one way)")
	}
	if missingPackage(packages) != "" {
		npmInstall(t)
	}
	if p := missingPackage(packages); p != "" {
		t.Fatalf("npm ci succeeded but node_modules/%s is still missing: is it in package.json?", p)
	}
	return node
}

// missingPackage names the first of packages not installed in
// node_modules, or is empty.
func missingPackage(packages []string) string {
	for _, p := range packages {
		if _, err := os.Stat(filepath.Join("node_modules", p, "package.json")); err != nil {
			return p
		}
	}
	return ""
}

var npm struct {
	once sync.Once
	err  error
}

// npmInstall runs npm ci in web/ once per test binary, as a developer
// would after cloning: the packages are for building and testing the
// client only (esbuild, ws, typescript, react and the testing library,
// jsdom, playwright-core, which downloads no browser) and pinned by
// package-lock.json. It needs the npm registry, or npm's cache.
func npmInstall(t *testing.T) {
	t.Helper()
	path, err := exec.LookPath("npm")
	if err != nil {
		needs.Missing(t, "node_modules is not installed and npm is not on PATH", "apt-get install npm, then cd web && npm ci")
	}
	npm.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, path, "ci", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error")
		out, err := cmd.CombinedOutput()
		if err != nil {
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			npm.err = fmt.Errorf("%v: %s", err, lines[len(lines)-1])
		}
	})
	if npm.err != nil {
		needs.Missing(t, "node_modules is not installed and npm ci failed ("+npm.err.Error()+")", "cd web && npm ci")
	}
}

// runNode builds presenced and runs node test files with it. Node's report
// is logged; the test fails when node does.
func runNode(t *testing.T, node string, timeout time.Duration, files ...string) {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		needs.Missing(t, "the go command is not on PATH, so presenced cannot be built", "put go on PATH")
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
// sources, the client's sources and build, the demo, the node tests, the
// lock file, and the README whose examples the package test runs.
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
		case ".go", ".mod", ".sum", ".js", ".cjs", ".mjs", ".ts", ".cts", ".html", ".css", ".json", ".sql", ".md":
			_, err := os.Stat(path)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatalf("listing the test's inputs: %v", err)
	}
}
