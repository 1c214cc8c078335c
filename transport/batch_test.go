package transport

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/presenced/presenced/hub"
)

// TestWriterPacksQueuedEventsIntoOneArrayFrame checks the frames a batch
// becomes: consecutive events share one JSON array, replies stay alone.
func TestWriterPacksQueuedEventsIntoOneArrayFrame(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		defer ws.Close()
		c := &conn{s: &Server{cfg: Config{WriteTimeout: 10 * time.Second}, obs: nopObserver{}}, ws: ws}
		ev := func(s string) hub.Message { return hub.Message{Data: []byte(s), Event: true} }
		err = c.write([]hub.Message{ev(`{"e":1}`), ev(`{"e":2}`), {Data: []byte(`{"r":1}`)}, ev(`{"e":3}`), ev(`{"e":4}`), ev(`{"e":5}`)})
		if err != nil {
			t.Error(err)
		}
		_, _, _ = ws.ReadMessage() // until the client hangs up
	}))
	defer srv.Close()
	ws, _, err := websocket.DefaultDialer.DialContext(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	var got []string
	for len(got) < 3 {
		_, data, err := ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(data))
	}
	want := []string{`[{"e":1},{"e":2}]`, `{"r":1}`, `[{"e":3},{"e":4},{"e":5}]`}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("frames %q, want %q", got, want)
	}
}
