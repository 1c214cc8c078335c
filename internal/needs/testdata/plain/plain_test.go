// Package plain is run beside skipper by needs' own test: it skips
// nothing, so it writes no block.
package plain

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/presenced/presenced/internal/needs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(needs.Main(m)) }

func TestRuns(t *testing.T) {}
