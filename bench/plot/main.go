// Command plot draws the figures of BENCHMARKS.md from the JSON lines that
// presence-bench prints:
//
//	go run ./bench/plot -out bench bench/results/*.jsonl
//
// It writes memory.svg (server memory per idle socket as sockets grow),
// latency.svg (delivery latency as watchers grow) and throughput.svg
// (deliveries per second against what was offered). Where a run was
// repeated, each point is the median of the repeats.
package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/presenced/presenced/internal/loadgen"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "plot:", err)
		}
		os.Exit(1)
	}
}

func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("plot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", ".", "directory for the SVG files")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("name one or more files of presence-bench JSON lines")
	}
	runs, err := loadgen.ReadLines[result](fs.Args()...)
	if err != nil {
		return err
	}
	for name, c := range map[string]chart{
		"memory.svg":     memoryChart(runs),
		"latency.svg":    latencyChart(runs),
		"throughput.svg": throughputChart(runs),
	} {
		if len(c.series) == 0 {
			fmt.Fprintf(stderr, "plot: no data for %s\n", name)
			continue
		}
		if err := os.WriteFile(filepath.Join(*out, name), c.svg(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// result holds the fields of a presence-bench line that the charts use.
type result struct {
	Scenario string `json:"scenario"`
	Label    string `json:"label"`
	// idle
	Points []struct {
		Sockets   int     `json:"sockets"`
		PerSocket float64 `json:"bytes_per_socket"`
	} `json:"points"`
	// fanout and mesh
	Clients         int     `json:"clients"`
	Rate            float64 `json:"rate"`
	Lost            int64   `json:"lost"`
	OfferedPerSec   float64 `json:"offered_per_s"`
	DeliveredPerSec float64 `json:"delivered_per_s"`
	Latency         struct {
		P50 float64 `json:"p50_ms"`
		P99 float64 `json:"p99_ms"`
	} `json:"latency"`
}

// medians groups values by series name and x and returns, per series, the
// median of each group sorted by x.
type medians map[string]map[float64][]float64

func (m medians) add(name string, x, y float64) {
	if m[name] == nil {
		m[name] = make(map[float64][]float64)
	}
	m[name][x] = append(m[name][x], y)
}

func (m medians) series() []series {
	var out []series
	for name, byX := range m {
		s := series{name: name}
		for x, ys := range byX {
			slices.Sort(ys)
			y := ys[len(ys)/2]
			if len(ys)%2 == 0 {
				y = (ys[len(ys)/2-1] + ys[len(ys)/2]) / 2
			}
			s.pts = append(s.pts, point{x, y})
		}
		slices.SortFunc(s.pts, func(a, b point) int { return cmp.Compare(a.x, b.x) })
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b series) int { return cmp.Compare(a.name, b.name) })
	return out
}

func labelled(r result, name string) string {
	if r.Label == "" {
		return name
	}
	return name + " (" + r.Label + ")"
}

func memoryChart(runs []result) chart {
	m := medians{}
	for _, r := range runs {
		if r.Scenario != "idle" {
			continue
		}
		for _, p := range r.Points {
			m.add(labelled(r, "RSS / sockets"), float64(p.Sockets), p.PerSocket/1000)
		}
	}
	return chart{title: "Server memory per idle socket", xlabel: "open sockets", ylabel: "kB of RSS per socket", logX: true, series: m.series()}
}

func latencyChart(runs []result) chart {
	m := medians{}
	for _, r := range runs {
		if r.Scenario != "fanout" || r.Lost != 0 {
			continue
		}
		rate := strconv.FormatFloat(r.Rate, 'f', -1, 64) + "/s"
		m.add(labelled(r, "p50, "+rate), float64(r.Clients), r.Latency.P50)
		m.add(labelled(r, "p99, "+rate), float64(r.Clients), r.Latency.P99)
	}
	return chart{title: "Delivery latency of one user's changes", xlabel: "watchers", ylabel: "ms from change to arrival", logX: true, logY: true, series: m.series()}
}

func throughputChart(runs []result) chart {
	m := medians{}
	for _, r := range runs {
		if r.Scenario != "fanout" {
			continue
		}
		m.add(labelled(r, strconv.Itoa(r.Clients)+" watchers"), r.OfferedPerSec, r.DeliveredPerSec)
	}
	c := chart{title: "Deliveries per second against the rate offered", xlabel: "deliveries/s offered", ylabel: "deliveries/s delivered", series: m.series()}
	if len(c.series) > 0 {
		hi := 0.0
		for _, s := range c.series {
			for _, p := range s.pts {
				hi = max(hi, p.x)
			}
		}
		c.series = append(c.series, series{name: "all delivered", pts: []point{{0, 0}, {hi, hi}}, dashed: true})
	}
	return c
}
