package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5"

	"github.com/presenced/presenced/internal/pgtest"
)

const startupSecret = "startup-test-secret-0123456789abcdef"

// startupLine returns the start-up line of logs, decoded, and checks that
// it is the only line logged before it.
func startupLine(t *testing.T, logs string) map[string]any {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(logs), "\n")
	for i, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("log line %q is not JSON: %v", l, err)
		}
		if rec["msg"] != "listening" {
			continue
		}
		if i > 0 {
			t.Fatalf("the start-up took %d lines, want one:\n%s", i+1, strings.Join(lines[:i+1], "\n"))
		}
		if !strings.HasPrefix(l, `{"time":`) || !strings.Contains(l, `"msg":"listening","addr":"`) {
			t.Fatalf("tests and tools find the address as the field after msg: %s", l)
		}
		return rec
	}
	t.Fatalf("no start-up line in:\n%s", logs)
	return nil
}

func TestStartupLineSaysWhatRunsAndWhere(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		d := startDaemon(t, nil, map[string]string{"PRESENCE_JWT_SECRET": startupSecret})
		rec := startupLine(t, d.logs.String())
		if rec["level"] != "INFO" || rec["addr"] != d.addr || rec["version"] == "" || rec["version"] == nil ||
			rec["store"] != "memory: statuses are lost at restart" || rec["dev"] != false || rec["dev_secret"] != nil {
			t.Fatalf("start-up line: %v", rec)
		}
	})
	t.Run("admin listener", func(t *testing.T) {
		d := startDaemon(t, []string{"-admin-addr", "127.0.0.1:0"}, map[string]string{"PRESENCE_JWT_SECRET": startupSecret})
		rec := startupLine(t, d.logs.String())
		if admin, _ := rec["admin_addr"].(string); !strings.HasPrefix(admin, "127.0.0.1:") || admin == rec["addr"] {
			t.Fatalf("start-up line with -admin-addr: %v", rec)
		}
	})
	t.Run("dev with a made-up secret", func(t *testing.T) {
		d := startDaemon(t, []string{"-dev"}, nil)
		rec := startupLine(t, d.logs.String())
		if rec["level"] != "WARN" || rec["dev"] != true || !strings.HasPrefix(rec["dev_secret"].(string), "made up at start") ||
			!strings.Contains(rec["warning"].(string), "never use -dev in production") {
			t.Fatalf("start-up line of -dev: %v", rec)
		}
	})
	t.Run("dev with -dev-secret", func(t *testing.T) {
		d := startDaemon(t, []string{"-dev", "-dev-secret", startupSecret}, nil)
		rec := startupLine(t, d.logs.String())
		if rec["dev"] != true || rec["dev_secret"] != "from -dev-secret" {
			t.Fatalf("start-up line of -dev -dev-secret: %v", rec)
		}
		if strings.Contains(d.logs.String(), startupSecret) {
			t.Fatal("the secret is in the log")
		}
	})
	t.Run("postgresql", func(t *testing.T) {
		db := pgtest.Schema(t)
		// A user and password of its own, to show that neither is logged.
		user, password := "u_"+randomHex(t), "pw-"+randomHex(t)
		schema := regexp.MustCompile(`search_path=(\w+)`).FindStringSubmatch(db)[1]
		execDB(t, db, "CREATE ROLE "+user+" LOGIN PASSWORD '"+password+"'", "GRANT ALL ON SCHEMA "+schema+" TO "+user)
		t.Cleanup(func() { execDB(t, db, "DROP OWNED BY "+user, "DROP ROLE "+user) })
		u, err := url.Parse(db)
		if err != nil {
			t.Fatal(err)
		}
		u.User = url.UserPassword(user, password)
		n := startNode(t, u.String(), "startup")
		rec := startupLine(t, n.logs.String())
		// The test database is the private server's postgres, or the one
		// PRESENCE_TEST_DATABASE_URL names (CI's test).
		want := regexp.MustCompile(`^` + regexp.QuoteMeta(u.Host) + regexp.QuoteMeta(u.Path) + `, schema ` + schema + `$`)
		if rec["store"] != "postgresql" || !want.MatchString(rec["database"].(string)) || rec["node_id"] != n.id || rec["addr"] != n.addr {
			t.Fatalf("start-up line on PostgreSQL: %v", rec)
		}
		if logs := n.logs.String(); strings.Contains(logs, password) || strings.Contains(logs, user) {
			t.Fatalf("the database user or password is in the log:\n%s", logs)
		}
	})
}

func randomHex(t *testing.T) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func execDB(t *testing.T, db string, statements ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, s := range statements {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func TestBadFlagsAndVariablesSayWhatIsWrongInOneLine(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{nil, map[string]string{"PRESENCE_GRACE": "abc"}, "PRESENCE_GRACE=abc: not a duration, e.g. PRESENCE_GRACE=5s"},
		{nil, map[string]string{"PRESENCE_GRACE": "5"}, "PRESENCE_GRACE=5: a duration needs a unit (ms, s, m or h), e.g. PRESENCE_GRACE=5s"},
		{nil, map[string]string{"PRESENCE_MAX_IDS": "many"}, "PRESENCE_MAX_IDS=many: not a whole number, e.g. PRESENCE_MAX_IDS=100"},
		{[]string{"-grace", "5"}, nil, "-grace 5: a duration needs a unit (ms, s, m or h), e.g. -grace 5s"},
		{[]string{"-shutdown-delay", "soon"}, nil, "-shutdown-delay soon: not a duration, e.g. -shutdown-delay 5s"},
		{[]string{"-max-ids", "1e99"}, nil, "-max-ids 1e99: not a whole number in range, e.g. -max-ids 100"},
		{[]string{"-max-messages-per-second", "fast"}, nil, "-max-messages-per-second fast: not a number, e.g. -max-messages-per-second 20"},
		{[]string{"-dev=maybe"}, nil, "-dev=maybe: neither true nor false, e.g. -dev=true"},
		{[]string{"-gracee", "5s"}, nil, "-gracee is not a flag of presenced (presenced -h lists them)"},
		{[]string{"-grace"}, nil, "-grace needs a value, e.g. -grace 5s"},
		{[]string{"-addr", ":8080", "grace"}, nil, `"grace" is not a flag: presenced takes only flags, such as -addr :8080 (presenced -h lists them)`},
		{[]string{"-admin-addr"}, nil, "-admin-addr needs a value, e.g. -admin-addr 127.0.0.1:9090"},
		// Values that parse but mean nothing.
		{[]string{"-grace", "0s"}, nil, "-grace 0s: must be above 0, e.g. -grace 5s"},
		{nil, map[string]string{"PRESENCE_SWEEP_INTERVAL": "-1s"}, "PRESENCE_SWEEP_INTERVAL=-1s: must be above 0, e.g. PRESENCE_SWEEP_INTERVAL=5s"},
		{[]string{"-max-ids", "0"}, nil, "-max-ids 0: must be above 0, e.g. -max-ids 100"},
		{[]string{"-max-messages-per-second", "-1"}, nil, "-max-messages-per-second -1: must not be negative, e.g. -max-messages-per-second 20"},
		{[]string{"-shutdown-delay", "-500ms"}, nil, "-shutdown-delay -500ms: must not be negative, e.g. -shutdown-delay 5s"},
		{[]string{"-log-level", "loud"}, nil, "-log-level loud: not a level (debug, info, warn or error), e.g. -log-level info"},
		{nil, map[string]string{"PRESENCE_LOG_FORMAT": "xml"}, "PRESENCE_LOG_FORMAT=xml: neither json nor text, e.g. PRESENCE_LOG_FORMAT=json"},
		{[]string{"-addr", "8080"}, nil, "-addr 8080: not an address of the form host:port (an empty host: all interfaces), e.g. -addr :8080"},
		{nil, map[string]string{"PRESENCE_ADMIN_ADDR": ":99999"}, `PRESENCE_ADMIN_ADDR=:99999: port "99999" is not a port number, e.g. PRESENCE_ADMIN_ADDR=127.0.0.1:9090`},
		// A bad flag is named, though its variable holds a good value.
		{[]string{"-grace", "0s"}, map[string]string{"PRESENCE_GRACE": "2s"}, "-grace 0s: must be above 0, e.g. -grace 5s"},
	} {
		var out bytes.Buffer
		_, err := parseFlags(tc.args, env(tc.env), &out)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%v %v: %v\nwant %s", tc.args, tc.env, err, tc.want)
		}
		if out.Len() > 0 {
			t.Errorf("%v %v printed more than the error:\n%s", tc.args, tc.env, out.String())
		}
	}
}

// TestEveryNumberFlagHasARange keeps the range checks complete: a number
// flag is either above 0 or documented with its 0, and its default passes.
func TestEveryNumberFlagHasARange(t *testing.T) {
	fs := newFlags(&options{}, io.Discard)
	explainFlags(fs)
	fs.VisitAll(func(f *flag.Flag) {
		switch kind := f.Value.(*explained).kind; {
		case kind != "duration" && kind != "int" && kind != "float":
		case positive[f.Name] == mayBeZero[f.Name]:
			t.Errorf("-%s is a number flag in neither or both of positive and mayBeZero", f.Name)
		case checkValue(f) != "":
			t.Errorf("-%s's default %s is refused: %s", f.Name, f.DefValue, checkValue(f))
		}
	})
}

// TestErrorsFoundAtStartNameTheSetting: the listener's address and the
// database are found bad only when used; the error still names the flag
// or variable, in one line, and never the database password.
func TestErrorsFoundAtStartNameTheSetting(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"-addr", taken.Addr().String()}, nil, "-addr " + taken.Addr().String() + ": listen tcp " + taken.Addr().String() + ": bind: address already in use"},
		{[]string{"-addr", "127.0.0.1:0"}, map[string]string{"PRESENCE_ADMIN_ADDR": taken.Addr().String()}, "PRESENCE_ADMIN_ADDR " + taken.Addr().String() + ": listen tcp"},
		// Port 1 on loopback refuses at once.
		{[]string{"-addr", "127.0.0.1:0"}, map[string]string{"DATABASE_URL": "postgres://u:hunter2hunter2@127.0.0.1:1/db"}, "DATABASE_URL: database: failed to connect to `user=u database=db`: 127.0.0.1:1"},
		{[]string{"-addr", "127.0.0.1:0", "-database-url", "postgres://u:hunter2hunter2@127.0.0.1:x/db"}, nil, "-database-url: database url: cannot parse `postgres://u:xxxxx@127.0.0.1:x/db`: invalid port"},
		{[]string{"-addr", "127.0.0.1:0", "-webhook-url", "https://api.example.com/hook"}, nil, "-webhook-url needs -webhook-secret"},
		{[]string{"-addr", "127.0.0.1:0", "-webhook-secret", "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}, map[string]string{"PRESENCE_WEBHOOK_URL": "ftp://x"}, "PRESENCE_WEBHOOK_URL: webhook URL \"ftp://x\": want an http or https URL"},
		{[]string{"-addr", "127.0.0.1:0", "-webhook-url", "https://x", "-webhook-secret", "plain"}, nil, "-webhook-secret: a webhook secret is written whsec_"},
	} {
		env := map[string]string{"PRESENCE_JWT_SECRET": startupSecret}
		for k, v := range tc.env {
			env[k] = v
		}
		err := run(context.Background(), tc.args, func(k string) string { return env[k] }, io.Discard, nil)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%v %v: %v\nwant one line starting %s", tc.args, tc.env, err, tc.want)
		}
	}
}

// TestCommandLine runs the binary as a person would: a bad flag costs a
// line or two on stderr and exit status 2, -h shows the usage on stdout
// and exits 0, and -version says which build it is.
func TestCommandLine(t *testing.T) {
	bin := presencedBinary(t)
	runBin := func(args ...string) (stdout, stderr string, code int) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = []string{"PATH=/usr/bin:/bin"}
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatal(err)
		}
		return o.String(), e.String(), cmd.ProcessState.ExitCode()
	}
	stdout, stderr, code := runBin("-grace", "5")
	if code != 2 || stdout != "" || stderr != "presenced: -grace 5: a duration needs a unit (ms, s, m or h), e.g. -grace 5s\n" {
		t.Fatalf("-grace 5: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	stdout, stderr, code = runBin("-h")
	if code != 0 || stderr != "" || !strings.HasPrefix(stdout, "Usage: presenced [flags]") ||
		!strings.Contains(stdout, "  -grace duration\n    \thow long a user stays online after their last connection ends (env PRESENCE_GRACE) (default 5s)\n") ||
		!strings.Contains(stdout, "  -dev\n") {
		t.Fatalf("-h: exit %d, stderr %q, stdout:\n%s", code, stderr, stdout)
	}
	stdout, stderr, code = runBin("-version")
	if code != 0 || stderr != "" || !regexp.MustCompile(`^presenced \S+ \(revision \S+, go1\.\d+\S*\)\n$`).MatchString(stdout) {
		t.Fatalf("-version: exit %d, stderr %q, stdout %q", code, stderr, stdout)
	}
}

// TestUsernameClaimIsConfigurable signs tokens as an OpenID Connect server
// would, and finds their names in the presence answers.
func TestUsernameClaimIsConfigurable(t *testing.T) {
	sign := func(claims jwt.MapClaims) string {
		claims["exp"] = time.Now().Add(time.Hour).Unix()
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(startupSecret))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	nameOf := func(base string, userID int, tok string) string {
		t.Helper()
		if code := requestStatus(t, http.MethodPost, base+"/users/me/heartbeat", tok, ""); code != http.StatusOK {
			t.Fatalf("heartbeat: %d", code)
		}
		req, _ := http.NewRequest(http.MethodGet, base+"/users/"+strconv.Itoa(userID)+"/presence", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var p struct{ Username string }
		if err := json.NewDecoder(resp.Body).Decode(&p); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET presence: %d %v", resp.StatusCode, err)
		}
		return p.Username
	}
	vars := map[string]string{"PRESENCE_JWT_SECRET": startupSecret}
	d := startDaemon(t, nil, vars)
	base := d.base
	if got := nameOf(base, 1, sign(jwt.MapClaims{"sub": "1", "preferred_username": "alice.p", "name": "Alice P."})); got != "alice.p" {
		t.Errorf("by default preferred_username comes before name: got %q", got)
	}
	if got := nameOf(base, 2, sign(jwt.MapClaims{"sub": "2", "name": "Bob B."})); got != "Bob B." {
		t.Errorf("by default name is read last: got %q", got)
	}

	vars["PRESENCE_JWT_USERNAME_CLAIM"] = "nickname, name"
	d = startDaemon(t, nil, vars)
	base = d.base
	if got := nameOf(base, 3, sign(jwt.MapClaims{"sub": "3", "username": "carol", "nickname": "cc", "name": "Carol C."})); got != "cc" {
		t.Errorf("PRESENCE_JWT_USERNAME_CLAIM=nickname,name: got %q", got)
	}
	d = startDaemon(t, []string{"-jwt-username-claim", "name"}, vars)
	if got := nameOf(d.base, 4, sign(jwt.MapClaims{"sub": "4", "nickname": "dd", "name": "Dave D."})); got != "Dave D." {
		t.Errorf("-jwt-username-claim name, over the variable: got %q", got)
	}
}
