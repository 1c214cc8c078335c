// Package pgtest gives each test its own schema in the test database, so
// that tests run in parallel and leave nothing behind.
//
// The database is named by PRESENCE_TEST_DATABASE_URL. Without it, or
// when it cannot be reached, tests that need it skip with a message;
// under CI=true they fail instead, because CI must not pass by skipping.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the environment variable that holds the test database.
const EnvURL = "PRESENCE_TEST_DATABASE_URL"

// URL returns the test database's URL, or skips (fails under CI) when
// there is none or it does not answer.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvURL)
	if u == "" {
		unavailable(t, EnvURL+" is not set (e.g. postgres://postgres@127.0.0.1:5432/test)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		unavailable(t, "the test database does not answer: "+err.Error())
	}
	_ = conn.Close(ctx)
	return u
}

func unavailable(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("PostgreSQL is required in CI: %s", why)
	}
	t.Skipf("needs PostgreSQL: %s", why)
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
