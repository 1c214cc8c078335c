// Package shared is run by pgtest's own test under a real go test: it
// takes the shared private server and says where it is, so that the
// caller can check that the server is gone once the tests are.
package shared

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/presenced/presenced/internal/needs"
	"github.com/presenced/presenced/internal/pgtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(needs.Main(m)) }

func TestTakesTheSharedServer(t *testing.T) {
	t.Logf("shared server at %s", pgtest.URL(t))
	pgtest.Schema(t)
}
