package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Bounds on what a key server may send, so that a broken or hostile one
// cannot exhaust memory.
const (
	maxJWKSBytes = 1 << 20
	maxJWKSKeys  = 100
)

// jwks is a JSON Web Key Set fetched from a URL and cached. Fetches are
// lazy (on the first token, when the set is older than maxAge, or when a
// token names an unknown kid) and never closer together than minRefresh,
// so no goroutine is needed and a flood of forged kids costs one fetch per
// minRefresh at most. A failed fetch keeps the keys already known.
type jwks struct {
	url        string
	client     *http.Client
	maxAge     time.Duration
	minRefresh time.Duration

	fetchMu sync.Mutex // held for the whole of one fetch

	mu      sync.RWMutex // guards the fields below
	keys    []PublicKey
	fetched time.Time // last successful fetch
	tried   time.Time // last attempt, successful or not
}

func newJWKS(cfg Config) (*jwks, error) {
	u, err := url.Parse(cfg.JWKSURL)
	if err != nil {
		return nil, fmt.Errorf("auth: JWKS URL: %w", err)
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname())) {
		return nil, fmt.Errorf("auth: JWKS URL %q must be https (plain http only on a loopback host): whoever can change the keys can forge every token", cfg.JWKSURL)
	}
	j := &jwks{url: cfg.JWKSURL, client: cfg.JWKSClient, maxAge: cfg.JWKSMaxAge, minRefresh: cfg.JWKSMinRefresh}
	if j.client == nil {
		j.client = &http.Client{Timeout: 10 * time.Second}
	}
	if j.maxAge == 0 {
		j.maxAge = DefaultConfig().JWKSMaxAge
	}
	if j.minRefresh == 0 {
		j.minRefresh = DefaultConfig().JWKSMinRefresh
	}
	return j, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// matching appends to set the cached keys for alg and kid, fetching the
// set first when it is stale or lacks the kid and the rate bound allows.
func (j *jwks) matching(alg, kid string, set jwt.VerificationKeySet) jwt.VerificationKeySet {
	j.mu.RLock()
	keys, fetched, tried := j.keys, j.fetched, j.tried
	j.mu.RUnlock()
	found := matching(keys, alg, kid, set)
	now := time.Now()
	stale := fetched.IsZero() || now.Sub(fetched) >= j.maxAge
	unknown := len(found.Keys) == len(set.Keys)
	if (stale || unknown) && (tried.IsZero() || now.Sub(tried) >= j.minRefresh) {
		if j.refresh(tried) {
			j.mu.RLock()
			keys = j.keys
			j.mu.RUnlock()
			found = matching(keys, alg, kid, set)
		}
	}
	return found
}

// refresh fetches the set unless another caller has tried since seen. It
// reports whether the cached keys may have changed.
func (j *jwks) refresh(seen time.Time) bool {
	j.fetchMu.Lock()
	defer j.fetchMu.Unlock()
	j.mu.RLock()
	already := !j.tried.Equal(seen)
	j.mu.RUnlock()
	if already {
		return true
	}
	keys, err := j.fetch()
	j.mu.Lock()
	defer j.mu.Unlock()
	j.tried = time.Now()
	if err != nil {
		return false
	}
	j.keys, j.fetched = keys, j.tried
	return true
}

func (j *jwks) fetch() ([]PublicKey, error) {
	ctx, cancel := context.WithTimeout(context.Background(), j.client.Timeout+time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := j.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("JWKS: %s", resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxJWKSBytes {
		return nil, fmt.Errorf("JWKS is larger than %d bytes", maxJWKSBytes)
	}
	return ParseJWKS(data)
}

// jwk is one JSON Web Key (RFC 7517), with the members presenced reads.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// ParseJWKS reads the signature keys of a JSON Web Key Set. Keys for
// encryption, of other types or curves, or declared for an algorithm
// other than the one their type allows are skipped; a set with no usable
// key is an error.
func ParseJWKS(data []byte) ([]PublicKey, error) {
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("JWKS is not valid JSON: %w", err)
	}
	if len(set.Keys) > maxJWKSKeys {
		return nil, fmt.Errorf("JWKS holds %d keys; at most %d are read", len(set.Keys), maxJWKSKeys)
	}
	var keys []PublicKey
	for _, k := range set.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		key, err := k.publicKey()
		if err != nil {
			continue
		}
		alg, err := algFor(key)
		if err != nil || (k.Alg != "" && k.Alg != alg) {
			continue
		}
		keys = append(keys, PublicKey{ID: k.Kid, Alg: alg, Key: key})
	}
	if len(keys) == 0 {
		return nil, errors.New("JWKS holds no usable RS256, ES256 or EdDSA signature key")
	}
	return keys, nil
}

func (k jwk) publicKey() (crypto.PublicKey, error) {
	switch {
	case k.Kty == "RSA":
		n, err := b64(k.N)
		if err != nil {
			return nil, err
		}
		e, err := b64(k.E)
		if err != nil {
			return nil, err
		}
		if len(e) == 0 || len(e) > 4 {
			return nil, errors.New("RSA exponent out of range")
		}
		exp := new(big.Int).SetBytes(e).Int64()
		if exp < 3 || exp%2 == 0 {
			return nil, errors.New("RSA exponent out of range")
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(exp)}, nil
	case k.Kty == "EC" && k.Crv == "P-256":
		x, err := b64(k.X)
		if err != nil {
			return nil, err
		}
		y, err := b64(k.Y)
		if err != nil {
			return nil, err
		}
		if len(x) != 32 || len(y) != 32 {
			return nil, errors.New("P-256 coordinates must be 32 bytes")
		}
		return ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
	case k.Kty == "OKP" && k.Crv == "Ed25519":
		x, err := b64(k.X)
		if err != nil {
			return nil, err
		}
		if len(x) != ed25519.PublicKeySize {
			return nil, errors.New("Ed25519 key must be 32 bytes")
		}
		return ed25519.PublicKey(x), nil
	}
	return nil, fmt.Errorf("unsupported key type %q", k.Kty)
}

func b64(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }
