package transport

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/go-chi/chi/v5"

	"github.com/presenced/presenced/hub"
)

// TestEveryRouteIsDocumented walks the router with every optional route
// switched on and finds each route in openapi.json, so that a new
// endpoint cannot ship undescribed. Only the static files at / are not
// API.
func TestEveryRouteIsDocumented(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPIDocument, &doc); err != nil {
		t.Fatal(err)
	}
	h := hub.New(nil, hub.Config{EncodeEvent: EncodeEvent})
	s := New(h, VerifierFunc(func(string) (Identity, error) { return Identity{}, nil }), Config{
		DevTokens: devIssuer{}, Metrics: http.NotFoundHandler(), Static: fstest.MapFS{},
	})
	routes := 0
	err := chi.Walk(s.router, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if route == "/*" {
			return nil
		}
		routes++
		if _, ok := doc.Paths[route][strings.ToLower(method)]; !ok {
			t.Errorf("%s %s is served but not in openapi.json", method, route)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if routes < 15 {
		t.Fatalf("walked only %d routes", routes)
	}
}

type devIssuer struct{}

func (devIssuer) Issue(int64, string) (string, error) { return "", nil }
