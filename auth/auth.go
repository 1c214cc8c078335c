// Package auth verifies the bearer tokens that an application's own auth
// service issues, and issues tokens for development.
//
// Tokens are JWTs (RFC 7519) checked per RFC 8725: the algorithm is
// pinned by configuration, never taken from the token; exp is required.
// A Verifier is safe for concurrent use.
package auth

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ErrInvalidToken wraps every reason a token is refused.
var ErrInvalidToken = errors.New("invalid or expired token")

// Claims is what a verified token says about its holder.
type Claims struct {
	UserID    int64
	Username  string
	ExpiresAt time.Time
}

// Config says which tokens to accept.
type Config struct {
	// Secrets are the HS256 keys. A token signed with any of them is
	// accepted, so a new key can be rolled out before the old one is
	// retired; the first one signs development tokens. Required.
	Secrets [][]byte
	// Issuer, when set, must equal the token's iss claim.
	Issuer string
	// Audience, when set, must be one of the token's aud values.
	Audience string
	// Leeway is the clock skew allowed on exp, nbf and iat. Default 0.
	Leeway time.Duration
}

// Verifier checks tokens.
type Verifier struct {
	cfg    Config
	parser *jwt.Parser
}

// NewVerifier returns a Verifier for cfg.
func NewVerifier(cfg Config) (*Verifier, error) {
	if len(cfg.Secrets) == 0 {
		return nil, errors.New("auth: no secret configured")
	}
	for i, s := range cfg.Secrets {
		if len(s) == 0 {
			return nil, fmt.Errorf("auth: secret %d is empty", i)
		}
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(cfg.Leeway),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	return &Verifier{cfg: cfg, parser: jwt.NewParser(opts...)}, nil
}

// tokenClaims adds the fields presenced reads to the registered ones.
type tokenClaims struct {
	jwt.RegisteredClaims
	UserID   any    `json:"user_id,omitempty"`
	Username string `json:"username,omitempty"`
}

// Verify checks token and returns its claims. Every failure wraps
// ErrInvalidToken.
func (v *Verifier) Verify(token string) (Claims, error) {
	var lastErr error
	for _, secret := range v.cfg.Secrets {
		var tc tokenClaims
		_, err := v.parser.ParseWithClaims(token, &tc, func(*jwt.Token) (any, error) { return secret, nil })
		if err == nil {
			return claimsOf(&tc)
		}
		lastErr = err
		// Only a bad signature is worth trying the next key for.
		if !errors.Is(err, jwt.ErrTokenSignatureInvalid) {
			break
		}
	}
	return Claims{}, fmt.Errorf("%w: %v", ErrInvalidToken, lastErr)
}

func claimsOf(tc *tokenClaims) (Claims, error) {
	id, err := userID(tc)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	return Claims{UserID: id, Username: tc.Username, ExpiresAt: tc.ExpiresAt.Time}, nil
}

// userID reads sub as a decimal string, or else a numeric user_id claim.
func userID(tc *tokenClaims) (int64, error) {
	if tc.Subject != "" {
		id, err := strconv.ParseInt(tc.Subject, 10, 64)
		if err != nil || id <= 0 {
			return 0, fmt.Errorf("sub %q is not a positive decimal user id", tc.Subject)
		}
		return id, nil
	}
	switch v := tc.UserID.(type) {
	case float64:
		if v <= 0 || v != math.Trunc(v) || v > 1<<53 {
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
	tc := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   strconv.FormatInt(userID, 10),
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(i.ttl)),
		},
		Username: username,
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, tc).SignedString(i.secret)
}
