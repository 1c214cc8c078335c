// Command compare prints presenced and Centrifugo side by side from the
// JSON lines of `bench/run.sh versus`, as the Markdown table of
// BENCHMARKS.md:
//
//	go run ./bench/compare bench/results/2026-12-07-versus.jsonl
//
// Each figure is the median of the runs of one server (the range beside
// it), the ratio is presenced's over Centrifugo's, and the target is issue
// 16's. The server's CPU per delivery or per connection stands beside
// every rate and latency: on a shared machine it varies far less.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/presenced/presenced/internal/loadgen"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "compare:", err)
		}
		os.Exit(1)
	}
}

// result holds the fields of a presence-bench line that the table uses.
type result struct {
	Scenario string  `json:"scenario"`
	Label    string  `json:"label"`
	Server   string  `json:"server"`
	Load1    float64 `json:"load1"`
	Load1End float64 `json:"load1_end"`
	Points   []struct {
		Sockets   int     `json:"sockets"`
		PerSocket float64 `json:"bytes_per_socket"`
	} `json:"points"`
	Delivered       int64   `json:"delivered"`
	Lost            int64   `json:"lost"`
	Superseded      int64   `json:"superseded"`
	DeliveredPerSec float64 `json:"delivered_per_s"`
	Latency         struct {
		P50 float64 `json:"p50_ms"`
		P99 float64 `json:"p99_ms"`
	} `json:"latency"`
	Frames int64 `json:"frames"`
	CPU    struct {
		Server    float64 `json:"server_s"`
		ServerPer float64 `json:"server_us_per"`
	} `json:"cpu"`
	VsBare float64 `json:"presence_vs_bare"`
}

// row is one line of the table: a figure of one case, and the target.
type row struct {
	label, figure, unit string
	value               func(result) float64
	// target says whether presenced's figure p meets the target given
	// Centrifugo's c (NaN when there is none), and how it reads.
	target func(p, c float64) bool
	goal   string
	// cpu is the unit of the CPU figure beside it, "" for none.
	cpu string
}

func ratioAtMost(k float64) func(p, c float64) bool {
	return func(p, c float64) bool { return !math.IsNaN(c) && p <= k*c }
}

var rows = []row{
	{"idle19k", "idle, 19,000 sockets: bytes per socket", "B", func(r result) float64 {
		if len(r.Points) == 0 {
			return math.NaN()
		}
		return r.Points[len(r.Points)-1].PerSocket
	}, func(p, c float64) bool { return p <= 20000 && ratioAtMost(0.4)(p, c) }, "≤ 0.4×, ≤ 20,000 B", "µs/connection"},
	{"fanout1k-100", "1,000 watchers, 100 changes/s: p50", "ms", func(r result) float64 { return r.Latency.P50 }, ratioAtMost(1), "≤ 1×", "µs/delivery"},
	{"fanout1k-100", "1,000 watchers, 100 changes/s: p99", "ms", func(r result) float64 { return r.Latency.P99 }, ratioAtMost(0.7), "≤ 0.7×", "µs/delivery"},
	{"fanout1k-100", "1,000 watchers, 100 changes/s: server CPU per delivery", "µs", func(r result) float64 { return r.CPU.ServerPer }, ratioAtMost(0.8), "≤ 0.8×", ""},
	{"fanout1k-100", "1,000 watchers, 100 changes/s: events per frame", "", eventsPerFrame, nil, "", ""},
	{"fanout1k-100", "1,000 watchers, 100 changes/s: server CPU per frame", "µs", cpuPerFrame, nil, "", ""},
	{"fanout1k-100", "1,000 watchers, 100 changes/s: superseded (merged, a later change came instead)", "", func(r result) float64 { return float64(r.Superseded) }, nil, "", ""},
	{"fanout1k-100", "1,000 watchers, 100 changes/s: lost", "", func(r result) float64 { return float64(r.Lost) }, nil, "", ""},
	{"fanout10k-5", "10,000 watchers, 5 changes/s: p50", "ms", func(r result) float64 { return r.Latency.P50 }, nil, "", "µs/delivery"},
	{"fanout10k-5", "10,000 watchers, 5 changes/s: p99", "ms", func(r result) float64 { return r.Latency.P99 }, ratioAtMost(1), "≤ 1×", "µs/delivery"},
	{"fanout10k-5", "10,000 watchers, 5 changes/s: superseded (merged, a later change came instead)", "", func(r result) float64 { return float64(r.Superseded) }, nil, "", ""},
	{"fanout10k-5", "10,000 watchers, 5 changes/s: lost", "", func(r result) float64 { return float64(r.Lost) }, nil, "", ""},
	{"fanout10k-20", "10,000 watchers, 20 changes/s offered: deliveries/s", "/s", func(r result) float64 { return r.DeliveredPerSec },
		func(p, c float64) bool { return !math.IsNaN(c) && p >= 1.3*c }, "≥ 1.3×", "µs/delivery"},
	{"fanout10k-20", "10,000 watchers, 20 changes/s offered: delivered or superseded/s (each watcher current)", "/s", func(r result) float64 {
		if r.DeliveredPerSec == 0 {
			return math.NaN()
		}
		// Over the same span as deliveries/s: from the first change to the last delivery.
		return float64(r.Delivered+r.Superseded) * r.DeliveredPerSec / float64(r.Delivered)
	}, nil, "", "µs/delivery"},
	{"fanout10k-20", "10,000 watchers, 20 changes/s offered: superseded", "", func(r result) float64 { return float64(r.Superseded) }, nil, "", ""},
	{"fanout10k-20", "10,000 watchers, 20 changes/s offered: lost (not delivered within the tool's 30 s wait)", "", func(r result) float64 { return float64(r.Lost) }, nil, "", ""},
	{"fanout10k-20", "10,000 watchers, 20 changes/s offered: server CPU per delivery", "µs", func(r result) float64 { return r.CPU.ServerPer }, ratioAtMost(0.8), "≤ 0.8×", ""},
	{"fanout10k-20x20", "10,000 watchers of 20 users, a change each per second: deliveries/s", "/s", func(r result) float64 { return r.DeliveredPerSec },
		func(p, c float64) bool { return !math.IsNaN(c) && p >= 1.3*c }, "≥ 1.3×", "µs/delivery"},
	{"fanout10k-20x20", "10,000 watchers of 20 users, a change each per second: superseded", "", func(r result) float64 { return float64(r.Superseded) }, nil, "", ""},
	{"fanout10k-20x20", "10,000 watchers of 20 users, a change each per second: lost (not delivered within the tool's 30 s wait)", "", func(r result) float64 { return float64(r.Lost) }, nil, "", ""},
	{"fanout10k-20x20", "10,000 watchers of 20 users, a change each per second: events per frame", "", eventsPerFrame, nil, "", ""},
	{"fanout10k-20x20", "10,000 watchers of 20 users, a change each per second: server CPU per frame", "µs", cpuPerFrame, nil, "", ""},
	{"fanout10k-20x20", "10,000 watchers of 20 users, a change each per second: server CPU per delivery", "µs", func(r result) float64 { return r.CPU.ServerPer }, ratioAtMost(0.8), "≤ 0.8×", ""},
	{"mesh5k", "mesh 5,000 × 20, a change each per 5 s: p50", "ms", func(r result) float64 { return r.Latency.P50 }, nil, "", "µs/delivery"},
	{"mesh5k", "mesh 5,000 × 20, a change each per 5 s: p99", "ms", func(r result) float64 { return r.Latency.P99 }, ratioAtMost(0.5), "≤ 0.5×", "µs/delivery"},
	{"mesh5k", "mesh 5,000 × 20, a change each per 5 s: lost", "", func(r result) float64 { return float64(r.Lost) },
		func(p, _ float64) bool { return p == 0 }, "0", ""},
	{"rest", "REST batch read of 100 ids, over a bare net/http handler", "", func(r result) float64 { return r.VsBare },
		func(p, _ float64) bool { return p >= 0.6 }, "≥ 0.6", ""},
}

// eventsPerFrame and cpuPerFrame show how much packing several events
// into one frame, one write, weighs in the CPU per delivery.
func eventsPerFrame(r result) float64 {
	if r.Frames == 0 {
		return math.NaN()
	}
	return float64(r.Delivered) / float64(r.Frames)
}

func cpuPerFrame(r result) float64 {
	if r.Frames == 0 || r.CPU.Server == 0 {
		return math.NaN()
	}
	return r.CPU.Server * 1e6 / float64(r.Frames)
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	before := fs.String("before", "", "lines of presenced before a change (bench/ab.sh): print it against -after instead of Centrifugo")
	after := fs.String("after", "", "lines of presenced after the change, with -before")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *before != "" || *after != "" {
		if *before == "" || *after == "" || fs.NArg() > 0 {
			return errors.New("-before and -after go together, and without other files")
		}
		a, err := loadgen.ReadLines[result](*after)
		if err != nil {
			return err
		}
		b, err := loadgen.ReadLines[result](*before)
		if err != nil {
			return err
		}
		table(stdout, "after", "before", false, func(label string) ([]result, []result) {
			return pick(a, label, "presenced"), pick(b, label, "presenced")
		})
		return nil
	}
	if fs.NArg() == 0 {
		return errors.New("name one or more files of presence-bench JSON lines from bench/run.sh versus")
	}
	all, err := loadgen.ReadLines[result](fs.Args()...)
	if err != nil {
		return err
	}
	table(stdout, "presenced", "Centrifugo", true, func(label string) ([]result, []result) {
		return pick(all, label, "presenced"), pick(all, label, "centrifugo")
	})
	return nil
}

// table prints a row for each figure of which column a has runs; the ratio
// is a's median over b's, and targets are shown when asked for.
func table(w io.Writer, a, b string, targets bool, runs func(label string) ([]result, []result)) {
	goal := " target | met? |"
	if !targets {
		goal = ""
	}
	fmt.Fprintf(w, "| figure | %s | %s | ratio |%s server CPU, %s / %s | runs | load |\n", a, b, goal, a, b)
	fmt.Fprintf(w, "|---|---|---|---|%s---|---|---|\n", strings.Repeat("---|", strings.Count(goal, "|")))
	for _, rw := range rows {
		p, c := runs(rw.label)
		if len(p) == 0 {
			continue
		}
		pm, cm := median(p, rw.value), median(c, rw.value)
		ratio, met := "—", "—"
		if !math.IsNaN(cm) && cm != 0 {
			ratio = fmt.Sprintf("%.2f", pm/cm)
		}
		if rw.target != nil {
			met = map[bool]string{true: "yes", false: "**no**"}[rw.target(pm, cm)]
		}
		cpu := ""
		if rw.cpu != "" {
			perCPU := func(r result) float64 { return r.CPU.ServerPer }
			cpu = fmt.Sprintf("%s / %s %s", num(median(p, perCPU)), num(median(c, perCPU)), rw.cpu)
		}
		cols := ""
		if targets {
			cols = fmt.Sprintf(" %s | %s |", rw.goal, met)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |%s %s | %d / %d | %s |\n",
			rw.figure, withRange(p, rw.value, rw.unit), withRange(c, rw.value, rw.unit), ratio, cols, cpu,
			len(p), len(c), loads(append(slices.Clone(p), c...)))
	}
}

// pick returns the runs of one case against one server.
func pick(all []result, label, server string) []result {
	var out []result
	for _, r := range all {
		s := r.Server
		if s == "" {
			s = "presenced"
		}
		if r.Label == label && s == server {
			out = append(out, r)
		}
	}
	return out
}

// median of value over rs; NaN for none.
func median(rs []result, value func(result) float64) float64 {
	v := values(rs, value)
	if len(v) == 0 {
		return math.NaN()
	}
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func values(rs []result, value func(result) float64) []float64 {
	var v []float64
	for _, r := range rs {
		if x := value(r); !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	slices.Sort(v)
	return v
}

// withRange is the median with the smallest and largest runs beside it.
func withRange(rs []result, value func(result) float64, unit string) string {
	v := values(rs, value)
	if len(v) == 0 {
		return "—"
	}
	s := num(median(rs, value))
	if unit != "" {
		s += " " + unit
	}
	if len(v) > 1 && v[0] != v[len(v)-1] {
		s += fmt.Sprintf(" (%s–%s)", num(v[0]), num(v[len(v)-1]))
	}
	return s
}

// num prints a figure with the digits that matter.
func num(f float64) string {
	switch a := math.Abs(f); {
	case math.IsNaN(f):
		return "—"
	case a >= 1000:
		return thousands(int64(math.Round(f)))
	case a >= 100:
		return fmt.Sprintf("%.0f", f)
	case a >= 10:
		return trimZeros(fmt.Sprintf("%.1f", f))
	default:
		return trimZeros(fmt.Sprintf("%.2f", f))
	}
}

func trimZeros(s string) string { return strings.TrimSuffix(strings.TrimRight(s, "0"), ".") }

func thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// loads is the range of the load averages at the start and end of runs.
func loads(rs []result) string {
	var v []float64
	for _, r := range rs {
		v = append(v, r.Load1, r.Load1End)
	}
	if len(v) == 0 {
		return ""
	}
	return fmt.Sprintf("%.1f–%.1f", slices.Min(v), slices.Max(v))
}
