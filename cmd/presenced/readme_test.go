package main

import (
	"flag"
	"io"
	"strings"
	"testing"

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
