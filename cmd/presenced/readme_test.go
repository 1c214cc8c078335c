package main

import (
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/presenced/presenced/internal/needs"
	"github.com/presenced/presenced/internal/readme"
)

// TestReadmeListsEveryFlag holds the README's configuration table and the
// flags together: each flag has a row naming its variable and its
// default, and each row names a flag that exists.
func TestReadmeListsEveryFlag(t *testing.T) {
	section := readme.Section(t, "### Configuration reference")
	rows := map[string][]string{} // flag name -> environment, default, meaning
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "| `-") {
			continue
		}
		cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
		if len(cells) != 4 {
			t.Errorf("README row %q does not have four cells", line)
			continue
		}
		name := strings.Trim(strings.TrimSpace(cells[0]), "`-")
		if _, dup := rows[name]; dup {
			t.Errorf("README lists -%s twice", name)
		}
		rows[name] = []string{strings.TrimSpace(cells[1]), strings.TrimSpace(cells[2]), strings.TrimSpace(cells[3])}
	}

	var o options
	fs := newFlags(&o, io.Discard)
	fs.VisitAll(func(f *flag.Flag) {
		wantDefault := ""
		if f.DefValue != "" {
			wantDefault = "`" + f.DefValue + "`"
		}
		row, ok := rows[f.Name]
		delete(rows, f.Name)
		switch {
		case !ok:
			t.Errorf("README's configuration table lacks -%s; add:\n| `-%s` | `%s` | %s | %s |", f.Name, f.Name, envName(f.Name), wantDefault, f.Usage)
		case commandLineOnly[f.Name] && !strings.HasPrefix(row[0], "none"):
			t.Errorf("README: -%s is set on the command line only; its variable cell must say none, not %s", f.Name, row[0])
		case !commandLineOnly[f.Name] && !strings.Contains(row[0], "`"+envName(f.Name)+"`"):
			t.Errorf("README: -%s's variable is %s, not %s", f.Name, envName(f.Name), row[0])
		case row[1] != wantDefault:
			t.Errorf("README: -%s defaults to %q, not %q", f.Name, wantDefault, row[1])
		case row[2] == "":
			t.Errorf("README: -%s has no meaning", f.Name)
		}
	})
	for name := range rows {
		t.Errorf("README lists -%s, which presenced does not have", name)
	}
}

// readmeHeadings returns the README's "##" and "###" headings in order,
// leaving out code blocks, whose "#" lines are shell comments.
func readmeHeadings(text string) (headings []string) {
	fence := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "```") {
			fence = !fence
		}
		if !fence && (strings.HasPrefix(line, "## ") || strings.HasPrefix(line, "### ")) {
			headings = append(headings, line)
		}
	}
	return headings
}

// anchorOf is the fragment GitHub gives a heading: lower case, spaces as
// hyphens, punctuation other than hyphens and underscores dropped.
func anchorOf(heading string) string {
	h := strings.ToLower(strings.TrimSpace(strings.TrimLeft(heading, "#")))
	var b strings.Builder
	for _, r := range h {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func readFileT(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestReadmeContentsAndLinks holds the table of contents to the headings,
// in order, and every link to a section, in the README or BENCHMARKS.md,
// to a heading that exists.
func TestReadmeContentsAndLinks(t *testing.T) {
	files := map[string]string{"README.md": readFileT(t, "../../README.md"), "BENCHMARKS.md": readFileT(t, "../../BENCHMARKS.md")}
	anchors := map[string]map[string]bool{}
	for name, text := range files {
		anchors[name] = map[string]bool{}
		for _, h := range readmeHeadings(text) {
			anchors[name][anchorOf(h)] = true
		}
		for _, line := range strings.Split(text, "\n") {
			if strings.HasPrefix(line, "# ") {
				anchors[name][anchorOf(line)] = true
			}
		}
	}

	contents := readme.Section(t, "## Contents")
	var listed []string
	for _, m := range regexp.MustCompile(`\]\(#([^)]+)\)`).FindAllStringSubmatch(contents, -1) {
		listed = append(listed, m[1])
	}
	var want []string
	for _, h := range readmeHeadings(files["README.md"]) {
		if h != "## Contents" {
			want = append(want, anchorOf(h))
		}
	}
	if !slices.Equal(listed, want) {
		t.Errorf("the table of contents lists\n  %v\nbut the headings are, in order,\n  %v", listed, want)
	}
	if strings.Count(files["README.md"][:strings.Index(files["README.md"], "\n## Contents\n")], "\n") > 40 {
		t.Errorf("the README's top, before its table of contents, is over 40 lines")
	}

	link := regexp.MustCompile(`\]\(((?:README|BENCHMARKS)\.md)?#([^)\s]+)\)`)
	for name, text := range files {
		for _, m := range link.FindAllStringSubmatch(text, -1) {
			target := m[1]
			if target == "" {
				target = name
			}
			if !anchors[target][m[2]] {
				t.Errorf("%s links to %s#%s, which is no heading there", name, target, m[2])
			}
		}
	}
}

// TestReadmeQuickStartNeedsOnlyCurl runs the README's first REST example
// as written, against a server started as its first command says, in a
// shell with curl and sed.
func TestReadmeQuickStartNeedsOnlyCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		needs.Missing(t, "curl is not on PATH", "apt-get install curl")
	}
	text := readFileT(t, "../../README.md")
	top := text[:strings.Index(text, "\n## Contents\n")]
	if !strings.Contains(top, "go run ./cmd/presenced -dev") {
		t.Fatal("the README's top does not start the server with go run ./cmd/presenced -dev")
	}
	blocks := regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(top, -1)
	if len(blocks) < 2 || !strings.Contains(blocks[1][1], "/dev/token") {
		t.Fatalf("the README's top has no REST example after its commands: %q", blocks)
	}
	script := blocks[1][1]
	for _, word := range regexp.MustCompile(`(?m)(?:^|\| *|\$\()([a-z][a-z0-9]*) `).FindAllStringSubmatch(script, -1) {
		if !slices.Contains([]string{"curl", "sed"}, word[1]) && !strings.HasPrefix(word[0], "#") {
			t.Errorf("the quick start runs %q; it should need only curl (and sed)", word[1])
		}
	}
	d := startDaemon(t, []string{"-dev"}, nil)
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", strings.ReplaceAll(script, "localhost:8080", d.addr))
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(curl)+":/usr/bin:/bin")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the quick start failed: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"is_busy":true,"wait_time":15`) ||
		!strings.Contains(lines[1], `"username":"alice","is_online":true,"is_busy":true,"wait_time":15`) {
		t.Fatalf("the quick start printed:\n%s", out)
	}
}
