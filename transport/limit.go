package transport

import (
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// keyedLimiter is a token bucket per key (a user id, a client address),
// bounded in memory: a bucket left alone long enough to refill completely
// is the same as a new one, so it is dropped; and when maxKeys buckets are
// held even after that, arbitrary ones are dropped, which can only be
// lenient to their keys (only a client with enough addresses to flood the
// map could gain, and per-address limits cannot hold such a client
// anyway). A nil *keyedLimiter allows everything.
type keyedLimiter[K comparable] struct {
	limit   rate.Limit
	burst   int
	maxKeys int
	idle    time.Duration // time for an empty bucket to refill

	mu        sync.Mutex
	buckets   map[K]*bucket
	lastSweep time.Time
}

type bucket struct {
	lim  *rate.Limiter
	last time.Time
}

// newKeyedLimiter returns a limiter of perSecond events with bursts of
// burst per key, or nil (no limit) when perSecond is not positive.
func newKeyedLimiter[K comparable](perSecond float64, burst, maxKeys int) *keyedLimiter[K] {
	if perSecond <= 0 {
		return nil
	}
	burst = max(burst, 1)
	return &keyedLimiter[K]{
		limit:   rate.Limit(perSecond),
		burst:   burst,
		maxKeys: max(maxKeys, 1),
		idle:    time.Duration(float64(burst) / perSecond * float64(time.Second)),
		buckets: make(map[K]*bucket),
	}
}

// allow takes one token from key's bucket. When there is none it returns
// false and how long until there is.
func (k *keyedLimiter[K]) allow(key K, now time.Time) (bool, time.Duration) {
	if k == nil {
		return true, 0
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	b := k.buckets[key]
	if b == nil {
		if len(k.buckets) >= k.maxKeys || now.Sub(k.lastSweep) >= k.idle {
			k.sweep(now)
		}
		b = &bucket{lim: rate.NewLimiter(k.limit, k.burst)}
		k.buckets[key] = b
	}
	b.last = now
	if b.lim.AllowN(now, 1) {
		return true, 0
	}
	return false, retryDelay(b.lim, now)
}

// sweep drops the full buckets; when that is not enough, it drops
// arbitrary ones down to nine tenths of the bound, so that a flood of new
// keys pays for one pass per tenth of the bound, not one per key.
func (k *keyedLimiter[K]) sweep(now time.Time) {
	k.lastSweep = now
	for key, b := range k.buckets {
		if now.Sub(b.last) >= k.idle {
			delete(k.buckets, key)
		}
	}
	if len(k.buckets) < k.maxKeys {
		return
	}
	for key := range k.buckets {
		if len(k.buckets) <= k.maxKeys*9/10 {
			break
		}
		delete(k.buckets, key)
	}
}

// size is the number of buckets held.
func (k *keyedLimiter[K]) size() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.buckets)
}

// retryDelay is how long until lim has a whole token.
func retryDelay(lim *rate.Limiter, now time.Time) time.Duration {
	missing := 1 - lim.TokensAt(now)
	if missing <= 0 {
		return 0
	}
	return time.Duration(missing / float64(lim.Limit()) * float64(time.Second))
}

// retryAfter formats d for a Retry-After header: whole seconds, at least 1.
func retryAfter(d time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}

// tooMany answers a request refused by a rate limit.
func tooMany(w http.ResponseWriter, status int, wait time.Duration, detail string) {
	w.Header().Set("Retry-After", retryAfter(wait))
	writeError(w, status, detail)
}

// clientAddr is the key of a client's per-address limits: its IPv4
// address, or the /64 of its IPv6 address, since one IPv6 host commonly
// holds a whole /64. With header set (a trusted proxy's X-Forwarded-For
// or X-Real-IP) the address is read from its last entry, the one the
// proxy appended; otherwise from the TCP peer.
func clientAddr(r *http.Request, header string) netip.Addr {
	var s string
	if header != "" {
		if v := r.Header.Values(header); len(v) > 0 {
			last := v[len(v)-1]
			s = strings.TrimSpace(last[strings.LastIndexByte(last, ',')+1:])
		}
	}
	addr, err := netip.ParseAddr(s)
	if err != nil {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		addr, _ = netip.ParseAddr(host)
	}
	addr = addr.Unmap()
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		addr = p.Addr()
	}
	return addr
}
