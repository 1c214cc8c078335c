package hub_test

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/presenced/presenced/internal/needs"
)

// TestHubImportsOnlyTheStandardLibrary keeps HTTP, WebSocket, SQL and JWT
// out of the domain package: transport and storage depend on hub, never
// the other way round.
func TestHubImportsOnlyTheStandardLibrary(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		needs.Missing(t, fmt.Sprintf("go list failed: %v", err), "put the go command on PATH")
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep != "github.com/presenced/presenced/hub" {
			t.Errorf("hub depends on %s", dep)
		}
	}
	std, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, banned := range []string{"net/http", "database/sql"} {
		for _, dep := range strings.Fields(string(std)) {
			if dep == banned {
				t.Errorf("hub depends on %s", banned)
			}
		}
	}
}
