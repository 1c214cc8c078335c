package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Lines as bench/run.sh versus writes them, trimmed to the fields the
// table reads: three runs of presenced's fanout, two of Centrifugo's, an
// idle run of each and a progress line mixed in.
const sample = `{"scenario":"fanout","label":"fanout1k-100","server":"presenced","load1":2,"load1_end":3,"latency":{"p50_ms":10,"p99_ms":30},"cpu":{"server_us_per":6}}
{"scenario":"fanout","label":"fanout1k-100","server":"presenced","load1":4,"load1_end":5,"latency":{"p50_ms":12,"p99_ms":90},"cpu":{"server_us_per":7}}
{"scenario":"fanout","label":"fanout1k-100","server":"presenced","load1":2,"load1_end":2,"latency":{"p50_ms":11,"p99_ms":20},"cpu":{"server_us_per":8}}
14:00:00.000 fanout: connecting 1001 sockets
{"scenario":"fanout","label":"fanout1k-100","server":"centrifugo","load1":3,"load1_end":3,"latency":{"p50_ms":20,"p99_ms":40},"cpu":{"server_us_per":10}}
{"scenario":"fanout","label":"fanout1k-100","server":"centrifugo","load1":3,"load1_end":6,"latency":{"p50_ms":22,"p99_ms":50},"cpu":{"server_us_per":12}}
{"scenario":"idle","label":"idle19k","server":"presenced","points":[{"sockets":1000,"bytes_per_socket":90000},{"sockets":19000,"bytes_per_socket":21000}]}
{"scenario":"idle","label":"idle19k","server":"centrifugo","points":[{"sockets":19000,"bytes_per_socket":60000}]}
`

func TestTableOfMediansAndRatios(t *testing.T) {
	path := filepath.Join(t.TempDir(), "versus.jsonl")
	if err := os.WriteFile(path, []byte(sample), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run([]string{path}, &out, &out); err != nil {
		t.Fatal(err)
	}
	table := out.String()
	for _, want := range []string{
		// medians 11 and 21 (of 20 and 22), ratio 0.52, CPU medians 7 and 11
		"| 1,000 watchers, 100 changes/s: p50 | 11 ms (10–12) | 21 ms (20–22) | 0.52 | ≤ 1× | yes | 7 / 11 µs/delivery | 3 / 2 | 2.0–6.0 |",
		// 30 against 45: 0.67, within 0.7
		"| 1,000 watchers, 100 changes/s: p99 | 30 ms (20–90) | 45 ms (40–50) | 0.67 | ≤ 0.7× | yes |",
		// 7 against 11: 0.64, within 0.8
		"| 1,000 watchers, 100 changes/s: server CPU per delivery | 7 µs (6–8) | 11 µs (10–12) | 0.64 | ≤ 0.8× | yes |",
		// 21,000 B is within 0.4× of 60,000 but over 20,000 B: missed
		"| idle, 19,000 sockets: bytes per socket | 21,000 B | 60,000 B | 0.35 | ≤ 0.4×, ≤ 20,000 B | **no** |",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks\n%s\nin\n%s", want, table)
		}
	}
	if strings.Contains(table, "mesh") {
		t.Errorf("a case without runs has a row:\n%s", table)
	}
}

func TestNeedsAFile(t *testing.T) {
	var out bytes.Buffer
	if err := run(nil, &out, &out); err == nil {
		t.Fatal("no error without a file")
	}
	if err := run([]string{filepath.Join(t.TempDir(), "missing.jsonl")}, &out, &out); err == nil {
		t.Fatal("no error for a missing file")
	}
}

// Before and after a change of presenced: the same rows, without targets.
func TestBeforeAndAfter(t *testing.T) {
	dir := t.TempDir()
	before, after := filepath.Join(dir, "before.jsonl"), filepath.Join(dir, "after.jsonl")
	lines := func(p99s ...string) string {
		var b strings.Builder
		for _, p := range p99s {
			b.WriteString(`{"scenario":"fanout","label":"fanout1k-100","server":"presenced","latency":{"p50_ms":1,"p99_ms":` + p + `},"cpu":{"server_us_per":5}}` + "\n")
		}
		return b.String()
	}
	if err := os.WriteFile(before, []byte(lines("40", "50", "60")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(after, []byte(lines("20", "30", "90")), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run([]string{"-before", before, "-after", after}, &out, &out); err != nil {
		t.Fatal(err)
	}
	want := "| 1,000 watchers, 100 changes/s: p99 | 30 ms (20–90) | 50 ms (40–60) | 0.60 | 5 / 5 µs/delivery | 3 / 3 |"
	if !strings.Contains(out.String(), want) || strings.Contains(out.String(), "target") {
		t.Fatalf("table lacks\n%s\nor has targets:\n%s", want, out.String())
	}
	if err := run([]string{"-before", before}, &out, &out); err == nil {
		t.Fatal("no error for -before alone")
	}
}
