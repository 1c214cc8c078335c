package main

import (
	"bufio"
	"debug/elf"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.yaml.in/yaml/v4"

	"github.com/presenced/presenced/internal/needs"
	"github.com/presenced/presenced/internal/pgtest"
	"github.com/presenced/presenced/internal/readme"
	"github.com/presenced/presenced/internal/testkit"
	"github.com/presenced/presenced/metrics/metricstest"
)

// No container runtime runs here, so these tests check what can be
// checked without one: that the Dockerfile's build command makes a static
// binary of the stamped version, and that it starts, for real and against
// PostgreSQL, with exactly the settings the Dockerfile and
// deploy/compose.yaml give it; and that those name only presenced's own
// flags and variables.

const (
	imageVersion  = "v9.9.9-image-test"
	imageRevision = "0123abc"
)

// instruction is one line of a Dockerfile, continuations joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, ...
	args string
}

// stage is a Dockerfile's stage: from its FROM to the next.
type stage struct {
	from, name string
	lines      []instruction
}

func (s stage) all(cmd string) []string {
	var out []string
	for _, in := range s.lines {
		if in.cmd == cmd {
			out = append(out, in.args)
		}
	}
	return out
}

func parseDockerfile(t *testing.T) []stage {
	t.Helper()
	f, err := os.Open("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stages []stage
	var joined string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && joined == "") {
			continue
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			joined += cont + " "
			continue
		}
		line, joined = joined+line, ""
		cmd, args, _ := strings.Cut(line, " ")
		in := instruction{strings.ToUpper(cmd), strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			fields := strings.Fields(in.args)
			st := stage{from: fields[0]}
			if len(fields) == 3 && strings.EqualFold(fields[1], "AS") {
				st.name = fields[2]
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			t.Fatalf("Dockerfile: %s before FROM", in.cmd)
		}
		stages[len(stages)-1].lines = append(stages[len(stages)-1].lines, in)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return stages
}

// keyValues reads ENV and ARG arguments: NAME=value pairs (no quotes).
func keyValues(args []string) map[string]string {
	out := map[string]string{}
	for _, a := range args {
		for _, kv := range strings.Fields(a) {
			k, v, _ := strings.Cut(kv, "=")
			out[k] = v
		}
	}
	return out
}

// dockerignore reads the build context's exclusions: a pattern matches
// a path or any folder above it, ** any number of folders, and the last
// pattern that matches decides (a ! pattern keeps the path in).
type dockerignore []ignoreRule

type ignoreRule struct {
	re      *regexp.Regexp
	include bool // a ! pattern
}

func readDockerignore(root string) (dockerignore, error) {
	data, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		return nil, err
	}
	var d dockerignore
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		include := strings.HasPrefix(line, "!")
		line = strings.TrimPrefix(path.Clean(strings.TrimPrefix(strings.TrimPrefix(line, "!"), "/")), "/")
		var re strings.Builder
		for i := 0; i < len(line); i++ {
			switch {
			case strings.HasPrefix(line[i:], "**/"):
				re.WriteString("(.*/)?")
				i += 2
			case strings.HasPrefix(line[i:], "**"):
				re.WriteString(".*")
				i++
			case line[i] == '*':
				re.WriteString("[^/]*")
			case line[i] == '?':
				re.WriteString("[^/]")
			default:
				re.WriteString(regexp.QuoteMeta(line[i : i+1]))
			}
		}
		d = append(d, ignoreRule{regexp.MustCompile("^" + re.String() + "$"), include})
	}
	return d, nil
}

// excludes says whether rel, a slash-separated path in the context, is
// left out of it.
func (d dockerignore) excludes(rel string) bool {
	out := false
	for _, p := range d {
		for q := rel; q != "."; q = path.Dir(q) {
			if p.re.MatchString(q) {
				out = !p.include
				break
			}
		}
	}
	return out
}

// copyContext copies the build context at root, less what .dockerignore
// leaves out, to dst.
func copyContext(root, dst string) error {
	ignore, err := readDockerignore(root)
	if err != nil {
		return err
	}
	return filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case rel == ".":
			return os.MkdirAll(dst, 0o755)
		case ignore.excludes(filepath.ToSlash(rel)):
			if e.IsDir() && !slices.ContainsFunc(ignore, func(r ignoreRule) bool { return r.include }) {
				return filepath.SkipDir
			}
			return nil
		case e.IsDir():
			return os.MkdirAll(target, 0o755)
		case e.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case e.Type().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(target, data, 0o644)
		}
		return nil
	})
}

// TestDockerignoreReading holds the test's reading of .dockerignore to
// Docker's rules, on which the build context that TestDockerfile builds
// from depends.
func TestDockerignoreReading(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte("# comment\n.git\n**/node_modules\n/docs\n*.test\nbench/results\nweb/*.md\n!web/KEEP.md\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := readDockerignore(dir)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]bool{
		".git": true, ".git/HEAD": true, "web/node_modules/x/y.js": true, "node_modules": true,
		"docs/demo.png": true, "presenced.test": true, "bench/results/a.txt": true, "web/README.md": true,
		"web/KEEP.md": false, "web/static/index.html": false, "go.mod": false, "bench/run.sh": false,
		"cmd/presenced/main.go": false, "cmd/docs": false, "a/presenced.test": false,
	} {
		if got := d.excludes(path); got != want {
			t.Errorf("excludes(%q) = %v, want %v", path, got, want)
		}
	}
}

// image is what the Dockerfile makes: the binary its build command
// produced, and the environment and entry point its final stage sets.
type image struct {
	binary string
	env    map[string]string
	expose []string
}

var (
	imageOnce  sync.Once
	imageBuilt image
	imageErr   error
)

// buildImage checks the Dockerfile's shape and runs its go build command
// here, once per test binary, with the build arguments stamped in.
func buildImage(t *testing.T) image {
	t.Helper()
	stages := parseDockerfile(t)
	if len(stages) < 2 {
		t.Fatalf("the Dockerfile has %d stages; want a build stage and a runtime stage", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]
	if !strings.HasPrefix(build.from, "golang:") || build.name == "" {
		t.Fatalf("the first stage is FROM %s AS %q; want a golang image, named", build.from, build.name)
	}
	if final.from != "scratch" && !strings.HasPrefix(final.from, "gcr.io/distroless/static") {
		t.Fatalf("the image is FROM %s; want a minimal base for a static binary (distroless static or scratch)", final.from)
	}
	users := final.all("USER")
	if len(users) == 0 {
		t.Fatal("the final stage sets no USER: the server would run as root")
	}
	if u, _, _ := strings.Cut(users[len(users)-1], ":"); u == "root" || u == "0" {
		t.Fatalf("the final stage runs as %s", users[len(users)-1])
	}
	// The test runs the build stage's commands in a copy of the build
	// context, which is what the stage's tree is once it has copied it all.
	if !slices.Contains(build.all("COPY"), ". .") {
		t.Fatalf("the build stage does not COPY . . (it has %q): the test's copy of the context would not be its tree", build.all("COPY"))
	}
	var run string
	for _, r := range build.all("RUN") {
		if strings.Contains(r, "go build") {
			run = r
		}
	}
	if !strings.HasPrefix(run, "CGO_ENABLED=0 go build") || !strings.HasSuffix(run, " ./cmd/presenced") {
		t.Fatalf("the build stage's go build is %q; want CGO_ENABLED=0 go build ... ./cmd/presenced", run)
	}
	out := regexp.MustCompile(` -o (\S+) `).FindStringSubmatch(run)
	if out == nil {
		t.Fatalf("the go build command names no -o output: %s", run)
	}
	var entry []string
	if eps := final.all("ENTRYPOINT"); len(eps) != 1 || json.Unmarshal([]byte(eps[0]), &entry) != nil || len(entry) != 1 {
		t.Fatalf("the final stage's ENTRYPOINT is %q; want one, in exec form, naming the binary", eps)
	}
	if !slices.Contains(final.all("COPY"), "--from="+build.name+" "+out[1]+" "+entry[0]) {
		t.Fatalf("the final stage does not COPY --from=%s %s %s, its entry point", build.name, out[1], entry[0])
	}
	if _, ok := keyValues(build.all("ARG"))["VERSION"]; !ok || !strings.Contains(run, "${VERSION}") {
		t.Fatal("the build does not stamp the VERSION build argument in")
	}

	imageOnce.Do(func() {
		dir, err := os.MkdirTemp("", "presenced-image-")
		if err != nil {
			imageErr = err
			return
		}
		if !needs.AtEnd(func() { _ = os.RemoveAll(dir) }) {
			imageErr = fmt.Errorf("TestMain must run the tests through needs.Main")
			return
		}
		// The build stage's tree: the build context, as .dockerignore
		// leaves it, copied where the test runs the stage's RUN lines.
		src := filepath.Join(dir, "src")
		if imageErr = copyContext("../..", src); imageErr != nil {
			return
		}
		bin := filepath.Join(dir, "presenced")
		// Each RUN line, as the build stage's shell runs it: in the tree,
		// with the build arguments in the environment, the binary written
		// here instead of to -o's path.
		env := append(os.Environ(), "VERSION="+imageVersion, "REVISION="+imageRevision)
		for _, r := range build.all("RUN") {
			if r == run {
				r = strings.Replace(run, " -o "+out[1]+" ", " -o "+bin+" ", 1)
			}
			cmd := exec.Command("sh", "-c", r)
			cmd.Dir, cmd.Env = src, env
			if b, err := cmd.CombinedOutput(); err != nil {
				imageErr = fmt.Errorf("the Dockerfile's RUN %s: %v\n%s", r, err, b)
				return
			}
		}
		imageBuilt = image{binary: bin, env: keyValues(final.all("ENV")), expose: strings.Fields(strings.Join(final.all("EXPOSE"), " "))}
	})
	if imageErr != nil {
		t.Fatal(imageErr)
	}
	return imageBuilt
}

func TestDockerfile(t *testing.T) {
	img := buildImage(t)
	// Static: no dynamic loader and no shared library, as a distroless
	// static or scratch image requires.
	f, err := elf.Open(img.binary)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("the binary asks for a dynamic loader: it is not static")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Fatalf("the binary needs %v", libs)
	}
	out, err := exec.Command(img.binary, "-version").Output()
	if want := fmt.Sprintf("presenced %s (revision %s, go", imageVersion, imageRevision); err != nil || !strings.HasPrefix(string(out), want) {
		t.Fatalf("-version of the image's binary: %q, %v; want %s…", out, err, want)
	}
	checkSettings(t, "the Dockerfile's ENV", img.env, nil)
	if img.env["PRESENCE_LOG_FORMAT"] != "json" {
		t.Error("the image should log JSON lines for the container runtime's collector")
	}
	// The ports it exposes are the ones it listens on.
	port := func(addr string) string { return addr[strings.LastIndex(addr, ":")+1:] }
	if !slices.Contains(img.expose, port(img.env["PRESENCE_ADDR"])) {
		t.Errorf("the image listens on %s but exposes %v", img.env["PRESENCE_ADDR"], img.expose)
	}
	for _, svc := range presencedServices(t, parseCompose(t)) {
		if a := svc.Environment["PRESENCE_ADMIN_ADDR"]; a != "" && !slices.Contains(img.expose, port(a)) {
			t.Errorf("compose opens the admin port %s, which the image does not expose (%v)", a, img.expose)
		}
	}
}

// checkSettings parses the variables env and the flags args as presenced
// does, and fails for any that is not presenced's, not in the README's
// configuration reference, set on the command line only, or of a bad
// value.
func checkSettings(t *testing.T, where string, env map[string]string, args []string) options {
	t.Helper()
	documented := readme.Section(t, "### Configuration reference")
	known := map[string]bool{"DATABASE_URL": true}
	flags := newFlags(&options{}, io.Discard)
	flags.VisitAll(func(f *flag.Flag) { known[envName(f.Name)] = !commandLineOnly[f.Name] })
	for name := range env {
		switch {
		case !known[name]:
			t.Errorf("%s sets %s, which is not a variable of presenced", where, name)
		case !strings.Contains(documented, "`"+name+"`"):
			t.Errorf("%s sets %s, which the README's configuration reference does not name", where, name)
		}
	}
	for _, a := range args {
		if name, ok := strings.CutPrefix(a, "-"); ok {
			name, _, _ = strings.Cut(strings.TrimPrefix(name, "-"), "=")
			switch {
			case flags.Lookup(name) == nil || name == "dev":
				t.Errorf("%s passes %s, which is not a production flag of presenced", where, a)
			case !strings.Contains(documented, "`-"+name+"`"):
				t.Errorf("%s passes %s, which the README's configuration reference does not name", where, a)
			}
		}
	}
	o, err := parseFlags(args, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Errorf("%s: %v", where, err)
	}
	return o
}

// compose is the part of a compose file that presenced's settings are in.
type compose struct {
	Services map[string]struct {
		Image string
		Build *struct {
			Context string
			Args    map[string]string
		}
		Environment     map[string]string
		Command         []string
		Volumes         []string
		Ports           []string
		StopGracePeriod string `yaml:"stop_grace_period"`
	}
}

type service struct {
	Name        string
	Environment map[string]string
	Command     []string
	StopGrace   time.Duration
}

func parseCompose(t *testing.T) compose {
	t.Helper()
	data, err := os.ReadFile("../../deploy/compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatalf("deploy/compose.yaml: %v", err)
	}
	return c
}

// composeVar stands for the variables the compose file takes from the
// shell that runs docker compose.
var composeVar = regexp.MustCompile(`\$\{(\w+)(?::?[-?]([^}]*))?\}`)

// presencedServices returns the compose file's presenced nodes, their
// environment interpolated as docker compose would with
// PRESENCE_JWT_SECRET set.
func presencedServices(t *testing.T, c compose) []service {
	t.Helper()
	shell := map[string]string{"PRESENCE_JWT_SECRET": clusterSecret, "VERSION": imageVersion, "REVISION": imageRevision}
	var out []service
	for name, s := range c.Services {
		if s.Image != "presenced:local" {
			continue
		}
		if s.Build == nil || s.Build.Context != ".." {
			t.Errorf("compose service %s does not build the repository's Dockerfile (build.context ..)", name)
		}
		svc := service{Name: name, Environment: map[string]string{}, Command: s.Command}
		for k, v := range s.Environment {
			svc.Environment[k] = composeVar.ReplaceAllStringFunc(v, func(ref string) string {
				m := composeVar.FindStringSubmatch(ref)
				if v, ok := shell[m[1]]; ok {
					return v
				}
				if strings.Contains(ref, ":?") {
					t.Errorf("compose service %s needs %s from the shell, which the test does not know", name, m[1])
				}
				return m[2]
			})
		}
		grace, err := time.ParseDuration(s.StopGracePeriod)
		if err != nil {
			t.Errorf("compose service %s: stop_grace_period %q: %v", name, s.StopGracePeriod, err)
		}
		svc.StopGrace = grace
		out = append(out, svc)
	}
	slices.SortFunc(out, func(a, b service) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// TestComposeFile holds deploy/compose.yaml and deploy/Caddyfile to the
// code, then starts each node it describes from the Dockerfile's binary,
// with its settings, on a real PostgreSQL.
func TestComposeFile(t *testing.T) {
	c := parseCompose(t)
	nodes := presencedServices(t, c)
	if len(nodes) != 2 {
		t.Fatalf("compose runs %d presenced nodes, want 2", len(nodes))
	}
	caddy, err := os.ReadFile("../../deploy/Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	proxy, ok := c.Services["proxy"]
	if !ok || !strings.HasPrefix(proxy.Image, "caddy:") || !slices.Contains(proxy.Volumes, "./Caddyfile:/etc/caddy/Caddyfile:ro") {
		t.Fatalf("compose's proxy is not Caddy with deploy/Caddyfile: %+v", proxy)
	}
	img := buildImage(t)
	upstreams := regexp.MustCompile(`(?m)^\s*reverse_proxy ([^{]+)\{`).FindSubmatch(caddy)
	if upstreams == nil {
		t.Fatal("the Caddyfile has no reverse_proxy block")
	}
	var want []string
	for _, n := range nodes {
		env := mergeEnv(img.env, n.Environment)
		o := checkSettings(t, "compose service "+n.Name, env, n.Command)
		want = append(want, n.Name+o.addr) // :8080, the image's PRESENCE_ADDR
		// Caddy writes X-Forwarded-For (replacing a client's); the node
		// must read the client's address from it, not from the proxy.
		if o.clientIPHeader != "X-Forwarded-For" {
			t.Errorf("compose service %s reads the client address from %q; behind Caddy it is X-Forwarded-For", n.Name, o.clientIPHeader)
		}
		if need := o.shutdownDelay + o.shutdownTimeout; n.StopGrace <= need {
			t.Errorf("compose service %s: stop_grace_period %v is not above -shutdown-delay + -shutdown-timeout (%v): a SIGKILL would cut the shutdown short", n.Name, n.StopGrace, need)
		}
		if o.adminAddr == "" {
			t.Errorf("compose service %s has no admin port: /metrics would be on the proxied port", n.Name)
		}
	}
	if got := strings.Fields(string(upstreams[1])); !slices.Equal(got, want) {
		t.Errorf("Caddy proxies to %v; the nodes listen at %v", got, want)
	}
	if !regexp.MustCompile(`(?m)^\s*health_uri /readyz$`).Match(caddy) {
		t.Error("Caddy does not check the nodes' /readyz: a draining node would still get new clients")
	}

	// The proxy's published port is the one its site listens on.
	site := caddySite.FindSubmatch(caddy)
	if site == nil || !slices.ContainsFunc(proxy.Ports, func(p string) bool { return strings.HasSuffix(p, ":"+string(site[1])) }) {
		t.Errorf("compose's proxy publishes %v; Caddy's site listens at %q", proxy.Ports, site)
	}

	started := startComposeNodes(t, img, nodes, nil)
	// One cluster: a status set on one node is read on the other.
	if code, body := rest(t, started[0], http.MethodPut, "/users/me/status", 5, "eve", `{"is_busy":true}`); code != http.StatusOK {
		t.Fatalf("PUT on %s: %d %s", nodes[0].Name, code, body)
	}
	testkit.Eventually(t, 20*time.Second, func() error {
		if code, body := rest(t, started[1], http.MethodGet, "/users/5/presence", 1, "watcher", ""); code != http.StatusOK || !strings.Contains(body, `"is_busy":true`) {
			return fmt.Errorf("GET on %s: %d %s", nodes[1].Name, code, body)
		}
		return nil
	})
}

// caddySite is the Caddyfile's one site address, a port: ":80 {".
var caddySite = regexp.MustCompile(`(?m)^:(\d+) \{$`)

// startComposeNodes starts the compose file's nodes from the image's
// binary, one after the other, each with the image's environment, then
// its service's, then override, and the addresses and the database of
// this test. Each must come up ready, say so on its start-up line, and
// count the nodes started so far.
func startComposeNodes(t *testing.T, img image, nodes []service, override map[string]string) []*node {
	t.Helper()
	db := pgtest.Schema(t)
	var started []*node
	for i, svc := range nodes {
		env := mergeEnv(img.env, svc.Environment, override)
		env["PRESENCE_ADDR"], env["PRESENCE_ADMIN_ADDR"], env["PRESENCE_DATABASE_URL"] = "127.0.0.1:0", "127.0.0.1:0", db
		// Node ids are unique in the database, which parallel tests share.
		env["PRESENCE_NODE_ID"] += "-" + t.Name()
		var list []string
		for k, v := range env {
			list = append(list, k+"="+v)
		}
		n := startProcess(t, img.binary, env["PRESENCE_NODE_ID"], svc.Command, list)
		started = append(started, n)
		rec := startupLine(t, n.logs.String())
		if rec["version"] != imageVersion || rec["store"] != "postgresql" || rec["node_id"] != env["PRESENCE_NODE_ID"] {
			t.Fatalf("node %s's start-up line: %v", svc.Name, rec)
		}
		// The same toolchain built this test and the image's binary.
		f := metricstest.Scrape(t, "http://"+rec["admin_addr"].(string)+"/metrics")
		if v := f.Value(t, "presenced_build_info", "goversion", runtime.Version(), "revision", imageRevision, "version", imageVersion); v != 1 {
			t.Fatalf("node %s: presenced_build_info %v", svc.Name, v)
		}
		if got := f.Value(t, "presenced_cluster_nodes"); got != float64(i+1) {
			t.Fatalf("node %s sees %v nodes, want %d", svc.Name, got, i+1)
		}
		if code, _ := n.readyz(); code != http.StatusOK {
			t.Fatalf("node %s's public /readyz, which Caddy checks: %d", svc.Name, code)
		}
	}
	return started
}

func mergeEnv(maps ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// TestComposeProxy runs the compose file's proxy for real: Caddy with
// deploy/Caddyfile (its site and upstreams moved to this test's
// addresses) in front of the two nodes with the compose file's settings.
// Sockets upgrade through it, and the nodes' per-address limit counts
// the client's address, which Caddy writes into the header that
// PRESENCE_CLIENT_IP_HEADER names, not Caddy's own, and not an address a
// client writes there itself.
func TestComposeProxy(t *testing.T) {
	caddy, err := exec.LookPath("caddy")
	if err != nil {
		needs.Missing(t, "caddy is not on PATH", "apt-get install caddy")
	}
	img := buildImage(t)
	nodes := presencedServices(t, parseCompose(t))
	// One new socket per client address and node, refilled far more
	// slowly than the test runs.
	started := startComposeNodes(t, img, nodes, map[string]string{
		"PRESENCE_SOCKET_BURST_PER_IP":           "1",
		"PRESENCE_MAX_SOCKETS_PER_SECOND_PER_IP": "0.001",
	})
	front := startCaddy(t, caddy, started)

	// Clients come from addresses of their own on the loopback network;
	// Caddy reaches the nodes from 127.0.0.1.
	from := func(ip string) *websocket.Dialer {
		return &websocket.Dialer{HandshakeTimeout: 10 * time.Second, NetDialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}).DialContext}
	}
	url := "ws://" + front + "/ws"

	// A socket through the proxy works both ways: it subscribes, and a
	// status set over REST, through the proxy too, reaches it.
	watcher, resp, err := dialURL(t, from("127.0.0.2"), url, nil, 1, "watcher")
	if err != nil {
		t.Fatalf("WebSocket through Caddy: %v (%v)", err, resp)
	}
	watcher.subscribe(5)
	if code, body := restAt(t, front, http.MethodPut, "/users/me/status", 5, "eve", `{"is_busy":true}`); code != http.StatusOK {
		t.Fatalf("PUT through Caddy: %d %s", code, body)
	}
	watcher.await(5, "busy", 20*time.Second, func(p presence) bool { return p.IsBusy })

	// A client at 127.0.0.3 that writes a new address into the header at
	// each try still gets at most one socket per node: Caddy replaces or
	// appends to what it wrote, and the node reads Caddy's entry.
	admitted, refused := 0, 0
	for i := range len(nodes) + 1 {
		h := http.Header{"X-Forwarded-For": {fmt.Sprintf("198.51.100.%d", i+1)}}
		_, resp, err := dialURL(t, from("127.0.0.3"), url, h, int64(10+i), "forger")
		switch {
		case err == nil:
			admitted++
		case resp != nil && resp.StatusCode == http.StatusTooManyRequests:
			refused++
		default:
			t.Fatalf("socket %d from 127.0.0.3: %v (%v)", i+1, err, resp)
		}
	}
	if admitted > len(nodes) || refused == 0 {
		t.Fatalf("from one address with forged headers: %d sockets admitted, %d refused; want at most one per node (%d)", admitted, refused, len(nodes))
	}
	// A client at another address is admitted: the nodes did not count
	// the sockets above against Caddy's address, which all share.
	if _, resp, err := dialURL(t, from("127.0.0.4"), url, nil, 20, "other"); err != nil {
		t.Fatalf("a socket from a new address after 127.0.0.3 used its limit: %v (%v); the nodes count the proxy's address, not the client's", err, resp)
	}
}

// startCaddy runs deploy/Caddyfile in front of nodes, with its site on a
// free loopback port and its upstreams the nodes' addresses (in the
// order compose names them), without Caddy's admin endpoint. It returns
// the proxy's address once it answers /readyz.
func startCaddy(t *testing.T, caddy string, nodes []*node) string {
	t.Helper()
	data, err := os.ReadFile("../../deploy/Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	upstreams := regexp.MustCompile(`(?m)^(\s*reverse_proxy )[^{]+\{`)
	if caddySite.Find(data) == nil || upstreams.Find(data) == nil {
		t.Fatal("the Caddyfile has no site at a port or no reverse_proxy block")
	}
	var addrs []string
	for _, n := range nodes {
		addrs = append(addrs, n.addr)
	}
	data = upstreams.ReplaceAll(data, []byte("${1}"+strings.Join(addrs, " ")+" {"))
	// Caddy cannot be told to pick a port and say which, so the test
	// picks a free one, and picks again when another process took it
	// before Caddy bound it.
	for try := 1; ; try++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		front := ln.Addr().String()
		_ = ln.Close()
		conf := caddySite.ReplaceAll(data, []byte("http://"+front+" {\n\tbind 127.0.0.1"))
		conf = append([]byte("{\n\tadmin off\n}\n"), conf...)
		logs, ok := runCaddy(t, caddy, conf, front)
		if ok {
			return front
		}
		if !strings.Contains(logs, "address already in use") || try == 5 {
			t.Fatalf("Caddy exited:\n%s\nits configuration:\n%s", logs, conf)
		}
	}
}

// runCaddy runs Caddy with the configuration conf until the test ends,
// and waits until it proxies /readyz at front. It reports false, with
// Caddy's log, when Caddy exits first.
func runCaddy(t *testing.T, caddy string, conf []byte, front string) (string, bool) {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(file, conf, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(caddy, "run", "--adapter", "caddyfile", "--config", file)
	// Caddy keeps its state under the home and XDG folders.
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	logs := &testkit.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("Caddy's configuration:\n%s\nCaddy's log:\n%s", conf, logs)
		}
	})
	hc := http.Client{Timeout: 5 * time.Second}
	died := false
	testkit.Eventually(t, 30*time.Second, func() error {
		select {
		case <-exited:
			died = true
			return nil
		default:
		}
		code := 0
		if resp, err := hc.Get("http://" + front + "/readyz"); err == nil {
			code = resp.StatusCode
			_ = resp.Body.Close()
		}
		if code != http.StatusOK {
			return fmt.Errorf("Caddy does not proxy /readyz yet (last: %d):\n%s", code, logs)
		}
		return nil
	})
	if died {
		return logs.String(), false
	}
	return "", true
}
