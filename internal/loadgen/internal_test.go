package loadgen

import (
	"bytes"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/presenced/presenced/hub"
	"github.com/presenced/presenced/transport"
)

// The event scanner must read what the server's encoder writes.
func TestScanEventsReadsTheServersEncoding(t *testing.T) {
	wait := 42
	one := transport.EncodeEvent(hub.Presence{UserID: 7, Username: "a,\"b\"", Online: true, Busy: true, WaitTime: &wait, LastSeen: time.Now()})
	two := transport.EncodeEvent(hub.Presence{UserID: 8, Username: "c"})
	array := append(append(append(append([]byte("["), one...), ','), two...), ']')
	tests := []struct {
		frame  string
		events bool
		want   [][2]int64
	}{
		{string(one), true, [][2]int64{{7, 42}}},
		{string(array), true, [][2]int64{{7, 42}, {8, -1}}},
		{`{"type":"subscribed","presences":[{"user_id":3,"wait_time":1}]}`, false, nil},
		{`{"type":"status","status":{"user_id":3}}`, false, nil},
	}
	for _, tt := range tests {
		var got [][2]int64
		events := scanEvents([]byte(tt.frame), func(u, w int64) { got = append(got, [2]int64{u, w}) })
		if events != tt.events || len(got) != len(tt.want) {
			t.Fatalf("%s: events %v %v; want %v %v", tt.frame, events, got, tt.events, tt.want)
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Fatalf("%s: event %d is %v; want %v", tt.frame, i, got[i], tt.want[i])
			}
		}
	}
	if typ := replyType([]byte(`{"type":"subscribed","id":1}`)); typ != "subscribed" {
		t.Fatalf("replyType = %q", typ)
	}
}

func TestHistogramPercentiles(t *testing.T) {
	var h Histogram
	for us := int64(1); us <= 100_000; us++ {
		h.Record(time.Duration(us) * time.Microsecond)
	}
	l := h.Summary(true)
	check := func(name string, got, want float64) {
		if math.Abs(got-want)/want > 0.02 {
			t.Errorf("%s = %v ms; want %v within 2%%", name, got, want)
		}
	}
	check("p50", l.P50MS, 50)
	check("p90", l.P90MS, 90)
	check("p99", l.P99MS, 99)
	check("max", l.MaxMS, 100)
	check("mean", l.MeanMS, 50)
	if l.Count != 100_000 {
		t.Fatalf("count %d", l.Count)
	}
	var merged Histogram
	merged.Merge(l)
	merged.Merge(l)
	if m := merged.Summary(false); m.Count != 200_000 || math.Abs(m.P99MS-l.P99MS) > 1e-9 || m.MaxMS != l.MaxMS {
		t.Fatalf("merged %+v; want the same percentiles over twice the count", m)
	}
}

func TestBucketsAreContiguous(t *testing.T) {
	prev := -1
	for us := int64(0); us < 1<<20; us++ {
		b := bucketOf(us)
		if b != prev && b != prev+1 {
			t.Fatalf("value %d jumps from bucket %d to %d", us, prev, b)
		}
		if us > upperOf(b) || (b > 0 && us <= upperOf(b-1)) {
			t.Fatalf("value %d is outside bucket %d (up to %d)", us, b, upperOf(b))
		}
		prev = b
	}
}

// A watcher that skips a state of a user, because the server merged two
// updates that waited for the store, counts it as superseded, not lost; a
// state seen twice is a duplicate.
func TestReceiveCountsSupersededChanges(t *testing.T) {
	m := &mesh{cfg: &Config{UserBase: 100, proto: presencedProto{}}, changes: 5, period: time.Second, phase: func(int) time.Duration { return 0 }}
	start := time.Now()
	m.start.Store(&start)
	w := &watcher{watched: []int{1, 2}, last: make([]int32, 2)}
	event := func(user, seq int) []byte {
		wait := seq
		return transport.EncodeEvent(hub.Presence{UserID: int64(100 + user), Busy: true, WaitTime: &wait})
	}
	for _, f := range [][]byte{event(1, 1), event(1, 4), event(2, 2), event(1, 4), event(1, 5)} {
		m.receive(w, nil, f)
	}
	if d, s, dup := m.deliv.Load(), m.superseded.Load(), m.dups.Load(); d != 4 || s != 3 || dup != 1 {
		t.Fatalf("delivered %d, superseded %d, duplicates %d; want 4, 3 (user 1's 2 and 3, user 2's 1), 1", d, s, dup)
	}
}

// Frames as Centrifugo v6.9.1 writes them (taken from a running server),
// several replies or pushes a frame, one a line.
func TestCentrifugoFramesRead(t *testing.T) {
	p := centrifugoProto{}
	push := `{"push":{"channel":"u1","pub":{"data":` + string(presenceEvent(1, 3)) +
		`,"info":{"user":"1","client":"89cc1f15-5415-407a-893a-55abf0322d3d"}}}}`
	tests := []struct {
		frame string
		want  frameInfo
		seqs  []int64
	}{
		{`{"id":3,"subscribe":{}}` + "\n" + `{"id":4,"subscribe":{}}`, frameInfo{subscribed: 2}, nil},
		{`{"id":2,"error":{"code":108,"message":"not available"}}`, frameInfo{pong: true}, nil},
		{`{"id":5,"error":{"code":103,"message":"permission denied"}}`, frameInfo{errors: 1}, nil},
		{`{}`, frameInfo{ping: true}, nil},
		{push + "\n" + strings.Replace(push, `"wait_time":3`, `"wait_time":4`, 1), frameInfo{events: true}, []int64{3, 4}},
		{`{"id":6,"publish":{}}` + "\n" + `{"id":7,"publish":{}}`, frameInfo{}, nil},
		{`{"push":{"disconnect":{"code":3500,"reason":"invalid token"}}}`, frameInfo{}, nil},
	}
	for _, tt := range tests {
		var seqs []int64
		got := p.read([]byte(tt.frame), func(user, seq int64) {
			if user != 1 {
				t.Errorf("%s: event of user %d; want 1", tt.frame, user)
			}
			seqs = append(seqs, seq)
		})
		if got != tt.want || !slices.Equal(seqs, tt.seqs) {
			t.Errorf("%s: read %+v, events %v; want %+v, %v", tt.frame, got, seqs, tt.want, tt.seqs)
		}
	}
	// The publication's data is presenced's own event, which both servers
	// then carry to every watcher.
	msg := p.change(nil, 42, 7)
	data, ok := bytes.CutPrefix(msg, []byte(`{"id":10,"publish":{"channel":"u42","data":`))
	var seen [][2]int64
	if !ok || !scanEvents(data, func(u, s int64) { seen = append(seen, [2]int64{u, s}) }) || len(seen) != 1 || seen[0] != [2]int64{42, 7} {
		t.Fatalf("change %s carries %v; want user 42's change 7 as a presence event", msg, seen)
	}
}

func TestErrorDetail(t *testing.T) {
	for frame, want := range map[string]string{
		`{"type":"error","id":3,"detail":"storage is unavailable; the change was not made, try again later"}`: "storage is unavailable",
		`{"id":5,"error":{"code":103,"message":"permission denied"}}`:                                         "permission denied",
		`{"type":"error"}`: "?",
	} {
		if got := errorDetail([]byte(frame)); got != want {
			t.Errorf("errorDetail(%s) = %q; want %q", frame, got, want)
		}
	}
}
