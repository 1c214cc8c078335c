// Package pgtest gives each test its own schema in the test database, so
// that tests run in parallel and leave nothing behind.
//
// The database is named by PRESENCE_TEST_DATABASE_URL. Without it, the
// tests of one test binary share a private server (see [Private]),
// started at the first test that asks for it and stopped when the
// binary's tests end, so that go test ./... runs the PostgreSQL tests on
// any machine with PostgreSQL's server programs installed. Tests that
// find neither skip, and are named in the block of skipped tests that
// [needs] writes; under CI=true they fail instead, because CI must not
// pass by skipping. A package that uses pgtest runs its tests with
// goleak.VerifyTestMain(needs.Main(m)).
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/presenced/presenced/internal/needs"
)

// EnvURL names the environment variable that holds the test database.
const EnvURL = "PRESENCE_TEST_DATABASE_URL"

// URL returns the test database's URL: PRESENCE_TEST_DATABASE_URL's,
// or the shared private server's. It skips (fails under CI) when the
// named database does not answer, or when there is none and no server
// can be started.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvURL)
	if u == "" {
		return sharedURL(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		needs.Missing(t, EnvURL+" names a database that does not answer: "+err.Error(), "start that server, or unset "+EnvURL+" to use a private one")
	}
	_ = conn.Close(ctx)
	return u
}

var shared struct {
	once sync.Once
	url  string
	err  error
}

// sharedURL starts the test binary's private server on first use.
func sharedURL(t testing.TB) string {
	t.Helper()
	shared.once.Do(func() {
		p, err := startPrivate()
		if err != nil {
			shared.err = err
			return
		}
		if !needs.AtEnd(p.remove) {
			p.remove()
			shared.err = errors.New("the shared PostgreSQL server would outlive the tests: make this package's TestMain goleak.VerifyTestMain(needs.Main(m))")
			return
		}
		shared.url = p.URL
	})
	if errors.Is(shared.err, errNoServer) {
		needs.Missing(t, shared.err.Error(), installServer+", or set "+EnvURL+" to a server's database")
	}
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.url
}

// Schema creates a schema of its own for t, dropped when t ends, and
// returns a URL whose connections use it.
func Schema(t testing.TB) string {
	t.Helper()
	base := URL(t)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "t_" + hex.EncodeToString(b)
	execSQL(t, base, "CREATE SCHEMA "+name)
	t.Cleanup(func() { execSQL(t, base, "DROP SCHEMA "+name+" CASCADE") })
	return WithSearchPath(base, name)
}

// WithSearchPath returns the connection string u with its search_path
// set to schema; it accepts URLs and keyword=value strings.
func WithSearchPath(u, schema string) string {
	if strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://") {
		p, err := url.Parse(u)
		if err == nil {
			q := p.Query()
			q.Set("search_path", schema)
			p.RawQuery = q.Encode()
			return p.String()
		}
	}
	return u + " search_path=" + schema
}

// Via returns the connection URL u with its host and port replaced by
// hostport, so that connections go through a proxy there. u must be a
// postgres:// URL.
func Via(t testing.TB, u, hostport string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "postgres" && p.Scheme != "postgresql") {
		t.Fatalf("%s must be a postgres:// URL to go through a proxy", EnvURL)
	}
	p.Host = hostport
	return p.String()
}

func execSQL(t testing.TB, u, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatalf("connect to the test database: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// WaitUntil waits up to 30s until query, which returns one boolean, is
// true on the database at u.
func WaitUntil(t testing.TB, u, query string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var ok bool
		if err := conn.QueryRow(ctx, query).Scan(&ok); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not true within 30s: %s", query)
		}
		<-time.After(50 * time.Millisecond)
	}
}
