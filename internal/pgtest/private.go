package pgtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"testing"
)

// Private is a PostgreSQL server of one test's own, in a temporary
// directory on a port of its own, for tests that stop or restart the
// server without disturbing anyone else's.
type Private struct {
	// URL connects to its database "postgres" as the user postgres.
	URL string

	t    testing.TB
	bin  string // the server's bin directory
	data string
	log  string
	port int
}

// StartPrivate initialises and starts a private server, stopped and
// removed when t ends. It needs the server's programs (Debian's
// postgresql package); without them it skips, or fails under CI=true.
func StartPrivate(t testing.TB) *Private {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		unavailable(t, "initdb not found under /usr/lib/postgresql/*/bin (install the postgresql package)")
	}
	sort.Strings(bins)
	p := &Private{t: t, bin: filepath.Dir(bins[len(bins)-1])}
	dir, err := os.MkdirTemp("", "presenced-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	// The server refuses to run as root; as root, run it as postgres.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p.data, p.log = filepath.Join(dir, "data"), filepath.Join(dir, "server.log")
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root needs the user postgres: %v", err)
		}
		var uid, gid int
		fmt.Sscan(u.Uid, &uid)
		fmt.Sscan(u.Gid, &gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	p.port = freePort(t)
	p.run("initdb", "-D", p.data, "-A", "trust", "-U", "postgres", "--no-sync")
	p.Start()
	t.Cleanup(func() { p.pgctl("stop", "-m", "immediate") })
	p.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.port)
	return p
}

// Start starts the server and waits until it accepts connections.
func (p *Private) Start() {
	p.t.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", p.port, filepath.Dir(p.data))
	p.pgctl("start", "-w", "-t", "60", "-o", opts, "-l", p.log)
}

// Stop stops the server at once (fast shutdown: clients are cut off).
func (p *Private) Stop() {
	p.t.Helper()
	p.pgctl("stop", "-w", "-t", "60", "-m", "fast")
}

func (p *Private) pgctl(args ...string) {
	p.run("pg_ctl", append([]string{"-D", p.data}, args...)...)
}

func (p *Private) run(prog string, args ...string) {
	p.t.Helper()
	path := filepath.Join(p.bin, prog)
	cmd := exec.Command(path, args...)
	if os.Geteuid() == 0 {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		log, _ := os.ReadFile(p.log)
		p.t.Fatalf("%s %v: %v\n%s\n%s", prog, args, err, out, log)
	}
}

func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
