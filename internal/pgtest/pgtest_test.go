package pgtest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/presenced/presenced/internal/needs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(needs.Main(m)) }

func TestWithoutTheVariableTestsShareOnePrivateServer(t *testing.T) {
	t.Setenv(EnvURL, "")
	a, b := URL(t), URL(t)
	if a != b {
		t.Fatalf("two servers in one test binary: %s and %s", a, b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, Schema(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var schema string
	if err := conn.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil || !regexp.MustCompile(`^t_[0-9a-f]{12}$`).MatchString(schema) {
		t.Fatalf("Schema's URL works in %q (%v), want a schema of its own", schema, err)
	}
}

// TestTheSharedServerEndsWithTheTests runs a package that takes the shared
// server under a real go test, and finds the server and its directory
// gone when go test returns.
func TestTheSharedServerEndsWithTheTests(t *testing.T) {
	if _, err := serverBin(); err != nil {
		needs.Missing(t, err.Error(), installServer)
	}
	tmp := t.TempDir()
	// The server may run as another user, who must reach its directory.
	for _, dir := range []string{filepath.Dir(tmp), tmp} {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("go", "test", "-count=1", "-v", "./testdata/shared")
	cmd.Env = append(os.Environ(), EnvURL+"=", "TMPDIR="+tmp)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go test ./testdata/shared: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`shared server at (postgres://\S+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("the test did not say where its server was:\n%s", out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(ctx, string(m[1])); err == nil {
		_ = conn.Close(ctx)
		t.Fatalf("the shared server at %s still answers after its tests ended", m[1])
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "presenced-pg-*")); len(left) > 0 {
		t.Fatalf("the shared server left %v behind", left)
	}
}
