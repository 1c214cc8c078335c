package transport_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestTransportKnowsNoMetricsLibrary keeps Prometheus behind the Observer
// interface: only the metrics package and cmd import it, so the event path
// can be measured without tying transport to one monitoring system.
func TestTransportKnowsNoMetricsLibrary(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "github.com/prometheus/") {
			t.Errorf("transport depends on %s", dep)
		}
	}
}
