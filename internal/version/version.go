// Package version says which build of presenced runs: for the -version
// flag, the start-up log line and the presenced_build_info metric.
//
// A release build stamps its version (and, where the build cannot see the
// git history, as in a container build, its commit) in with the linker:
//
//	go build -ldflags "-X github.com/presenced/presenced/internal/version.stamped=v1.4.0
//	    -X github.com/presenced/presenced/internal/version.stampedRevision=1a2b3c4" ./cmd/presenced
//
// Without a stamp the version is the one the go command recorded: the
// module version for `go install …@v1.4.0`, or, for a build in a git
// checkout, a pseudo-version made of the commit's time and hash (Go 1.24
// and later), and the revision is the commit it recorded (unless
// -buildvcs=false).
package version

import (
	"runtime"
	"runtime/debug"
)

// stamped and stampedRevision are set by the linker's -X flag; see the
// package comment.
var stamped, stampedRevision string

// Info describes a build.
type Info struct {
	// Version is the stamped or recorded version, or "devel" when there
	// is neither (a test binary, a build outside a checkout).
	Version string
	// Revision is the commit the binary was built from, with "-dirty"
	// when the work tree had changes, or "unknown".
	Revision string
	// GoVersion is the Go release that compiled it, e.g. "go1.26.8".
	GoVersion string
}

// Get returns the running binary's build information.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	info := get(stamped, bi)
	if stampedRevision != "" {
		info.Revision = stampedRevision
	}
	return info
}

func get(stamp string, bi *debug.BuildInfo) Info {
	info := Info{Version: stamp, Revision: "unknown", GoVersion: runtime.Version()}
	if bi == nil {
		if info.Version == "" {
			info.Version = "devel"
		}
		return info
	}
	if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		info.Version = bi.Main.Version
	}
	if info.Version == "" {
		info.Version = "devel"
	}
	var modified bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Revision = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if modified && info.Revision != "unknown" {
		info.Revision += "-dirty"
	}
	if bi.GoVersion != "" {
		info.GoVersion = bi.GoVersion
	}
	return info
}

// String is the -version line: "v1.4.0 (revision 1a2b3c…, go1.26.8)".
func (i Info) String() string {
	return i.Version + " (revision " + i.Revision + ", " + i.GoVersion + ")"
}
