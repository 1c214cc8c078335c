package loadgen

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// subBits sets the precision of a Histogram: each power of two is split
// into 2^subBits buckets, so a recorded value is known within 1/64 (1.6%).
const subBits = 6

// histBuckets covers values up to 2^40 µs (twelve days) at that precision.
const histBuckets = (40 - subBits + 1) << subBits

// Histogram counts latencies in microseconds in log-linear buckets, in the
// manner of HdrHistogram. Record is safe for concurrent use and never
// allocates, so readers can call it for every delivery.
type Histogram struct {
	counts [histBuckets]atomic.Uint64
	max    atomic.Int64 // µs
	sum    atomic.Int64 // µs
}

func bucketOf(us int64) int {
	if us < 0 {
		us = 0
	}
	v := uint64(us)
	if v < 1<<subBits {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1
	i := (shift+1)<<subBits + int(v>>shift) - 1<<subBits
	return min(i, histBuckets-1)
}

// upperOf is the largest value that falls into bucket i.
func upperOf(i int) int64 {
	if i < 1<<subBits {
		return int64(i)
	}
	shift := i>>subBits - 1
	base := int64(i&(1<<subBits-1) + 1<<subBits)
	return (base+1)<<shift - 1
}

// Record adds one latency.
func (h *Histogram) Record(d time.Duration) {
	us := d.Microseconds()
	h.counts[bucketOf(us)].Add(1)
	h.sum.Add(us)
	if us > h.max.Load() { // a read is cheap to share; a write is not
		storeMax(&h.max, us)
	}
}

// Merge adds the counts of a histogram that another process recorded.
func (h *Histogram) Merge(l Latency) {
	for _, b := range l.Buckets {
		if b[0] >= 0 && b[0] < histBuckets {
			h.counts[b[0]].Add(uint64(b[1]))
		}
	}
	h.sum.Add(int64(l.MeanMS * 1000 * float64(l.Count)))
	storeMax(&h.max, int64(l.MaxMS*1000))
}

// Latency summarises a Histogram in milliseconds. Percentiles are the
// upper edge of their bucket, so they err by at most 1.6% upwards.
type Latency struct {
	Count  uint64  `json:"count"`
	MeanMS float64 `json:"mean_ms"`
	P50MS  float64 `json:"p50_ms"`
	P90MS  float64 `json:"p90_ms"`
	P99MS  float64 `json:"p99_ms"`
	P999MS float64 `json:"p999_ms"`
	MaxMS  float64 `json:"max_ms"`
	// Buckets holds the raw [bucket, count] pairs when asked for, so that
	// the results of several processes can be merged exactly.
	Buckets [][2]int64 `json:"buckets,omitempty"`
}

// Summary computes the percentiles; withBuckets also returns the counts.
func (h *Histogram) Summary(withBuckets bool) Latency {
	var counts [histBuckets]uint64
	var l Latency
	for i := range counts {
		counts[i] = h.counts[i].Load()
		l.Count += counts[i]
		if withBuckets && counts[i] > 0 {
			l.Buckets = append(l.Buckets, [2]int64{int64(i), int64(counts[i])})
		}
	}
	if l.Count == 0 {
		return l
	}
	ms := func(us int64) float64 { return math.Round(float64(us)) / 1000 }
	at := func(q float64) float64 {
		rank := uint64(math.Ceil(q * float64(l.Count)))
		var seen uint64
		for i, c := range counts {
			if seen += c; seen >= rank && c > 0 {
				return ms(min(upperOf(i), h.max.Load()))
			}
		}
		return ms(h.max.Load())
	}
	l.MeanMS = math.Round(float64(h.sum.Load())/float64(l.Count)) / 1000
	l.P50MS, l.P90MS, l.P99MS, l.P999MS = at(0.50), at(0.90), at(0.99), at(0.999)
	l.MaxMS = ms(h.max.Load())
	return l
}
