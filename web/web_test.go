package web

import (
	"io/fs"
	"testing"

	"go.uber.org/goleak"

	"github.com/presenced/presenced/internal/needs"
)

// TestMain fails the package's tests if any goroutine outlives them, and
// names the tests that skipped for want of node or Chromium.
func TestMain(m *testing.M) { goleak.VerifyTestMain(needs.Main(m)) }

func TestFSServesIndexAtTheRoot(t *testing.T) {
	b, err := fs.ReadFile(FS(), "index.html")
	if err != nil {
		t.Fatalf("index.html is not at the root of FS(): %v", err)
	}
	if len(b) == 0 {
		t.Fatal("index.html is empty")
	}
}
