// Package metricstest reads a Prometheus /metrics page in tests, so that
// a test checks what a scraper would see rather than the collectors
// behind it. It is for tests only.
package metricstest

import (
	"io"
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Families are the metric families of one scrape, by name.
type Families map[string]*dto.MetricFamily

// Scrape fetches url and parses it as the Prometheus text format.
func Scrape(t testing.TB, url string) Families {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("scrape %s: %d %s", url, resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("scrape %s: content type %q is not the text format", url, ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("scrape %s: not the Prometheus text format: %v", url, err)
	}
	return fams
}

// Value returns the value of the counter or gauge name with the given
// label pairs (name, value, name, value...), or fails the test when the
// series does not exist.
func (f Families) Value(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	m := f.series(t, name, labels)
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	t.Fatalf("%s is neither a counter nor a gauge", name)
	return 0
}

// Count returns the number of observations of the histogram name with
// the given label pairs, or fails the test when it does not exist.
func (f Families) Count(t testing.TB, name string, labels ...string) uint64 {
	t.Helper()
	return f.histogram(t, name, labels).GetSampleCount()
}

// Sum returns the sum of the observations of the histogram name.
func (f Families) Sum(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	return f.histogram(t, name, labels).GetSampleSum()
}

func (f Families) histogram(t testing.TB, name string, labels []string) *dto.Histogram {
	t.Helper()
	m := f.series(t, name, labels)
	if m.Histogram == nil {
		t.Fatalf("%s is not a histogram", name)
	}
	return m.Histogram
}

func (f Families) series(t testing.TB, name string, labels []string) *dto.Metric {
	t.Helper()
	fam, ok := f[name]
	if !ok {
		t.Fatalf("no metric %s in the scrape", name)
	}
	for _, m := range fam.Metric {
		if matches(m, labels) {
			return m
		}
	}
	t.Fatalf("no series %s%v in the scrape", name, labels)
	return nil
}

func matches(m *dto.Metric, labels []string) bool {
	if len(m.Label) != len(labels)/2 {
		return false
	}
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, l := range m.Label {
			if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}
