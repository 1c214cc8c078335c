package transport_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/presenced/presenced/internal/needs"
)

// lintDir holds the linter, pinned by its package-lock.json.
const lintDir = "testdata/openapi-lint"

var lintInstall struct {
	once sync.Once
	err  error
}

// redocly returns the command that runs Redocly CLI, installing it with
// npm ci on first use as .ci/run does; a machine without Node skips.
func redocly(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		needs.Missing(t, "node is not on PATH, so openapi.json cannot be linted", "apt-get install nodejs npm")
	}
	cli := filepath.Join(lintDir, "node_modules", "@redocly", "cli", "bin", "cli.js")
	if _, err := os.Stat(cli); err != nil {
		npm, err := exec.LookPath("npm")
		if err != nil {
			needs.Missing(t, "Redocly CLI is not installed and npm is not on PATH", "cd transport/"+lintDir+" && npm ci")
		}
		lintInstall.once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error")
			cmd.Dir = lintDir
			if out, err := cmd.CombinedOutput(); err != nil {
				lintInstall.err = fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
			}
		})
		if lintInstall.err != nil {
			needs.Missing(t, "Redocly CLI is not installed and npm ci failed ("+lintInstall.err.Error()+")", "cd transport/"+lintDir+" && npm ci")
		}
	}
	cmd := exec.Command(node, append([]string{cli}, args...)...)
	// No telemetry and no update check: the test talks to no server.
	cmd.Env = append(os.Environ(), "REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true", "NO_COLOR=1")
	return cmd
}

// TestOpenAPIDocumentPassesTheLinter runs Redocly CLI's recommended rules
// (less those transport/testdata/openapi-lint/redocly.yaml turns off,
// each with its reason) over openapi.json, on top of the contract test's
// validation of every answer: no error and no warning. A document with a
// known fault must fail it, so that a linter that checks nothing cannot
// pass.
func TestOpenAPIDocumentPassesTheLinter(t *testing.T) {
	config := filepath.Join(lintDir, "redocly.yaml")
	out, err := redocly(t, "lint", "--config", config, "--format=stylish", "openapi.json").CombinedOutput()
	if err != nil || strings.Contains(string(out), " warning ") {
		t.Fatalf("redocly lint openapi.json: %v\n%s", err, out)
	}

	var doc map[string]any
	if err := json.Unmarshal(mustRead(t, "openapi.json"), &doc); err != nil {
		t.Fatal(err)
	}
	delete(doc, "servers")
	broken, _ := json.Marshal(doc)
	path := filepath.Join(t.TempDir(), "broken.json")
	if err := os.WriteFile(path, broken, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = redocly(t, "lint", "--config", config, "--format=stylish", path).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no-empty-servers") {
		t.Fatalf("the linter passed a document without servers: %v\n%s", err, out)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
