// Package skipper is run by needs' own test, under a real go test: one
// test that lacks something and one that runs.
package skipper

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/presenced/presenced/internal/needs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(needs.Main(m)) }

func TestLacksAWidget(t *testing.T) {
	needs.Missing(t, "no widget is installed", "apt-get install widget")
}

func TestAlsoLacksAWidget(t *testing.T) {
	needs.Missing(t, "no widget is installed", "apt-get install widget")
}

func TestRuns(t *testing.T) {}
