package layering

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/presenced/presenced/internal/needs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(needs.Main(m)) }

const module = "github.com/presenced/presenced"

// testKits are the packages that only tests may import.
var testKits = []string{
	"storage/storetest", "internal/pgtest", "metrics/metricstest", "internal/testserver",
	"internal/needs", "internal/readme", "internal/faultproxy", "internal/testkit",
}

// rule says that the module's packages matching from never depend on a
// package matching never: not through their imports, nor (unless direct)
// through what those import. A pattern is an import path, or one ending
// in /... for it and those below it; nonStandard stands for any package
// outside the standard library but the package itself.
type rule struct {
	from, never string
	direct      bool     // only the imports the source names
	except      []string // patterns of packages that from does not cover
	why         string
}

const nonStandard = "(outside the standard library)"

// mod is the import path of the module's package p.
func mod(p string) string { return module + "/" + p }

func rules() []rule {
	var kits []string
	for _, k := range testKits {
		kits = append(kits, mod(k))
	}
	rs := []rule{
		{from: mod("hub"), never: nonStandard, why: "the domain knows no HTTP, WebSocket, SQL or JWT library"},
		{from: mod("hub"), never: "net/http", why: "the domain knows no HTTP"},
		{from: mod("hub"), never: "database/sql", why: "the domain knows no SQL"},
		{from: mod("storage/..."), never: mod("transport/..."), why: "storage and transport meet only in hub's interfaces"},
		{from: mod("transport/..."), never: mod("storage/..."), why: "storage and transport meet only in hub's interfaces"},
		{from: mod("transport/..."), never: mod("auth"), why: "transport verifies tokens through the Verifier it declares"},
		{from: mod("..."), never: "github.com/prometheus/...", direct: true, except: []string{mod("metrics/..."), mod("cmd/...")},
			why: "Prometheus stays behind the observers that the other packages declare"},
	}
	for _, p := range []string{"hub", "auth", "storage/...", "transport/..."} {
		rs = append(rs, rule{from: mod(p), never: "github.com/prometheus/...", why: "measured through an observer interface, not tied to one monitoring system"})
	}
	for _, kit := range kits {
		rs = append(rs, rule{from: mod("..."), never: kit, except: kits, why: "a test kit is for tests: production code must not carry it"})
	}
	return rs
}

// pkg is what go list says of one package.
type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

// TestLayering checks every rule against the packages as go list sees
// them, without their tests.
func TestLayering(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "-json=ImportPath,Imports,Deps", module+"/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if errors.Is(err, exec.ErrNotFound) {
		needs.Missing(t, "the go command is not on PATH", "put the go command on PATH")
	}
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	pkgs, err := decode(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) < 15 {
		t.Fatalf("go list named only %d of the module's packages", len(pkgs))
	}
	for _, v := range check(pkgs, rules()) {
		t.Error(v)
	}
}

// TestLayeringFailsWhenARuleIsBroken feeds check a module that breaks
// each rule once, so that the rules cannot pass for want of matching.
func TestLayeringFailsWhenARuleIsBroken(t *testing.T) {
	m := mod
	broken := map[string]pkg{
		m("hub"):                {ImportPath: m("hub"), Imports: []string{"net/http"}, Deps: []string{"net/http", "github.com/gorilla/websocket"}},
		m("storage/postgres"):   {ImportPath: m("storage/postgres"), Imports: []string{m("transport")}, Deps: []string{m("transport"), m("auth")}},
		m("transport"):          {ImportPath: m("transport"), Imports: []string{m("auth")}, Deps: []string{m("auth")}},
		m("transport/webhook"):  {ImportPath: m("transport/webhook"), Imports: []string{m("storage/memory")}, Deps: []string{m("storage/memory")}},
		m("auth"):               {ImportPath: m("auth"), Imports: []string{"github.com/prometheus/client_golang/prometheus"}, Deps: []string{"github.com/prometheus/client_golang/prometheus"}},
		m("internal/presenced"): {ImportPath: m("internal/presenced"), Imports: []string{m("internal/needs")}, Deps: []string{m("internal/needs")}},
		m("metrics"):            {ImportPath: m("metrics"), Imports: []string{"github.com/prometheus/client_golang/prometheus"}, Deps: []string{"github.com/prometheus/client_golang/prometheus"}},
		m("internal/pgtest"):    {ImportPath: m("internal/pgtest"), Imports: []string{m("internal/needs")}, Deps: []string{m("internal/needs")}},
	}
	got := check(broken, rules())
	for _, want := range []string{
		"hub imports github.com/gorilla/websocket",
		"hub imports net/http",
		"storage/postgres imports transport",
		"transport imports auth",
		"transport/webhook imports storage/memory",
		"auth imports github.com/prometheus/client_golang/prometheus (directly)",
		"auth imports github.com/prometheus/client_golang/prometheus: measured",
		"internal/presenced imports internal/needs",
	} {
		if !slices.ContainsFunc(got, func(v string) bool { return strings.HasPrefix(v, want) }) {
			t.Errorf("no violation %q among:\n%s", want, strings.Join(got, "\n"))
		}
	}
	for _, v := range got {
		if strings.HasPrefix(v, "metrics ") || strings.HasPrefix(v, "internal/pgtest ") {
			t.Errorf("a package the rules allow was reported: %s", v)
		}
	}
}

// decode reads go list's stream of JSON objects and keeps the module's
// packages.
func decode(r io.Reader) (map[string]pkg, error) {
	pkgs := map[string]pkg{}
	dec := json.NewDecoder(r)
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			return pkgs, nil
		} else if err != nil {
			return nil, fmt.Errorf("go list output: %w", err)
		}
		if p.ImportPath == module || strings.HasPrefix(p.ImportPath, module+"/") {
			pkgs[p.ImportPath] = p
		}
	}
}

// check returns one line for each package and dependency that breaks a
// rule.
func check(pkgs map[string]pkg, rules []rule) []string {
	var out []string
	for _, r := range rules {
		for _, p := range pkgs {
			if !matches(p.ImportPath, r.from) || slices.ContainsFunc(r.except, func(e string) bool { return matches(p.ImportPath, e) }) {
				continue
			}
			deps, how := p.Deps, ""
			if r.direct {
				deps, how = p.Imports, " (directly)"
			}
			for _, d := range deps {
				if d == p.ImportPath || !dependsOn(d, r.never) {
					continue
				}
				out = append(out, fmt.Sprintf("%s imports %s%s: %s", short(p.ImportPath), short(d), how, r.why))
			}
		}
	}
	slices.Sort(out)
	return out
}

// dependsOn says whether the dependency d matches the pattern never.
func dependsOn(d, never string) bool {
	if never == nonStandard {
		// The standard library's paths have no dot in their first
		// element; every other path has one.
		first, _, _ := strings.Cut(d, "/")
		return strings.Contains(first, ".")
	}
	return matches(d, never)
}

// matches says whether the import path p matches pattern.
func matches(p, pattern string) bool {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return p == base || strings.HasPrefix(p, base+"/")
	}
	return p == pattern
}

func short(p string) string { return strings.TrimPrefix(p, module+"/") }
