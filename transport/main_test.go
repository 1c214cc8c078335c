package transport

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/presenced/presenced/internal/needs"
)

// TestMain fails the package's tests if any goroutine outlives them, and
// names the tests that skipped for want of something (Node, for the
// OpenAPI linter).
func TestMain(m *testing.M) { goleak.VerifyTestMain(needs.Main(m)) }
