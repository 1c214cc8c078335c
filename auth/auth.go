// Package auth verifies the bearer tokens that an application's own auth
// service issues, and issues tokens for development.
//
// Tokens are JWTs (RFC 7519) checked per RFC 8725: every key is pinned to
// one algorithm (HS256 for secrets; RS256, ES256 or EdDSA for public keys,
// by key type), so a token cannot choose how it is checked, "none" is
// never accepted and a public key is never taken for an HMAC secret; exp
// is required; iss and aud are checked when configured. Public keys come
// from PEM files or a JWKS URL.
//
// A token names a user (sub, or user_id), or, when its scope lists
// ServiceScope, is a service credential whose sub names the service.
//
// A Verifier is safe for concurrent use. It starts no goroutine: a JWKS is
// fetched, at a bounded rate, by the Verify call that needs it.
package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// ErrInvalidToken wraps every reason a token is refused.
var ErrInvalidToken = errors.New("invalid or expired token")

// MinSecretBytes is the shortest HS256 secret accepted: RFC 7518,
// section 3.2, requires a key at least as long as the hash output, 256
// bits. A shorter secret can be brute-forced from any one token.
const MinSecretBytes = 32

// MaxTokenBytes bounds the length of a token. Real tokens are well under
// 2 KiB; refusing longer ones before any decoding keeps a hostile client
// from making the server parse megabytes of base64.
const MaxTokenBytes = 8 << 10

// MaxUserID is the largest user id a token may name, 2^53 − 1: the
// largest integer a JavaScript number holds exactly.
const MaxUserID = 1<<53 - 1

// ServiceScope, listed in a token's scope claim, makes the token a
// service credential: the app's own backend acting for users, not a user.
// The claim is one string of space-separated scopes, as OAuth 2.0 writes
// it (RFC 6749, section 3.3; RFC 8693, section 4.2); a scope claim of any
// other type is passed over, so the token is then a user's.
const ServiceScope = "presenced:service"

// MaxServiceNameBytes bounds the sub of a service credential, which is
// written to the log with every write the service makes.
const MaxServiceNameBytes = 128

// Claims is what a verified token says about its holder.
type Claims struct {
	UserID   int64
	Username string
	// ExpiresAt is the token's exp.
	ExpiresAt time.Time
	// ValidUntil is exp plus the leeway: the last instant the token is
	// accepted, and so when a socket opened with it must close.
	ValidUntil time.Time
	// Service names the service of a service credential (a token whose
	// scope lists ServiceScope): its sub, which need not be a user id.
	// UserID is then 0. Empty for a user's token.
	Service string
	// Watch is the token's watch claim as it was signed, nil when it has
	// none. auth does not read it: whether it matters, and what a
	// malformed one means, is the watch policy's business.
	Watch json.RawMessage
}

// Config says which tokens to accept. At least one of Secrets,
// PublicKeys and JWKSURL is required; each key accepts only its own
// algorithm, so a public key can never be used as an HMAC secret.
type Config struct {
	// Secrets are the HS256 keys, each at least MinSecretBytes long. A token signed with any of them is
	// accepted, so a new key can be rolled out before the old one is
	// retired; the first one signs development tokens.
	Secrets [][]byte
	// PublicKeys verify tokens that the application's auth server signs
	// with RS256, ES256 or EdDSA. A key with an ID is used only for tokens
	// whose kid header names it; a key without one is tried for every
	// token of its algorithm.
	PublicKeys []PublicKey
	// JWKSURL, when set, is a JSON Web Key Set fetched on first use and
	// cached. It must be https, except on a loopback host.
	JWKSURL string
	// JWKSClient fetches JWKSURL. Default: a client with a 10s timeout.
	JWKSClient *http.Client
	// JWKSMaxAge is how long a fetched key set is used before it is
	// fetched again. Default 1h.
	JWKSMaxAge time.Duration
	// JWKSMinRefresh is the least time between two fetches, so that
	// tokens naming unknown kids cannot make the server hammer the key
	// server: a token with an unknown kid triggers a fetch only if the
	// last one is at least this old. Default 1m.
	JWKSMinRefresh time.Duration
	// Issuer, when set, must equal the token's iss claim.
	Issuer string
	// Audience, when set, must be one of the token's aud values.
	Audience string
	// Leeway is the clock skew allowed on exp, nbf and iat. Zero allows
	// none (DefaultConfig sets 30s).
	Leeway time.Duration
	// UsernameClaims are the claims that may carry the display name, in
	// order: the first that holds a non-empty string wins. Auth servers
	// differ (OpenID Connect names preferred_username and name), so the
	// default, DefaultUsernameClaims, takes the common ones.
	UsernameClaims []string
}

// DefaultConfig returns presenced's defaults: the values that the zero
// JWKS fields stand for, and a leeway of 30s for clock skew, which a zero
// Leeway turns off. presenced's flags and README show them.
func DefaultConfig() Config {
	return Config{JWKSMaxAge: time.Hour, JWKSMinRefresh: time.Minute, Leeway: 30 * time.Second, UsernameClaims: DefaultUsernameClaims}
}

// DefaultUsernameClaims are the claims read for the display name when
// Config.UsernameClaims is empty: presenced's own username, then OpenID
// Connect's preferred_username and name.
var DefaultUsernameClaims = []string{"username", "preferred_username", "name"}

// Verifier checks tokens.
type Verifier struct {
	secrets []jwt.VerificationKey
	keys    []PublicKey
	jwks    *jwks // nil without a JWKS URL
	leeway  time.Duration
	parser  *jwt.Parser
	names   []string // UsernameClaims
	known   rememberedTokens
}

// NewVerifier returns a Verifier for cfg.
func NewVerifier(cfg Config) (*Verifier, error) {
	if len(cfg.Secrets) == 0 && len(cfg.PublicKeys) == 0 && cfg.JWKSURL == "" {
		return nil, errors.New("auth: no secret, public key or JWKS URL configured")
	}
	v := &Verifier{keys: cfg.PublicKeys, leeway: cfg.Leeway, names: cfg.UsernameClaims}
	if len(v.names) == 0 {
		v.names = DefaultUsernameClaims
	}
	for _, n := range v.names {
		if n == "" {
			return nil, errors.New("auth: an empty name among the username claims")
		}
	}
	methods := map[string]bool{}
	for i, s := range cfg.Secrets {
		if len(s) < MinSecretBytes {
			return nil, fmt.Errorf("auth: secret %d is %d bytes; HS256 needs at least %d (RFC 7518, section 3.2)", i, len(s), MinSecretBytes)
		}
		v.secrets = append(v.secrets, s)
		methods[jwt.SigningMethodHS256.Alg()] = true
	}
	for i, k := range cfg.PublicKeys {
		alg, err := algFor(k.Key)
		if err != nil {
			return nil, fmt.Errorf("auth: public key %d: %w", i, err)
		}
		if k.Alg != alg {
			return nil, fmt.Errorf("auth: public key %d is pinned to %q but is a %s key", i, k.Alg, alg)
		}
		methods[alg] = true
	}
	if cfg.JWKSURL != "" {
		j, err := newJWKS(cfg)
		if err != nil {
			return nil, err
		}
		v.jwks = j
		for _, alg := range asymmetricAlgs {
			methods[alg] = true
		}
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(sortedKeys(methods)),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(cfg.Leeway),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// tokenClaims adds the fields presenced reads to the registered ones.
type tokenClaims struct {
	jwt.RegisteredClaims
	UserID   any             `json:"user_id,omitempty"`
	Username string          `json:"-"` // from the first of names that holds one
	Service  bool            `json:"-"` // scope is a string that lists ServiceScope
	Watch    json.RawMessage `json:"-"`

	names []string // claims that may hold the username, in order
}

// UnmarshalJSON reads the registered claims and user_id, and takes the
// username from the first of tc.names that holds a non-empty string; a
// claim of another type is passed over, as an absent one is.
func (tc *tokenClaims) UnmarshalJSON(b []byte) error {
	type fields tokenClaims // the same fields, without this method
	if err := json.Unmarshal(b, (*fields)(tc)); err != nil {
		return err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	for _, n := range tc.names {
		var name string
		if json.Unmarshal(all[n], &name) == nil && name != "" {
			tc.Username = name
			break
		}
	}
	var scope string
	if json.Unmarshal(all["scope"], &scope) == nil {
		tc.Service = slices.Contains(strings.Fields(scope), ServiceScope)
	}
	tc.Watch = all["watch"]
	return nil
}

// Verify checks token and returns its claims. Every failure wraps
// ErrInvalidToken.
func (v *Verifier) Verify(token string) (Claims, error) {
	if len(token) > MaxTokenBytes {
		return Claims{}, fmt.Errorf("%w: token is longer than %d bytes", ErrInvalidToken, MaxTokenBytes)
	}
	now := time.Now()
	if c, ok := v.known.get(token, now); ok {
		return c, nil
	}
	tc := tokenClaims{names: v.names}
	if _, err := v.parser.ParseWithClaims(token, &tc, v.keyFor); err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	c, err := claimsOf(&tc)
	c.ValidUntil = c.ExpiresAt.Add(v.leeway)
	if err == nil {
		v.known.put(token, c, now)
	}
	return c, err
}

// keyFor picks the keys that may have signed t: only keys pinned to the
// token's algorithm, and among those only the one its kid names, if any.
// The parser has already refused algorithms that no key is pinned to,
// "none" among them.
func (v *Verifier) keyFor(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	if alg == jwt.SigningMethodHS256.Alg() {
		return jwt.VerificationKeySet{Keys: v.secrets}, nil
	}
	kid, _ := t.Header["kid"].(string)
	set := matching(v.keys, alg, kid, jwt.VerificationKeySet{})
	if v.jwks != nil {
		set = v.jwks.matching(alg, kid, set)
	}
	if len(set.Keys) == 0 {
		return nil, fmt.Errorf("no %s key with kid %q", alg, truncate(kid, 64))
	}
	return set, nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func claimsOf(tc *tokenClaims) (Claims, error) {
	if tc.Service {
		if err := checkServiceName(tc.Subject); err != nil {
			return Claims{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
		}
		return Claims{Service: tc.Subject, Username: tc.Username, ExpiresAt: tc.ExpiresAt.Time, Watch: tc.Watch}, nil
	}
	id, err := userID(tc)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	return Claims{UserID: id, Username: tc.Username, ExpiresAt: tc.ExpiresAt.Time, Watch: tc.Watch}, nil
}

// checkServiceName holds a service credential's sub to what a log line
// can carry: a name, not a user id, but one that is there, short and free
// of control characters.
func checkServiceName(sub string) error {
	if sub == "" {
		return errors.New("a service token names its service in sub, which is missing")
	}
	if len(sub) > MaxServiceNameBytes || !utf8.ValidString(sub) {
		return fmt.Errorf("a service token's sub is at most %d bytes of UTF-8", MaxServiceNameBytes)
	}
	for _, r := range sub {
		if unicode.IsControl(r) {
			return fmt.Errorf("a service token's sub must not contain control characters; it has U+%04X", r)
		}
	}
	return nil
}

// userID reads sub as a decimal string, or else a numeric user_id claim.
// Ids have one spelling, digits without sign or leading zero, and are at
// most MaxUserID, as everywhere else in presenced: a user whose id no
// request could name could be watched by nobody.
func userID(tc *tokenClaims) (int64, error) {
	if tc.Subject != "" {
		s := tc.Subject
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id <= 0 || id > MaxUserID || s[0] < '1' || s[0] > '9' {
			return 0, fmt.Errorf("sub %q is not a user id: digits without sign or leading zero, at most %d", truncate(s, 32), MaxUserID)
		}
		return id, nil
	}
	switch v := tc.UserID.(type) {
	case float64:
		if v <= 0 || v != math.Trunc(v) || v > MaxUserID {
			return 0, fmt.Errorf("user_id %v is not a positive integer", v)
		}
		return int64(v), nil
	case nil:
		return 0, errors.New("token names no user: sub and user_id are missing")
	default:
		return 0, fmt.Errorf("user_id must be a number, not %T", v)
	}
}

// Issuer signs tokens with the first configured secret. presenced uses it
// only for development tokens; production tokens come from the
// application's own auth service.
type Issuer struct {
	secret []byte
	ttl    time.Duration
}

// NewIssuer returns an Issuer whose tokens live for ttl.
func NewIssuer(secret []byte, ttl time.Duration) *Issuer {
	return &Issuer{secret: secret, ttl: ttl}
}

// Issue returns a signed token for the user.
func (i *Issuer) Issue(userID int64, username string) (string, error) {
	now := time.Now()
	tc := struct {
		jwt.RegisteredClaims
		Username string `json:"username,omitempty"`
	}{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   strconv.FormatInt(userID, 10),
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(i.ttl)),
		},
		Username: username,
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, tc).SignedString(i.secret)
}
