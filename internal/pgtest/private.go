package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/presenced/presenced/internal/needs"
)

// Private is a PostgreSQL server of its own, in a temporary directory on
// a port of its own: the server of a test that stops or restarts it
// without disturbing anyone else's, or the server a test binary's tests
// share when no PRESENCE_TEST_DATABASE_URL is given.
//
// The server runs as a child of the test process (as the user postgres
// when the tests run as root, since PostgreSQL refuses root), and the
// kernel stops it should the test process die without cleaning up.
type Private struct {
	// URL connects to its database "postgres" as the user postgres.
	URL string

	t    testing.TB // of StartPrivate, for Start and Stop
	bin  string     // the server's bin directory
	dir  string     // temporary directory: data, socket, log
	port int
	cred *syscall.Credential // nil unless running as root

	proc   *exec.Cmd
	exited chan struct{} // closed when proc has ended
}

// StartPrivate initialises and starts a private server, stopped and
// removed when t ends. It needs the server's programs (Debian's
// postgresql package); without them it skips, or fails under CI=true.
func StartPrivate(t testing.TB) *Private {
	t.Helper()
	p, err := startPrivate()
	if errors.Is(err, errNoServer) {
		needs.Missing(t, err.Error(), installServer)
	}
	if err != nil {
		t.Fatal(err)
	}
	p.t = t
	t.Cleanup(p.remove)
	return p
}

var errNoServer = errors.New("PostgreSQL's server programs are not installed (no initdb under /usr/lib/postgresql/*/bin or on PATH)")

const installServer = "apt-get install postgresql"

// startPrivate initialises a data directory and starts the server; the
// caller removes it.
func startPrivate() (*Private, error) {
	bin, err := serverBin()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "presenced-pg-")
	if err != nil {
		return nil, err
	}
	p := &Private{bin: bin, dir: dir}
	if err := p.init(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	if err := p.start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	p.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.port)
	return p, nil
}

// serverBin finds the directory of initdb and postgres: Debian's
// versioned directories (the newest), else PATH.
func serverBin() (string, error) {
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) > 0 {
		sort.Slice(bins, func(i, j int) bool { return version(bins[i]) < version(bins[j]) })
		return filepath.Dir(bins[len(bins)-1]), nil
	}
	if path, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(path), nil
	}
	return "", errNoServer
}

// version reads the major version out of /usr/lib/postgresql/<v>/bin.
func version(initdb string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return v
}

func (p *Private) init() error {
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return fmt.Errorf("running as root needs the user postgres to run PostgreSQL: %w", err)
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(p.dir, int(uid), int(gid)); err != nil {
			return err
		}
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	p.port = port
	cmd := p.command("initdb", "-D", p.data(), "-A", "trust", "-U", "postgres", "--no-sync", "--no-instructions")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %v\n%s", err, out)
	}
	return nil
}

func (p *Private) data() string { return filepath.Join(p.dir, "data") }
func (p *Private) log() string  { return filepath.Join(p.dir, "server.log") }

// command runs one of the server's programs as the user that may run it.
func (p *Private) command(prog string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(p.bin, prog), args...)
	cmd.Dir = p.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	return cmd
}

// start runs the server and waits until it accepts connections.
func (p *Private) start() error {
	log, err := os.OpenFile(p.log(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := p.command("postgres", "-D", p.data(), "-p", strconv.Itoa(p.port), "-k", p.dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	cmd.Stdout, cmd.Stderr = log, log
	// Immediate shutdown, should the test process die first.
	cmd.SysProcAttr.Pdeathsig = syscall.SIGQUIT
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	p.proc, p.exited = cmd, make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	url := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable&connect_timeout=5", p.port)
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		conn, err := pgx.Connect(ctx, url)
		cancel()
		if err == nil {
			_ = conn.Close(context.Background())
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("postgres exited at start:\n%s", p.readLog())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.kill()
			return fmt.Errorf("postgres did not accept connections within 60s: %v\n%s", err, p.readLog())
		}
	}
}

// stop asks the server to stop with sig (SIGINT: fast shutdown, clients
// are cut off; SIGQUIT: immediate) and waits for it.
func (p *Private) stop(sig syscall.Signal) error {
	if p.proc == nil {
		return nil
	}
	_ = p.proc.Process.Signal(sig)
	select {
	case <-p.exited:
	case <-time.After(60 * time.Second):
		p.kill()
		return fmt.Errorf("postgres did not stop within 60s:\n%s", p.readLog())
	}
	p.proc = nil
	return nil
}

func (p *Private) kill() {
	_ = p.proc.Process.Kill()
	<-p.exited
	p.proc = nil
}

// remove stops the server at once and deletes its directory.
func (p *Private) remove() {
	_ = p.stop(syscall.SIGQUIT)
	_ = os.RemoveAll(p.dir)
}

func (p *Private) readLog() string {
	b, _ := os.ReadFile(p.log())
	return string(b)
}

// Start starts the server again after Stop and waits until it accepts
// connections.
func (p *Private) Start() {
	p.t.Helper()
	if err := p.start(); err != nil {
		p.t.Fatal(err)
	}
}

// Stop stops the server (fast shutdown: clients are cut off) and waits
// until it has.
func (p *Private) Stop() {
	p.t.Helper()
	if err := p.stop(syscall.SIGINT); err != nil {
		p.t.Fatal(err)
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
