package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func heartbeatStatus(t *testing.T, base, token string) int {
	t.Helper()
	return requestStatus(t, http.MethodPost, base+"/users/me/heartbeat", token, "")
}

func TestPublicKeyFileVerifiesTokens(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	path := filepath.Join(t.TempDir(), "auth.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	base := startDaemon(t, []string{"-jwt-public-key-file", path}, nil).base

	claims := jwt.MapClaims{"sub": "5", "exp": time.Now().Add(time.Hour).Unix()}
	good, _ := jwt.NewWithClaims(jwt.SigningMethodES256, claims).SignedString(key)
	if code := heartbeatStatus(t, base, good); code != http.StatusOK {
		t.Fatalf("ES256 token signed by the configured key: status %d, want 200", code)
	}
	forged, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte("guess"))
	if code := heartbeatStatus(t, base, forged); code != http.StatusUnauthorized {
		t.Fatalf("HS256 token with no secret configured: status %d, want 401", code)
	}
}

func TestStartRefusesMissingOrBadKeys(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.pem")
	if err := os.WriteFile(bad, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"no key at all":   {nil, "no way to verify tokens"},
		"missing PEM":     {[]string{"-jwt-public-key-file", filepath.Join(t.TempDir(), "absent.pem")}, "no such file"},
		"PEM with no key": {[]string{"-jwt-public-key-file", bad}, "no PEM public key"},
		"plain-http JWKS": {[]string{"-jwt-jwks-url", "http://auth.example/keys"}, "must be https"},
	} {
		t.Run(name, func(t *testing.T) {
			err := run(context.Background(), append([]string{"-addr", "127.0.0.1:0"}, tc.args...), func(string) string { return "" }, io.Discard, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("run = %v, want an error saying %q", err, tc.want)
			}
		})
	}
}
