package version

import (
	"runtime/debug"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestVersionComesFromTheStampThenTheBuild(t *testing.T) {
	vcs := []debug.BuildSetting{{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.modified", Value: "true"}}
	for _, tc := range []struct {
		name  string
		stamp string
		bi    *debug.BuildInfo
		want  Info
	}{
		{"stamp wins", "v1.4.0", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-2026"}, Settings: vcs},
			Info{"v1.4.0", "0123abcd-dirty", "go1.26.8"}},
		{"module version", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.3.0"}},
			Info{"v1.3.0", "unknown", "go1.26.8"}},
		{"devel build", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: vcs[:1]},
			Info{"devel", "0123abcd", "go1.26.8"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := get(tc.stamp, tc.bi); got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	if got := get("", nil); got.Version != "devel" || got.GoVersion == "" {
		t.Fatalf("without build information: %+v", got)
	}
	if got := (Info{"v1.4.0", "0123abcd", "go1.26.8"}).String(); got != "v1.4.0 (revision 0123abcd, go1.26.8)" {
		t.Fatalf("String: %q", got)
	}
}
