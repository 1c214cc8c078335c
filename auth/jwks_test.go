package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// jwkOf encodes the public half of k as a JWK with the given kid.
func jwkOf(t *testing.T, k keyPair, kid string) map[string]string {
	t.Helper()
	enc := base64.RawURLEncoding.EncodeToString
	switch pub := k.private.Public().(type) {
	case *rsa.PublicKey:
		return map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": enc(pub.N.Bytes()), "e": enc(big.NewInt(int64(pub.E)).Bytes())}
	case *ecdsa.PublicKey:
		b, err := pub.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		return map[string]string{"kty": "EC", "kid": kid, "crv": "P-256", "x": enc(b[1:33]), "y": enc(b[33:])}
	case ed25519.PublicKey:
		return map[string]string{"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": enc(pub)}
	}
	t.Fatalf("no JWK for %T", k.private.Public())
	return nil
}

// keyServer serves a JWKS that a test can change, and counts fetches.
type keyServer struct {
	*httptest.Server
	fetches atomic.Int64
	mu      sync.Mutex
	body    []byte
	status  int
}

func newKeyServer(t *testing.T, keys ...map[string]string) *keyServer {
	ks := &keyServer{status: http.StatusOK}
	ks.set(t, keys...)
	ks.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		ks.fetches.Add(1)
		ks.mu.Lock()
		body, status := ks.body, ks.status
		ks.mu.Unlock()
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(ks.Close)
	return ks
}

func (ks *keyServer) set(t *testing.T, keys ...map[string]string) {
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	ks.setRaw(http.StatusOK, b)
}

func (ks *keyServer) setRaw(status int, body []byte) {
	ks.mu.Lock()
	ks.body, ks.status = body, status
	ks.mu.Unlock()
}

func TestJWKSVerifiesEachKeyType(t *testing.T) {
	rsaK, ecK, edK := rsaKey(t), ecKey(t), edKey(t)
	ks := newKeyServer(t, jwkOf(t, rsaK, "r1"), jwkOf(t, ecK, "e1"), jwkOf(t, edK, "d1"),
		map[string]string{"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"}) // not for signatures
	v := newVerifier(t, Config{JWKSURL: ks.URL})
	mustAccept(t, v, sign(t, jwt.SigningMethodRS256, rsaK.private, "r1", valid()))
	mustAccept(t, v, sign(t, jwt.SigningMethodES256, ecK.private, "e1", valid()))
	mustAccept(t, v, sign(t, jwt.SigningMethodEdDSA, edK.private, "d1", valid()))
	mustRefuse(t, v, sign(t, jwt.SigningMethodES256, ecK.private, "r1", valid()), "names the RSA key's kid with an EC signature")
	mustRefuse(t, v, sign(t, jwt.SigningMethodHS256, []byte("x"), "r1", valid()), "is HS256 where only a JWKS is configured")
	mustRefuse(t, v, sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "r1", valid()), `uses alg "none"`)
	if n := ks.fetches.Load(); n != 1 {
		t.Fatalf("the key set was fetched %d times, want once (cached)", n)
	}
}

func TestJWKSRefetchesForAnUnknownKid(t *testing.T) {
	old, rotated := ecKey(t), ecKey(t)
	ks := newKeyServer(t, jwkOf(t, old, "2024"))
	v := newVerifier(t, Config{JWKSURL: ks.URL, JWKSMinRefresh: time.Nanosecond})
	mustAccept(t, v, sign(t, jwt.SigningMethodES256, old.private, "2024", valid()))

	// The auth server rotates: a token with the new kid makes the verifier
	// fetch again and find it.
	ks.set(t, jwkOf(t, old, "2024"), jwkOf(t, rotated, "2025"))
	mustAccept(t, v, sign(t, jwt.SigningMethodES256, rotated.private, "2025", valid()))
	if n := ks.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
}

func TestJWKSFetchRateIsBounded(t *testing.T) {
	k := ecKey(t)
	ks := newKeyServer(t, jwkOf(t, k, "good"))
	v := newVerifier(t, Config{JWKSURL: ks.URL, JWKSMinRefresh: time.Hour})

	// Good tokens and a flood of tokens naming kids nobody issued, all at
	// once from the first use on, must not turn into a flood of fetches.
	forger := ecKey(t)
	good := sign(t, jwt.SigningMethodES256, k.private, "good", valid())
	var wg sync.WaitGroup
	for i := range 50 {
		forged := sign(t, jwt.SigningMethodES256, forger.private, fmt.Sprintf("forged-%d", i), valid())
		wg.Go(func() {
			if _, err := v.Verify(forged); err == nil {
				t.Error("a token with a forged kid was accepted")
			}
		})
		wg.Go(func() {
			if _, err := v.Verify(good); err != nil {
				t.Errorf("a good token was refused: %v", err)
			}
		})
	}
	wg.Wait()
	if n := ks.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches for 100 tokens within the minimum refresh interval, want 1", n)
	}
}

func TestJWKSKeepsKnownKeysWhenTheServerFails(t *testing.T) {
	k := ecKey(t)
	ks := newKeyServer(t, jwkOf(t, k, "k"))
	v := newVerifier(t, Config{JWKSURL: ks.URL, JWKSMaxAge: time.Nanosecond, JWKSMinRefresh: time.Nanosecond})
	mustAccept(t, v, sign(t, jwt.SigningMethodES256, k.private, "k", valid()))

	for _, bad := range []struct {
		status int
		body   string
	}{
		{http.StatusInternalServerError, "boom"},
		{http.StatusOK, "not json"},
		{http.StatusOK, `{"keys":[]}`},
		{http.StatusOK, `{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}`},
	} {
		ks.setRaw(bad.status, []byte(bad.body))
		before := ks.fetches.Load()
		mustAccept(t, v, sign(t, jwt.SigningMethodES256, k.private, "k", valid()))
		if ks.fetches.Load() == before {
			t.Fatalf("a stale key set was not fetched again (%d %q)", bad.status, bad.body)
		}
	}
}

func TestJWKSUnreachableAtFirstUse(t *testing.T) {
	ks := newKeyServer(t)
	ks.setRaw(http.StatusServiceUnavailable, nil)
	v := newVerifier(t, Config{JWKSURL: ks.URL})
	mustRefuse(t, v, sign(t, jwt.SigningMethodES256, ecKey(t).private, "k", valid()), "cannot be checked: no key set")
}

func TestParseJWKSSkipsUnusableKeys(t *testing.T) {
	ec := jwkOf(t, ecKey(t), "ok")
	mismatched := jwkOf(t, ecKey(t), "declared-rs256")
	mismatched["alg"] = "RS256"
	rsaMismatch := jwkOf(t, rsaKey(t), "rs384")
	rsaMismatch["alg"] = "RS384"
	b, _ := json.Marshal(map[string]any{"keys": []any{
		ec, mismatched, rsaMismatch,
		map[string]string{"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"},
		map[string]string{"kty": "oct", "k": "c2VjcmV0"},
		map[string]string{"kty": "RSA", "n": "AQAB", "e": "AQAB"}, // far too short
		map[string]string{"kty": "RSA", "n": ec["x"], "e": "AAAAAAAB"},
		map[string]string{"kty": "OKP", "crv": "Ed25519", "x": "AAAA"},
		map[string]string{"kty": "EC", "crv": "P-256", "x": "!!", "y": "AA"},
	}})
	keys, err := ParseJWKS(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0].ID != "ok" || keys[0].Alg != "ES256" {
		t.Fatalf("keys = %+v, want only the ES256 key \"ok\"", keys)
	}
	many, _ := json.Marshal(map[string]any{"keys": make([]map[string]string, maxJWKSKeys+1)})
	if _, err := ParseJWKS(many); err == nil {
		t.Fatal("a key set over the key limit was read")
	}
}
