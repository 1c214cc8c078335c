package auth

import (
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// A service credential is a token whose scope string lists
// presenced:service; its sub names the service and need not be a user id.
func TestServiceScopeMakesAServiceCredential(t *testing.T) {
	v := newVerifier(t, Config{Secrets: [][]byte{secret}})
	for _, scope := range []string{"presenced:service", "openid presenced:service profile", " presenced:service\t"} {
		c := mustAccept(t, v, sign(t, jwt.SigningMethodHS256, secret, "", with(valid(), "sub", "call-service", "scope", scope)))
		if c.Service != "call-service" || c.UserID != 0 {
			t.Errorf("scope %q: claims %+v, want the service call-service and no user", scope, c)
		}
	}
	// The scope decides, not the sub: a service may be called 42.
	if c := mustAccept(t, v, sign(t, jwt.SigningMethodHS256, secret, "", with(valid(), "scope", ServiceScope))); c.Service != "42" || c.UserID != 0 {
		t.Errorf("a service called 42 read as %+v", c)
	}
	// Neither a scope that only contains the name, nor one of another type,
	// nor another claim makes a service: those tokens are users' tokens.
	for name, claims := range map[string]jwt.MapClaims{
		"a longer scope":       with(valid(), "scope", "presenced:services"),
		"scope in an array":    with(valid(), "scope", []string{ServiceScope}),
		"the scope as a role":  with(valid(), "role", ServiceScope),
		"scp, not scope":       with(valid(), "scp", ServiceScope),
		"comma-separated list": with(valid(), "scope", "openid,presenced:service"),
	} {
		c := mustAccept(t, v, sign(t, jwt.SigningMethodHS256, secret, "", claims))
		if c.Service != "" || c.UserID != 42 {
			t.Errorf("%s: read as %+v, want user 42's token", name, c)
		}
	}
}

func TestServiceCredentialsNeedANamedService(t *testing.T) {
	v := newVerifier(t, Config{Secrets: [][]byte{secret}})
	svc := with(valid(), "scope", ServiceScope)
	for name, claims := range map[string]jwt.MapClaims{
		"no sub":           with(svc, "sub", nil, "user_id", 7),
		"a long sub":       with(svc, "sub", strings.Repeat("s", MaxServiceNameBytes+1)),
		"a control in sub": with(svc, "sub", "call\nservice"),
		"no exp":           with(svc, "exp", nil),
	} {
		t.Run(name, func(t *testing.T) {
			mustRefuse(t, v, sign(t, jwt.SigningMethodHS256, secret, "", claims), "is a service token without a good name")
		})
	}
	// A service credential of another key is as forged as a user's.
	mustRefuse(t, v, sign(t, jwt.SigningMethodHS256, otherSecret, "", with(svc, "sub", "call-service")), "is signed with another key")
	if c := mustAccept(t, v, sign(t, jwt.SigningMethodHS256, secret, "", with(svc, "sub", strings.Repeat("s", MaxServiceNameBytes)))); len(c.Service) != MaxServiceNameBytes {
		t.Errorf("a %d-byte service name was read as %q", MaxServiceNameBytes, c.Service)
	}
}

// The watch claim comes through as it was signed; the watch policy reads it.
func TestWatchClaimIsPassedOnAsSigned(t *testing.T) {
	v := newVerifier(t, Config{Secrets: [][]byte{secret}})
	c := mustAccept(t, v, sign(t, jwt.SigningMethodHS256, secret, "", with(valid(), "watch", []any{2, 3})))
	if string(c.Watch) != "[2,3]" {
		t.Errorf("watch claim read as %s", c.Watch)
	}
	c = mustAccept(t, v, sign(t, jwt.SigningMethodHS256, secret, "", with(valid(), "watch", "everyone")))
	if string(c.Watch) != `"everyone"` {
		t.Errorf("a malformed watch claim read as %s; auth passes it on for the policy to refuse", c.Watch)
	}
	if c := mustAccept(t, v, sign(t, jwt.SigningMethodHS256, secret, "", valid())); c.Watch != nil {
		t.Errorf("a token without a watch claim read as %s", c.Watch)
	}
}
