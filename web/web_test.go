package web

import (
	"io/fs"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestFSServesIndexAtTheRoot(t *testing.T) {
	b, err := fs.ReadFile(FS(), "index.html")
	if err != nil {
		t.Fatalf("index.html is not at the root of FS(): %v", err)
	}
	if len(b) == 0 {
		t.Fatal("index.html is empty")
	}
}
