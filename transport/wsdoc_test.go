package transport_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/presenced/presenced/internal/readme"
	"github.com/presenced/presenced/internal/testkit"
	"github.com/presenced/presenced/transport"
)

// readmeExamples returns the README's socket examples: each client line
// with the answer after it, and the server lines that answer nothing
// (events).
func readmeExamples(t *testing.T) (exchanges [][2]string, events []string) {
	t.Helper()
	_, block, _ := strings.Cut(readme.Section(t, "### Message examples"), "```text\n")
	block, _, _ = strings.Cut(block, "```")
	lines := strings.Split(strings.TrimSpace(block), "\n")
	for i := 0; i < len(lines); i++ {
		switch {
		case strings.HasPrefix(lines[i], "→ ") && i+1 < len(lines) && strings.HasPrefix(lines[i+1], "← "):
			exchanges = append(exchanges, [2]string{lines[i][len("→ "):], lines[i+1][len("← "):]})
			i++
		case strings.HasPrefix(lines[i], "← "):
			events = append(events, lines[i][len("← "):])
		default:
			t.Fatalf("README example line %q is neither an exchange nor an event", lines[i])
		}
	}
	return exchanges, events
}

// sameShape reports how got differs from the documented example doc: the
// same object keys, the same JSON types, array elements like the
// example's first. A null in the example stands for any value.
func sameShape(path string, doc, got any) error {
	switch d := doc.(type) {
	case nil:
		return nil
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: an object in the README, %T in the answer", path, got)
		}
		if dk, gk := keysOf(d), keysOf(g); dk != gk {
			return fmt.Errorf("%s: fields %s in the README, %s in the answer", path, dk, gk)
		}
		for k := range d {
			if err := sameShape(path+"."+k, d[k], g[k]); err != nil {
				return err
			}
		}
		return nil
	case []any:
		g, ok := got.([]any)
		if !ok {
			return fmt.Errorf("%s: an array in the README, %T in the answer", path, got)
		}
		if len(d) > 0 && len(g) == 0 {
			return fmt.Errorf("%s: the answer's array is empty", path)
		}
		for i := range g {
			if err := sameShape(fmt.Sprintf("%s[%d]", path, i), d[0], g[i]); err != nil {
				return err
			}
		}
		return nil
	default:
		if fmt.Sprintf("%T", doc) != fmt.Sprintf("%T", got) {
			return fmt.Errorf("%s: %T in the README, %T (%v) in the answer", path, doc, got, got)
		}
		return nil
	}
}

func keysOf(m map[string]any) string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ",")
}

// waitKnown asks for a user's presence until it answers 200. A socket's
// Connect returns before the store has answered, so a user who just
// connected may not be in a snapshot yet, and nothing announces it.
func waitKnown(t *testing.T, who string, get func() int) {
	t.Helper()
	testkit.Eventually(t, waitFor, func() error {
		if code := get(); code != http.StatusOK {
			return fmt.Errorf("%s's status is not known after connecting: %d", who, code)
		}
		return nil
	})
}

func decodeJSON(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("%q is not JSON: %v", s, err)
	}
	return v
}

// TestReadmeSocketExamplesMatchTheServer sends each documented client
// message to a real server and compares the answer with the README's.
func TestReadmeSocketExamplesMatchTheServer(t *testing.T) {
	exchanges, events := readmeExamples(t)
	if len(exchanges) < 6 || len(events) != 2 {
		t.Fatalf("README shows %d exchanges and %d events; want every client message and both event shapes", len(exchanges), len(events))
	}
	e := startOps(t, transport.Config{})
	dial := func(id int64) *websocket.Conn {
		ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(e.URL, "http")+"/ws",
			http.Header{"Authorization": {"Bearer " + e.token(id)}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ws.Close() })
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		return ws
	}
	alice, bob := dial(1), dial(2)
	// The snapshot example shows bob: wait until his status is stored.
	waitKnown(t, "bob", func() int { resp, _ := e.do("GET", "/users/2/presence", e.token(1), nil); return resp.StatusCode })

	seen := map[string]bool{}
	for _, ex := range exchanges {
		send := strings.Replace(ex[0], `"<a newer token of the same user>"`, `"`+e.token(1)+`"`, 1)
		if err := alice.WriteMessage(websocket.TextMessage, []byte(send)); err != nil {
			t.Fatal(err)
		}
		_, got, err := alice.ReadMessage()
		if err != nil {
			t.Fatalf("after %s: %v", send, err)
		}
		if err := sameShape("answer", decodeJSON(t, ex[1]), decodeJSON(t, string(got))); err != nil {
			t.Errorf("README: %s\n  shows %s\n  the server answered %s\n  %v", ex[0], ex[1], got, err)
		}
		typ, _ := decodeJSON(t, ex[0]).(map[string]any)["type"].(string)
		seen[typ] = true
	}
	for _, typ := range []string{"subscribe", "unsubscribe", "set_status", "ping", "refresh"} {
		if !seen[typ] {
			t.Errorf("README shows no example of the client message %q", typ)
		}
	}

	// A watched user changes: alice watches bob since the first example.
	if err := bob.WriteJSON(map[string]any{"type": "set_status", "is_busy": true, "wait_time": 30}); err != nil {
		t.Fatal(err)
	}
	_, got, err := alice.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	if err := sameShape("event", decodeJSON(t, events[0]), decodeJSON(t, string(got))); err != nil {
		t.Errorf("README's event %s\n  the server sent %s\n  %v", events[0], got, err)
	}
	// Packed events are each shaped like one alone.
	if err := sameShape("packed", decodeJSON(t, events[1]), []any{decodeJSON(t, events[0])}); err != nil {
		t.Errorf("README's packed events differ from its single event: %v", err)
	}
}
