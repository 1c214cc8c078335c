package main

import (
	"bytes"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Lines as presence-bench prints them, trimmed to the fields the charts
// read, with a progress line mixed in.
const sample = `{"scenario":"idle","points":[{"sockets":1000,"bytes_per_socket":31000},{"sockets":10000,"bytes_per_socket":17000}]}
{"scenario":"idle","points":[{"sockets":1000,"bytes_per_socket":33000},{"sockets":10000,"bytes_per_socket":18000}]}
{"scenario":"idle","points":[{"sockets":1000,"bytes_per_socket":90000},{"sockets":10000,"bytes_per_socket":16000}]}
14:00:00.000 idle: connecting sockets 0..1000
{"scenario":"fanout","clients":100,"rate":10,"lost":0,"offered_per_s":1000,"delivered_per_s":1000,"latency":{"p50_ms":0.5,"p99_ms":1.2}}
{"scenario":"fanout","clients":1000,"rate":10,"lost":0,"offered_per_s":10000,"delivered_per_s":9990,"latency":{"p50_ms":0.9,"p99_ms":3.5}}
{"scenario":"fanout","clients":10000,"rate":10,"lost":5,"offered_per_s":100000,"delivered_per_s":80000,"latency":{"p50_ms":90,"p99_ms":900}}
{"scenario":"mesh","clients":5000,"rate":1000,"lost":0,"latency":{"p50_ms":0.7,"p99_ms":1.5}}
`

// svgDoc is what the test reads back from an SVG file.
type svgDoc struct {
	Polylines []struct {
		Points string `xml:"points,attr"`
	} `xml:"polyline"`
	Texts []string `xml:"text"`
}

func readSVG(t *testing.T, path string) svgDoc {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc svgDoc
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s is not well-formed XML: %v", path, err)
	}
	return doc
}

func TestChartsFromBenchLines(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "results.jsonl")
	if err := os.WriteFile(in, []byte(sample), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"-out", dir, in}, io.Discard); err != nil {
		t.Fatal(err)
	}

	mem := readSVG(t, filepath.Join(dir, "memory.svg"))
	if len(mem.Polylines) != 1 || len(strings.Fields(mem.Polylines[0].Points)) != 2 {
		t.Fatalf("memory chart: %+v; want one line through two points", mem.Polylines)
	}
	// The median of three runs at 1,000 sockets is 33 kB, so the y axis
	// ends at 40: the outlier of 90 kB must not stretch it.
	if !contains(mem.Texts, "RSS / sockets") || !contains(mem.Texts, "40") || contains(mem.Texts, "90") || contains(mem.Texts, "100") {
		t.Fatalf("memory chart texts %q", mem.Texts)
	}

	lat := readSVG(t, filepath.Join(dir, "latency.svg"))
	if len(lat.Polylines) != 2 || !contains(lat.Texts, "p99, 10/s") || !contains(lat.Texts, "p50, 10/s") {
		t.Fatalf("latency chart: %d lines, texts %q", len(lat.Polylines), lat.Texts)
	}
	for _, p := range lat.Polylines {
		if n := len(strings.Fields(p.Points)); n != 2 {
			t.Fatalf("latency line with %d points; the run that lost events must be left out", n)
		}
	}

	thr := readSVG(t, filepath.Join(dir, "throughput.svg"))
	if len(thr.Polylines) != 4 { // three watcher counts and the diagonal
		t.Fatalf("throughput chart has %d lines", len(thr.Polylines))
	}
}

func TestMedians(t *testing.T) {
	m := medians{}
	for _, y := range []float64{5, 1, 90} {
		m.add("a", 1, y)
	}
	m.add("a", 2, 4)
	m.add("a", 2, 6)
	s := m.series()
	if len(s) != 1 || len(s[0].pts) != 2 || s[0].pts[0] != (point{1, 5}) || s[0].pts[1] != (point{2, 5}) {
		t.Fatalf("%+v", s)
	}
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.jsonl")
	if err := os.WriteFile(bad, []byte("{not json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	for _, args := range [][]string{nil, {filepath.Join(dir, "missing.jsonl")}, {bad}} {
		if err := run(args, &stderr); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if strings.TrimSpace(v) == s {
			return true
		}
	}
	return false
}
