package transport

import (
	"net/http"
	"net/netip"
	"testing"
	"time"
)

func TestKeyedLimiterTakesTokensPerKey(t *testing.T) {
	l := newKeyedLimiter[int64](2, 3, 100)
	now := time.Now()
	for i := range 3 {
		if ok, _ := l.allow(1, now); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	ok, wait := l.allow(1, now)
	if ok || wait <= 0 || wait > 500*time.Millisecond {
		t.Fatalf("over the burst: allowed=%v, wait %v, want refused with at most 1/rate to wait", ok, wait)
	}
	if ok, _ := l.allow(2, now); !ok {
		t.Fatal("another key was held back by the first")
	}
	if ok, _ := l.allow(1, now.Add(500*time.Millisecond)); !ok {
		t.Fatal("a token was not back after 1/rate")
	}
	if l := newKeyedLimiter[int64](0, 5, 10); l != nil {
		t.Fatal("a zero rate made a limiter; it means no limit")
	}
	var none *keyedLimiter[int64]
	if ok, _ := none.allow(1, now); !ok {
		t.Fatal("no limiter refused")
	}
}

func TestKeyedLimiterStaysBounded(t *testing.T) {
	l := newKeyedLimiter[int64](10, 10, 1000) // a bucket refills in 1s
	now := time.Now()
	// A flood of distinct keys (addresses, say) within one second.
	for i := range int64(50_000) {
		l.allow(i, now.Add(time.Duration(i)*time.Microsecond))
	}
	if n := l.size(); n > 1000 {
		t.Fatalf("%d buckets held, want at most 1000", n)
	}
	// Once they have all refilled, the next new key sweeps them away.
	l.allow(-1, now.Add(3*time.Second))
	if n := l.size(); n != 1 {
		t.Fatalf("%d buckets held after every old one refilled, want 1", n)
	}
}

func TestKeyedLimiterKeepsBusyBucketsWhenSweeping(t *testing.T) {
	l := newKeyedLimiter[int64](1, 2, 1000) // a bucket refills in 2s
	now := time.Now()
	at := func(d time.Duration) time.Time { return now.Add(d) }
	l.allow(1, at(0))
	l.allow(1, at(0))                     // key 1 spent its burst
	l.allow(1, at(time.Second))           // and the token that came back
	l.allow(2, at(2500*time.Millisecond)) // a new key: a sweep is due
	// Key 1 has had 1.5s to refill: one token, not the two of a new bucket.
	if ok, _ := l.allow(1, at(2500*time.Millisecond)); !ok {
		t.Fatal("the refilled token was refused")
	}
	if ok, _ := l.allow(1, at(2500*time.Millisecond)); ok {
		t.Fatal("a sweep dropped a bucket that had not refilled, and its key got a new burst")
	}
}

func TestClientAddr(t *testing.T) {
	for _, tc := range []struct {
		remote, header, value, want string
	}{
		{"192.0.2.1:5555", "", "", "192.0.2.1"},
		{"[2001:db8:1:2:3:4:5:6]:5555", "", "", "2001:db8:1:2::"},
		{"[::ffff:192.0.2.9]:5555", "", "", "192.0.2.9"},
		{"127.0.0.1:1", "X-Forwarded-For", "198.51.100.1, 203.0.113.8", "203.0.113.8"},
		{"127.0.0.1:1", "X-Real-IP", "203.0.113.9", "203.0.113.9"},
		{"127.0.0.1:1", "X-Forwarded-For", "garbage", "127.0.0.1"},
		{"127.0.0.1:1", "X-Forwarded-For", "", "127.0.0.1"},
	} {
		r := &http.Request{RemoteAddr: tc.remote, Header: http.Header{}}
		if tc.value != "" {
			r.Header.Set(tc.header, tc.value)
		}
		got := clientAddr(r, tc.header)
		if got != netip.MustParseAddr(tc.want) {
			t.Errorf("clientAddr(%s, %s: %q) = %s, want %s", tc.remote, tc.header, tc.value, got, tc.want)
		}
	}
	// Without a configured header, a forged one is ignored.
	r := &http.Request{RemoteAddr: "192.0.2.1:5555", Header: http.Header{"X-Forwarded-For": {"203.0.113.1"}}}
	if got := clientAddr(r, ""); got != netip.MustParseAddr("192.0.2.1") {
		t.Fatalf("an unconfigured X-Forwarded-For was trusted: %s", got)
	}
}

func TestRetryAfterIsWholeSecondsAtLeastOne(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "1", time.Millisecond: "1", time.Second: "1", 1001 * time.Millisecond: "2", 90 * time.Second: "90"} {
		if got := retryAfter(d); got != want {
			t.Errorf("retryAfter(%v) = %s, want %s", d, got, want)
		}
	}
}
