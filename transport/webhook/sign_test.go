package webhook_test

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/presenced/presenced/transport/webhook"
)

func secret(fill byte) string {
	return "whsec_" + base64.StdEncoding.EncodeToString([]byte(strings.Repeat(string(fill), 32)))
}

// The signatures are checked by the specification's own Go library, not
// by code of ours.
func TestSignaturesVerifyWithTheStandardWebhooksLibrary(t *testing.T) {
	old, current := secret('a'), secret('b')
	s, err := webhook.NewSigner(current, old)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`[{"id":"evt_1","type":"user.online"}]`)
	h := http.Header{}
	s.Sign(h, "msg_1", time.Now(), body)
	for _, sec := range []string{old, current} {
		wh, err := standardwebhooks.NewWebhook(sec)
		if err != nil {
			t.Fatal(err)
		}
		if err := wh.Verify(body, h); err != nil {
			t.Fatalf("a receiver with one of the secrets refused the request: %v (headers %v)", err, h)
		}
	}
	other, _ := standardwebhooks.NewWebhook(secret('c'))
	if other.Verify(body, h) == nil {
		t.Fatal("a receiver with another secret accepted the request")
	}
	wh, _ := standardwebhooks.NewWebhook(current)
	if wh.Verify(append(body, ' '), h) == nil {
		t.Fatal("a changed body was accepted")
	}
	stale := http.Header{}
	s.Sign(stale, "msg_1", time.Now().Add(-time.Hour), body)
	if wh.Verify(body, stale) == nil {
		t.Fatal("an hour-old timestamp was accepted")
	}
}

func TestSecretsAreRefusedWithAReason(t *testing.T) {
	for _, tc := range []struct{ secret, want string }{
		{"", "whsec_"},
		{"plain-text-secret", "whsec_"},
		{"whsec_not base64!", "base64"},
		{"whsec_" + base64.StdEncoding.EncodeToString([]byte("short")), "at least 24"},
	} {
		if _, err := webhook.NewSigner(tc.secret); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("secret %q: %v, want an error about %q", tc.secret, err, tc.want)
		}
	}
	if _, err := webhook.NewSigner(); err == nil {
		t.Error("no secret at all was accepted")
	}
}
