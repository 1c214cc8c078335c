package auth

import (
	"errors"
	"testing"
	"time"
)

// fuzzSecret signs the valid tokens of the seed corpus (testdata/fuzz),
// which expire in 2100, so that mutations start from tokens that pass.
var fuzzSecret = []byte("fuzz-secret-0123456789abcdef0123")

// FuzzVerify feeds arbitrary strings to the verifier: it must never
// panic, every refusal must wrap ErrInvalidToken, and whatever it accepts
// must name a positive user and an expiry still ahead.
func FuzzVerify(f *testing.F) {
	v, err := NewVerifier(Config{Secrets: [][]byte{fuzzSecret}, Leeway: time.Minute})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, token string) {
		c, err := v.Verify(token)
		if err != nil {
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("refusal %v does not wrap ErrInvalidToken", err)
			}
			return
		}
		if c.UserID <= 0 {
			t.Fatalf("accepted a token for user %d", c.UserID)
		}
		if !c.ValidUntil.After(time.Now()) {
			t.Fatalf("accepted a token valid until %v", c.ValidUntil)
		}
	})
}

// FuzzParseJWKS feeds arbitrary documents to the key set parser: it must
// never panic, and every key it returns must be usable for exactly the
// algorithm it is pinned to.
func FuzzParseJWKS(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := ParseJWKS(data)
		if err != nil {
			if len(keys) != 0 {
				t.Fatal("keys returned with an error")
			}
			return
		}
		if len(keys) == 0 || len(keys) > maxJWKSKeys {
			t.Fatalf("%d keys", len(keys))
		}
		for _, k := range keys {
			alg, err := algFor(k.Key)
			if err != nil || alg != k.Alg {
				t.Fatalf("key pinned to %s fits %q (%v)", k.Alg, alg, err)
			}
		}
	})
}
