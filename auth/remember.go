package auth

import (
	"sync"
	"time"
)

// A client that polls sends the same token with every request, and
// checking it again each time (its signature, and its claims through
// encoding/json) was a fifth of the CPU of a batch presence read. So a
// Verifier remembers the tokens it accepted, for a while: a remembered
// token is taken as it was read, still only until its own exp plus the
// leeway.
const (
	// rememberFor bounds how long a token is taken on trust before it is
	// checked again. A key withdrawn from a JWKS is noticed at the set's
	// next fetch (JWKSMaxAge, an hour by default, or sooner for a new
	// kid); tokens it signed then stop being accepted within this much
	// more.
	rememberFor = time.Minute
	// rememberMax bounds the tokens remembered, and so the memory (a
	// token and its claims, about a kilobyte each).
	rememberMax = 10_000
	// rememberMaxBytes is the longest token remembered; longer ones,
	// rare, are checked every time.
	rememberMaxBytes = 4096
	// rememberEvict is how many remembered tokens make room for a new
	// one when rememberMax is reached: arbitrary ones, since a map's
	// order is, without a scan of the whole map.
	rememberEvict = 100
)

// rememberedTokens maps tokens a Verifier accepted to their claims.
type rememberedTokens struct {
	mu sync.Mutex
	m  map[string]rememberedToken
}

type rememberedToken struct {
	claims Claims
	until  time.Time // the earlier of the token's end and rememberFor
}

// get returns the claims of token if it was accepted and is still
// within its time at now.
func (r *rememberedTokens) get(token string, now time.Time) (Claims, bool) {
	r.mu.Lock()
	e, ok := r.m[token]
	if ok && !now.Before(e.until) {
		delete(r.m, token)
		ok = false
	}
	r.mu.Unlock()
	return e.claims, ok
}

// put remembers that token was accepted at now with claims.
func (r *rememberedTokens) put(token string, c Claims, now time.Time) {
	if len(token) > rememberMaxBytes {
		return
	}
	until := now.Add(rememberFor)
	if c.ValidUntil.Before(until) {
		until = c.ValidUntil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = make(map[string]rememberedToken)
	}
	if _, ok := r.m[token]; !ok && len(r.m) >= rememberMax {
		n := 0
		for k := range r.m {
			delete(r.m, k)
			if n++; n == rememberEvict {
				break
			}
		}
	}
	r.m[token] = rememberedToken{claims: c, until: until}
}

// len is the number of tokens remembered.
func (r *rememberedTokens) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.m)
}
