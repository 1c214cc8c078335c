package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var (
	secret      = []byte("current-secret-0123456789abcdef-0")
	prevSecret  = []byte("previous-secret-0123456789abcde-0")
	otherSecret = []byte("someone-elses-secret-0123456789-0")
)

// sign makes a token with the given method, key and claims; kid, when not
// empty, goes into the header.
func sign(t *testing.T, m jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", m.Alg(), err)
	}
	return s
}

// valid returns claims that pass every check, for user 42.
func valid() jwt.MapClaims {
	return jwt.MapClaims{"sub": "42", "username": "alice", "exp": time.Now().Add(time.Hour).Unix()}
}

func with(c jwt.MapClaims, kv ...any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

func newVerifier(t *testing.T, cfg Config) *Verifier {
	t.Helper()
	v, err := NewVerifier(cfg)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

func mustAccept(t *testing.T, v *Verifier, token string) Claims {
	t.Helper()
	c, err := v.Verify(token)
	if err != nil {
		t.Fatalf("Verify refused a good token: %v", err)
	}
	return c
}

func mustRefuse(t *testing.T, v *Verifier, token, why string) {
	t.Helper()
	c, err := v.Verify(token)
	if err == nil {
		t.Fatalf("Verify accepted a token that %s: %+v", why, c)
	}
	if !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("error %v does not wrap ErrInvalidToken", err)
	}
}

func TestHS256ClaimsAreRead(t *testing.T) {
	v := newVerifier(t, Config{Secrets: [][]byte{secret}})
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	c := mustAccept(t, v, sign(t, jwt.SigningMethodHS256, secret, "", with(valid(), "exp", exp.Unix())))
	if c.UserID != 42 || c.Username != "alice" || !c.ExpiresAt.Equal(exp) || !c.ValidUntil.Equal(exp) {
		t.Fatalf("claims = %+v, want user 42 alice expiring %v", c, exp)
	}
	c = mustAccept(t, v, sign(t, jwt.SigningMethodHS256, secret, "", with(valid(), "sub", nil, "user_id", 7)))
	if c.UserID != 7 {
		t.Fatalf("numeric user_id claim read as %d, want 7", c.UserID)
	}
	c = mustAccept(t, v, sign(t, jwt.SigningMethodHS256, secret, "", with(valid(), "sub", "9007199254740991")))
	if c.UserID != MaxUserID {
		t.Fatalf("the largest sub read as %d", c.UserID)
	}
}

func TestHS256RefusesBadUserClaims(t *testing.T) {
	v := newVerifier(t, Config{Secrets: [][]byte{secret}})
	for name, claims := range map[string]jwt.MapClaims{
		"no user":             with(valid(), "sub", nil),
		"sub not a number":    with(valid(), "sub", "alice"),
		"sub negative":        with(valid(), "sub", "-3"),
		"sub zero":            with(valid(), "sub", "0"),
		"sub overflows int64": with(valid(), "sub", "99999999999999999999"),
		"sub above 2^53-1":    with(valid(), "sub", "9007199254740992"),
		"sub with a sign":     with(valid(), "sub", "+42"),
		"sub with a zero":     with(valid(), "sub", "042"),
		"user_id 2^53":        with(valid(), "sub", nil, "user_id", float64(1<<53)),
		"user_id a string":    with(valid(), "sub", nil, "user_id", "7"),
		"user_id fractional":  with(valid(), "sub", nil, "user_id", 7.5),
		"user_id negative":    with(valid(), "sub", nil, "user_id", -7),
		"user_id too large":   with(valid(), "sub", nil, "user_id", 1e300),
	} {
		t.Run(name, func(t *testing.T) {
			mustRefuse(t, v, sign(t, jwt.SigningMethodHS256, secret, "", claims), "names no valid user")
		})
	}
}

func TestTwoSecretsAreValidDuringRotation(t *testing.T) {
	v := newVerifier(t, Config{Secrets: [][]byte{secret, prevSecret}})
	mustAccept(t, v, sign(t, jwt.SigningMethodHS256, secret, "", valid()))
	mustAccept(t, v, sign(t, jwt.SigningMethodHS256, prevSecret, "", valid()))
	mustRefuse(t, v, sign(t, jwt.SigningMethodHS256, otherSecret, "", valid()), "is signed with another secret")

	// Once the old secret is retired, its tokens stop working.
	v = newVerifier(t, Config{Secrets: [][]byte{secret}})
	mustRefuse(t, v, sign(t, jwt.SigningMethodHS256, prevSecret, "", valid()), "is signed with a retired secret")
}

func TestExpiryAndLeeway(t *testing.T) {
	now := time.Now()
	strict := newVerifier(t, Config{Secrets: [][]byte{secret}})
	lenient := newVerifier(t, Config{Secrets: [][]byte{secret}, Leeway: 30 * time.Second})

	justExpired := sign(t, jwt.SigningMethodHS256, secret, "", with(valid(), "exp", now.Add(-10*time.Second).Unix()))
	mustRefuse(t, strict, justExpired, "expired 10s ago with no leeway")
	c := mustAccept(t, lenient, justExpired)
	if want := c.ExpiresAt.Add(30 * time.Second); !c.ValidUntil.Equal(want) {
		t.Fatalf("ValidUntil = %v, want exp plus the leeway, %v", c.ValidUntil, want)
	}

	longExpired := sign(t, jwt.SigningMethodHS256, secret, "", with(valid(), "exp", now.Add(-time.Minute).Unix()))
	mustRefuse(t, lenient, longExpired, "expired beyond the leeway")

	notYet := sign(t, jwt.SigningMethodHS256, secret, "", with(valid(), "nbf", now.Add(10*time.Second).Unix()))
	mustRefuse(t, strict, notYet, "is not valid yet")
	mustAccept(t, lenient, notYet)
	mustRefuse(t, lenient, sign(t, jwt.SigningMethodHS256, secret, "", with(valid(), "nbf", now.Add(time.Minute).Unix())), "is valid only in a minute")

	mustRefuse(t, lenient, sign(t, jwt.SigningMethodHS256, secret, "", with(valid(), "exp", nil)), "has no exp")
}

func TestIssuerAndAudience(t *testing.T) {
	v := newVerifier(t, Config{Secrets: [][]byte{secret}, Issuer: "https://auth.example", Audience: "presenced"})
	good := with(valid(), "iss", "https://auth.example", "aud", []string{"other", "presenced"})
	mustAccept(t, v, sign(t, jwt.SigningMethodHS256, secret, "", good))
	for name, claims := range map[string]jwt.MapClaims{
		"wrong iss":   with(good, "iss", "https://evil.example"),
		"missing iss": with(good, "iss", nil),
		"wrong aud":   with(good, "aud", "billing"),
		"missing aud": with(good, "aud", nil),
	} {
		t.Run(name, func(t *testing.T) {
			mustRefuse(t, v, sign(t, jwt.SigningMethodHS256, secret, "", claims), "has "+name)
		})
	}
	// Without configuration, neither claim matters.
	mustAccept(t, newVerifier(t, Config{Secrets: [][]byte{secret}}), sign(t, jwt.SigningMethodHS256, secret, "", with(valid(), "iss", "anyone", "aud", "anything")))
}

func TestAlgNoneIsRefused(t *testing.T) {
	v := newVerifier(t, Config{Secrets: [][]byte{secret}, PublicKeys: []PublicKey{rsaKey(t).public}})
	none := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", valid())
	mustRefuse(t, v, none, `uses alg "none"`)
	// The same, hand-made with an empty signature and a lower-case alg.
	hdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"NONE","typ":"JWT"}`))
	parts := strings.Split(none, ".")
	mustRefuse(t, v, hdr+"."+parts[1]+".", `uses alg "NONE"`)
}

func TestMalformedAndOversizedTokensAreRefused(t *testing.T) {
	v := newVerifier(t, Config{Secrets: [][]byte{secret}})
	good := sign(t, jwt.SigningMethodHS256, secret, "", valid())
	for name, tok := range map[string]string{
		"empty":           "",
		"garbage":         "not a token",
		"two parts":       good[:strings.LastIndex(good, ".")],
		"bad base64":      "!!!." + good[strings.Index(good, ".")+1:],
		"tampered claims": tamper(good),
		"oversized":       good + strings.Repeat("A", MaxTokenBytes),
	} {
		t.Run(name, func(t *testing.T) { mustRefuse(t, v, tok, "is "+name) })
	}
}

// tamper swaps the claims of tok for ones naming another user, keeping
// the signature.
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"1","exp":9999999999}`))
	return strings.Join(parts, ".")
}

type keyPair struct {
	private crypto.Signer
	public  PublicKey
	pem     []byte
}

func pair(t *testing.T, priv crypto.Signer) keyPair {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	p := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	keys, err := ParsePublicKeysPEM(p)
	if err != nil {
		t.Fatalf("ParsePublicKeysPEM: %v", err)
	}
	return keyPair{private: priv, public: keys[0], pem: p}
}

func rsaKey(t *testing.T) keyPair {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return pair(t, k)
}

func ecKey(t *testing.T) keyPair {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pair(t, k)
}

func edKey(t *testing.T) keyPair {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pair(t, k)
}

func TestPublicKeysFromPEM(t *testing.T) {
	rsaK, ecK, edK := rsaKey(t), ecKey(t), edKey(t)
	for _, tc := range []struct {
		alg    string
		method jwt.SigningMethod
		key    keyPair
	}{
		{"RS256", jwt.SigningMethodRS256, rsaK},
		{"ES256", jwt.SigningMethodES256, ecK},
		{"EdDSA", jwt.SigningMethodEdDSA, edK},
	} {
		t.Run(tc.alg, func(t *testing.T) {
			if tc.key.public.Alg != tc.alg {
				t.Fatalf("key pinned to %q, want %q", tc.key.public.Alg, tc.alg)
			}
			v := newVerifier(t, Config{PublicKeys: []PublicKey{tc.key.public}})
			c := mustAccept(t, v, sign(t, tc.method, tc.key.private, "", valid()))
			if c.UserID != 42 {
				t.Fatalf("user %d, want 42", c.UserID)
			}
			mustRefuse(t, v, sign(t, jwt.SigningMethodHS256, secret, "", valid()), "is HS256 where only a public key is configured")
			mustRefuse(t, v, sign(t, jwt.SigningMethodHS256, tc.key.pem, "", valid()), "is HS256 signed with the public key's PEM as secret")
			mustRefuse(t, v, sign(t, tc.method, tc.key.private, "", with(valid(), "exp", time.Now().Add(-time.Hour).Unix())), "expired")
		})
	}
	t.Run("other key of the same type", func(t *testing.T) {
		v := newVerifier(t, Config{PublicKeys: []PublicKey{ecK.public}})
		mustRefuse(t, v, sign(t, jwt.SigningMethodES256, ecKey(t).private, "", valid()), "is signed with another EC key")
	})
	t.Run("key of another algorithm", func(t *testing.T) {
		v := newVerifier(t, Config{PublicKeys: []PublicKey{rsaK.public}})
		mustRefuse(t, v, sign(t, jwt.SigningMethodES256, ecK.private, "", valid()), "is ES256 where only an RSA key is configured")
		mustRefuse(t, v, sign(t, jwt.SigningMethodPS256, rsaK.private, "", valid()), "is PS256 where the RSA key is pinned to RS256")
		mustRefuse(t, v, sign(t, jwt.SigningMethodRS512, rsaK.private, "", valid()), "is RS512 where the RSA key is pinned to RS256")
	})
	t.Run("HMAC secret and public key side by side", func(t *testing.T) {
		v := newVerifier(t, Config{Secrets: [][]byte{secret}, PublicKeys: []PublicKey{rsaK.public}})
		mustAccept(t, v, sign(t, jwt.SigningMethodHS256, secret, "", valid()))
		mustAccept(t, v, sign(t, jwt.SigningMethodRS256, rsaK.private, "", valid()))
		mustRefuse(t, v, sign(t, jwt.SigningMethodHS256, rsaK.pem, "", valid()), "is HS256 signed with the RSA public key's PEM")
	})
}

func TestKeyIDsSelectTheKey(t *testing.T) {
	a, b := ecKey(t), ecKey(t)
	a.public.ID, b.public.ID = "a", "b"
	v := newVerifier(t, Config{PublicKeys: []PublicKey{a.public, b.public}})
	mustAccept(t, v, sign(t, jwt.SigningMethodES256, b.private, "b", valid()))
	mustAccept(t, v, sign(t, jwt.SigningMethodES256, b.private, "", valid())) // no kid: every key is tried
	mustRefuse(t, v, sign(t, jwt.SigningMethodES256, b.private, "a", valid()), "names key a but is signed by b")
	mustRefuse(t, v, sign(t, jwt.SigningMethodES256, b.private, "c", valid()), "names an unknown key")
}

func TestBadKeyConfigurationIsRefused(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&small.PublicKey)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der384, _ := x509.MarshalPKIXPublicKey(&p384.PublicKey)
	ecPriv, _ := x509.MarshalECPrivateKey(p384)
	for name, data := range map[string][]byte{
		"no PEM":        []byte("not a key"),
		"short RSA key": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
		"P-384 key":     pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der384}),
		"private key":   pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecPriv}),
		"broken DER":    pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2, 3}}),
	} {
		t.Run(name, func(t *testing.T) {
			if keys, err := ParsePublicKeysPEM(data); err == nil {
				t.Fatalf("ParsePublicKeysPEM accepted %s: %+v", name, keys)
			}
		})
	}
	ec := ecKey(t).public
	for name, cfg := range map[string]Config{
		"nothing":              {},
		"empty secret":         {Secrets: [][]byte{{}}},
		"one-byte secret":      {Secrets: [][]byte{[]byte("x")}},
		"31-byte secret":       {Secrets: [][]byte{[]byte("0123456789abcdef0123456789abcde")}},
		"short second secret":  {Secrets: [][]byte{secret, []byte("short")}},
		"key pinned wrongly":   {PublicKeys: []PublicKey{{Alg: "RS256", Key: ec.Key}}},
		"unsupported key type": {PublicKeys: []PublicKey{{Alg: "HS256", Key: secret}}},
		"plain http JWKS":      {JWKSURL: "http://auth.example/jwks.json"},
		"unparsable JWKS URL":  {JWKSURL: "https://[::1"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := NewVerifier(cfg); err == nil {
				t.Fatalf("NewVerifier accepted %s", name)
			}
		})
	}
	if _, err := NewVerifier(Config{JWKSURL: "https://auth.example/jwks.json"}); err != nil {
		t.Fatalf("an https JWKS URL was refused: %v", err)
	}
	_, err = NewVerifier(Config{Secrets: [][]byte{[]byte("0123456789abcdef0123456789abcde")}})
	if err == nil || !strings.Contains(err.Error(), "31 bytes") || !strings.Contains(err.Error(), "at least 32") {
		t.Fatalf("a 31-byte secret: %v, want an error giving its length and the least", err)
	}
	if _, err := NewVerifier(Config{Secrets: [][]byte{[]byte("0123456789abcdef0123456789abcdef")}}); err != nil {
		t.Fatalf("a 32-byte secret was refused: %v", err)
	}
}

func TestPEMWithSeveralKeys(t *testing.T) {
	rsaK, edK := rsaKey(t), edKey(t)
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(rsaK.private.Public().(*rsa.PublicKey))})
	keys, err := ParsePublicKeysPEM(append(pkcs1, edK.pem...))
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0].Alg != "RS256" || keys[1].Alg != "EdDSA" {
		t.Fatalf("keys = %+v, want an RS256 and an EdDSA key", keys)
	}
	v := newVerifier(t, Config{PublicKeys: keys})
	mustAccept(t, v, sign(t, jwt.SigningMethodRS256, rsaK.private, "", valid()))
	mustAccept(t, v, sign(t, jwt.SigningMethodEdDSA, edK.private, "", valid()))
}

func TestIssuerSignsTokensTheVerifierAccepts(t *testing.T) {
	tok, err := NewIssuer(secret, time.Minute).Issue(9, "bob")
	if err != nil {
		t.Fatal(err)
	}
	c := mustAccept(t, newVerifier(t, Config{Secrets: [][]byte{prevSecret, secret}}), tok)
	if c.UserID != 9 || c.Username != "bob" {
		t.Fatalf("claims = %+v", c)
	}
	if d := time.Until(c.ExpiresAt); d <= 0 || d > time.Minute {
		t.Fatalf("token expires in %v, want within a minute", d)
	}
}

func TestUsernameComesFromTheFirstClaimThatHoldsOne(t *testing.T) {
	base := jwt.MapClaims{"sub": "42", "exp": time.Now().Add(time.Hour).Unix()}
	for _, tc := range []struct {
		name   string
		claims []string // Config.UsernameClaims
		token  jwt.MapClaims
		want   string
	}{
		{"username first", nil, with(base, "username", "alice", "preferred_username", "alice.p", "name", "Alice P."), "alice"},
		{"OpenID Connect's preferred_username", nil, with(base, "preferred_username", "alice.p", "name", "Alice P."), "alice.p"},
		{"then name", nil, with(base, "name", "Alice P."), "Alice P."},
		{"an empty one is passed over", nil, with(base, "username", "", "name", "Alice P."), "Alice P."},
		{"so is one of another type", nil, with(base, "username", 7, "preferred_username", []any{"x"}, "name", "Alice P."), "Alice P."},
		{"none at all", nil, base, ""},
		{"a configured claim", []string{"nickname"}, with(base, "username", "alice", "nickname", "ally"), "ally"},
		{"configured claims in their order", []string{"name", "username"}, with(base, "username", "alice", "name", "Alice P."), "Alice P."},
		{"only the configured ones", []string{"nickname"}, with(base, "username", "alice"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := newVerifier(t, Config{Secrets: [][]byte{secret}, UsernameClaims: tc.claims})
			c := mustAccept(t, v, sign(t, jwt.SigningMethodHS256, secret, "", tc.token))
			if c.Username != tc.want || c.UserID != 42 {
				t.Fatalf("username %q (user %d), want %q", c.Username, c.UserID, tc.want)
			}
		})
	}
	if _, err := NewVerifier(Config{Secrets: [][]byte{secret}, UsernameClaims: []string{"username", ""}}); err == nil {
		t.Fatal("an empty claim name was accepted")
	}
	// Development tokens carry username, which the default reads.
	tok, err := NewIssuer(secret, time.Hour).Issue(9, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if c := mustAccept(t, newVerifier(t, Config{Secrets: [][]byte{secret}}), tok); c.Username != "bob" {
		t.Fatalf("a development token's username: %q", c.Username)
	}
}
