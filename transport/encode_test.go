package transport

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/presenced/presenced/hub"
)

// viaReflection is what encoding/json writes for a batch answer: the
// yardstick the hand-written encoder must match byte for byte.
func viaReflection(t testing.TB, ps []hub.Presence) []byte {
	var b bytes.Buffer
	if err := json.NewEncoder(&b).Encode(toPresencesJSON(ps)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// subscribedReply is the struct whose encoding/json bytes the answer to
// a subscribe had before encodeSubscribed, and must keep.
type subscribedReply struct {
	Type      string          `json:"type"`
	ID        json.RawMessage `json:"id,omitempty"`
	Presences []presenceJSON  `json:"presences"`
}

// clientIDs are ids as a client's message carries them: none, numbers,
// and strings plain or not.
var clientIDs = []json.RawMessage{
	nil, json.RawMessage(`7`), json.RawMessage(`-12.5e3`), json.RawMessage(`"sub-1"`),
	json.RawMessage(`"a \"quoted\" \\ id"`), json.RawMessage(`"<b>&amp;</b>"`),
	json.RawMessage(`"Zoë \u00e9 \u2028"`), json.RawMessage("\"line sep \u2028 para sep \u2029\""),
}

func checkSameAsReflection(t testing.TB, ps []hub.Presence) {
	t.Helper()
	want := viaReflection(t, ps)
	got := append(appendPresences(nil, ps), '\n')
	if !bytes.Equal(got, want) {
		t.Fatalf("hand-written encoding differs:\n got %s\nwant %s", got, want)
	}
	// The answer to a subscribe carries the same array.
	for _, id := range clientIDs {
		want, err := json.Marshal(subscribedReply{Type: "subscribed", ID: id, Presences: toPresencesJSON(ps)})
		if err != nil {
			t.Fatal(err)
		}
		if got := encodeSubscribed(id, ps); !bytes.Equal(got, want) {
			t.Fatalf("subscribed answer with id %s differs:\n got %s\nwant %s", id, got, want)
		}
	}
	// An event is the same object with its type in front.
	for _, p := range ps {
		one := viaReflection(t, []hub.Presence{p})
		wantEvent := append([]byte(`{"type":"presence",`), one[2:len(one)-2]...)
		if got := EncodeEvent(p); !bytes.Equal(got, wantEvent) {
			t.Fatalf("event differs:\n got %s\nwant %s", got, wantEvent)
		}
	}
}

func TestAppendPresencesMatchesEncodingJSON(t *testing.T) {
	wait, zero := 15, 0
	cet := time.FixedZone("CET", 3600)
	tests := map[string][]hub.Presence{
		"empty": {},
		"plain": {{UserID: 1, Username: "alice", Online: true, Busy: true, WaitTime: &wait, LastSeen: time.Date(2024, 1, 15, 10, 30, 0, 0, time.UTC)}},
		"nulls and zero wait": {
			{UserID: 2},
			{UserID: 3, Username: "bob", WaitTime: &zero, LastSeen: time.Date(2024, 1, 15, 11, 30, 59, 999_999_999, cet)},
		},
		"names that need escaping": {
			{UserID: 4, Username: `quote " and \ backslash`},
			{UserID: 5, Username: "<script>&amp;</script>"},
			{UserID: 6, Username: "tab\tnewline\ncontrol\x01"},
			{UserID: 7, Username: "Zoë 渡辺 \u2028\u2029 😀"},
			{UserID: 8, Username: "bad utf-8 \xff\xfe"},
		},
		"large ids": {{UserID: 1<<53 + 1, Username: "x"}, {UserID: 9223372036854775807}},
	}
	for name, ps := range tests {
		t.Run(name, func(t *testing.T) { checkSameAsReflection(t, ps) })
	}
}

// FuzzAppendPresences holds the hand-written encoder to encoding/json for
// any name, id, wait time and instant.
func FuzzAppendPresences(f *testing.F) {
	f.Add(int64(1), "alice", true, false, 15, int64(1705314600), int64(0))
	f.Add(int64(2), "<&>\"\\\x00\xff", false, true, -1, int64(0), int64(999))
	f.Fuzz(func(t *testing.T, id int64, name string, online, busy bool, wait int, unix, nanos int64) {
		p := hub.Presence{UserID: id, Username: name, Online: online, Busy: busy}
		if wait >= 0 {
			p.WaitTime = &wait
		}
		if unix != 0 || nanos != 0 {
			// Keep to the years encoding/json can write (0 to 9999).
			p.LastSeen = time.Unix(unix%253402300799, nanos%1e9).UTC()
			if p.LastSeen.Year() < 0 {
				t.Skip()
			}
		}
		checkSameAsReflection(t, []hub.Presence{p, p})
	})
}
