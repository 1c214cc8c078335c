package presenced_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/presenced/presenced/auth"
	"github.com/presenced/presenced/internal/presenced"
	"github.com/presenced/presenced/internal/testserver"
)

// TestASocketLivesUntilExpPlusTheLeeway holds the one adapter of auth to
// transport to the production rule: a socket lives until the token's
// exp plus the verifier's leeway, the last instant the verifier accepts
// it. The tests run through the same wiring, so they run this rule too;
// their own copies used to map the bare exp.
func TestASocketLivesUntilExpPlusTheLeeway(t *testing.T) {
	secret := []byte("presenced-test-secret-0123456789abcdef")
	const leeway = 30 * time.Second
	srv := testserver.Run(t, presenced.Options{Auth: auth.Config{Secrets: [][]byte{secret}, Leeway: leeway}})
	sign := func(exp time.Time) string {
		t.Helper()
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "7", "exp": exp.Unix()}).SignedString(secret)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}

	// A token whose exp passed within the leeway still opens a socket.
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/ws?access_token="+sign(time.Now().Add(-leeway/2)), nil)
	if err != nil {
		t.Fatalf("a token within the leeway of its exp: %v", err)
	}
	defer ws.Close()

	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	if err := ws.WriteJSON(map[string]string{"type": "refresh", "token": sign(exp)}); err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	var reply struct {
		Type      string    `json:"type"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	if _, data, err := ws.ReadMessage(); err != nil || json.Unmarshal(data, &reply) != nil || reply.Type != "refreshed" {
		t.Fatalf("refresh: %s %v", data, err)
	}
	if want := exp.Add(leeway); !reply.ExpiresAt.Equal(want) {
		t.Fatalf("the socket now ends at %v, want exp plus the leeway, %v", reply.ExpiresAt, want)
	}
}
