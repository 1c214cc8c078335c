package auth

import (
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// A token accepted once is taken as it was read when it comes again, and
// still only until its exp plus the leeway; one refused is not kept.
func TestAcceptedTokensAreRememberedUntilTheirEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := newVerifier(t, Config{Secrets: [][]byte{secret}, Leeway: time.Second})
		tok := sign(t, jwt.SigningMethodHS256, secret, "", with(valid(), "exp", time.Now().Add(2*time.Second).Unix()))
		first := mustAccept(t, v, tok)
		if v.known.len() != 1 {
			t.Fatalf("%d tokens remembered after one was accepted, want 1", v.known.len())
		}
		if again := mustAccept(t, v, tok); again.UserID != first.UserID || again.Username != first.Username || !again.ValidUntil.Equal(first.ValidUntil) {
			t.Fatalf("remembered claims %+v, first read %+v", again, first)
		}
		time.Sleep(2500 * time.Millisecond) // past exp, within the leeway
		mustAccept(t, v, tok)
		time.Sleep(500 * time.Millisecond) // at exp plus the leeway
		mustRefuse(t, v, tok, "expired with its leeway, though remembered")

		mustRefuse(t, v, sign(t, jwt.SigningMethodHS256, otherSecret, "", valid()), "is signed by another key")
		mustRefuse(t, v, sign(t, jwt.SigningMethodHS256, secret, "", with(valid(), "sub", "abc")), "has a bad sub")
		if n := v.known.len(); n != 0 {
			t.Fatalf("%d tokens remembered; the expired one and the refused ones should not be", n)
		}
	})
}

// A remembered token is checked again after rememberFor, whatever its
// exp, so that a key withdrawn from a key set stops being trusted; the
// memory is bounded, and a long token is never kept.
func TestRememberedTokensAreBounded(t *testing.T) {
	var r rememberedTokens
	now := time.Now()
	c := Claims{UserID: 1, ValidUntil: now.Add(time.Hour)}
	r.put("a", c, now)
	if _, ok := r.get("a", now.Add(rememberFor-time.Millisecond)); !ok {
		t.Fatal("a token is forgotten before rememberFor")
	}
	if _, ok := r.get("a", now.Add(rememberFor)); ok {
		t.Fatal("a token of an hour is still taken on trust after rememberFor")
	}
	r.put(strings.Repeat("x", rememberMaxBytes+1), c, now)
	if r.len() != 0 {
		t.Fatalf("%d tokens remembered, want none: a token over %d bytes is not kept", r.len(), rememberMaxBytes)
	}
	for i := range rememberMax + 5*rememberEvict {
		r.put(strconv.Itoa(i), c, now)
		if r.len() > rememberMax {
			t.Fatalf("%d tokens remembered after %d, more than %d", r.len(), i+1, rememberMax)
		}
	}
	if _, ok := r.get(strconv.Itoa(rememberMax+5*rememberEvict-1), now); !ok {
		t.Fatal("the newest token was not kept")
	}
}
