package transport

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// The fuzz targets check what must hold for any input from the network:
// no panic, no id that is not a positive integer, no more ids than the
// limit, no duplicate, and an error detail that stays short and readable
// whatever the input's size. Seed corpora live in testdata/fuzz, which
// every go test replays; .ci/run fuzzes each target for a fixed number
// of inputs (-fuzztime=30000x), not a duration: with a duration, Go
// 1.26's fuzz coordinator can report its own deadline as a failure under
// load (golang/go#75804).

const fuzzMaxIDs = 100

// checkIDs checks a parsed id list.
func checkIDs(t *testing.T, ids []int64, err error) {
	t.Helper()
	if err != nil {
		checkDetail(t, err.Error())
		return
	}
	if len(ids) == 0 || len(ids) > fuzzMaxIDs {
		t.Fatalf("%d ids accepted, want 1 to %d", len(ids), fuzzMaxIDs)
	}
	seen := map[int64]bool{}
	for _, id := range ids {
		if id <= 0 || id > MaxUserID {
			t.Fatalf("id %d accepted", id)
		}
		if seen[id] {
			t.Fatalf("id %d returned twice", id)
		}
		seen[id] = true
	}
}

// checkDetail checks an error meant for a client: bounded, so that a huge
// input cannot be echoed back at length.
func checkDetail(t *testing.T, detail string) {
	t.Helper()
	if detail == "" || len(detail) > 400 {
		t.Fatalf("error detail of %d bytes: %.100q", len(detail), detail)
	}
}

func FuzzParseUserIDList(f *testing.F) {
	f.Fuzz(func(t *testing.T, list string) {
		ids, err := ParseUserIDList(list, fuzzMaxIDs)
		checkIDs(t, ids, err)
		if err == nil {
			// Parsing what was parsed gives the same ids.
			var parts []string
			for _, id := range ids {
				parts = append(parts, strconv.FormatInt(id, 10))
			}
			again, err := ParseUserIDList(strings.Join(parts, ","), fuzzMaxIDs)
			if err != nil || len(again) != len(ids) {
				t.Fatalf("re-parsing %v: %v %v", ids, again, err)
			}
		}
	})
}

func FuzzParseIDArray(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) {
			return // the decoder hands over only valid JSON values
		}
		ids, err := parseIDArray(raw, fuzzMaxIDs)
		checkIDs(t, ids, err)
	})
}

func FuzzDecodeClientMessage(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		if !utf8.Valid(data) {
			return // the reader closes with 1007 before decoding
		}
		msg, typ, err := DecodeClientMessage(data)
		if msg.ID != nil {
			// An id is echoed raw into the answer: it must be a JSON
			// string or number, never an object that could forge fields.
			var v any
			if json.Unmarshal(msg.ID, &v) != nil {
				t.Fatalf("id %s is not valid JSON", msg.ID)
			}
			switch v.(type) {
			case string, float64:
			default:
				t.Fatalf("id %s of type %T kept", msg.ID, v)
			}
		}
		if err != nil {
			checkDetail(t, err.Error())
			return
		}
		// Every field the handlers read parses or fails cleanly.
		switch typ {
		case "subscribe", "unsubscribe":
			ids, err := parseIDArray(msg.UserIDs, fuzzMaxIDs)
			checkIDs(t, ids, err)
		case "set_status":
			up, err := msg.statusFields.update()
			if err != nil {
				checkDetail(t, err.Error())
				return
			}
			if up.Empty() {
				t.Fatal("an empty update was accepted")
			}
			if up.WaitTime != nil && (*up.WaitTime < 0 || *up.WaitTime > MaxWaitTime) {
				t.Fatalf("wait_time %d accepted", *up.WaitTime)
			}
		}
	})
}

// FuzzRedactedURI checks the access log's redaction on any query: pairs
// keep their separators and order, a pair is either kept byte for byte
// or redacted, and whatever a server could read as a token, under any
// spelling of its name or as a JWT anywhere, is redacted.
func FuzzRedactedURI(f *testing.F) {
	for _, q := range []string{
		"access_token=abc", "x=1;access_token=abc", "ACCESS%5Ftoken=abc&b=2", "access%255Ftoken=abc",
		"t=eyJhbGciOiJIUzI1NiJ9.e30.c2ln", "user_ids=1,2", "%zz=1&&;=", "+token+=x",
	} {
		f.Add(q)
	}
	split := func(q string) (parts []string, seps string) {
		for {
			i := strings.IndexAny(q, "&;")
			if i < 0 {
				return append(parts, q), seps
			}
			parts, seps, q = append(parts, q[:i]), seps+q[i:i+1], q[i+1:]
		}
	}
	f.Fuzz(func(t *testing.T, q string) {
		u := &url.URL{Path: "/ws", RawQuery: q}
		out := redactedURI(u)
		if q == "" {
			if out != "/ws" {
				t.Fatalf("no query logged as %q", out)
			}
			return
		}
		rest, ok := strings.CutPrefix(out, "/ws?")
		if !ok {
			t.Fatalf("%q logged as %q", q, out)
		}
		in, inSeps := split(q)
		got, gotSeps := split(rest)
		if inSeps != gotSeps || len(in) != len(got) {
			t.Fatalf("%q logged as %q: the pairs moved", q, out)
		}
		for i, pair := range in {
			redacted := got[i] != pair
			if redacted && got[i] != "REDACTED" && !strings.HasSuffix(got[i], "=REDACTED") {
				t.Fatalf("pair %q logged as %q", pair, got[i])
			}
			key, value, _ := strings.Cut(pair, "=")
			// What a strict server reads, and what a lenient one does.
			strict, err := url.QueryUnescape(key)
			if err != nil {
				strict = key
			}
			secretName := strings.EqualFold(strings.TrimSpace(strict), "access_token") || strings.EqualFold(strings.TrimSpace(strict), "token") ||
				strings.Contains(fold(looseUnescape(key)), "token")
			jwtLike := looksLikeJWT(looseUnescape(key)) || looksLikeJWT(looseUnescape(value))
			if (secretName || jwtLike) && !redacted {
				t.Fatalf("pair %q of %q was logged as it came", pair, q)
			}
		}
	})
}

// FuzzDecodeObject holds the exact decoder of bodies and messages to
// encoding/json: it accepts exactly the JSON objects, hands over every
// member with its name as decoded (never case-folded) and its value
// unchanged, and refuses nothing else but a name given twice.
func FuzzDecodeObject(f *testing.F) {
	for _, s := range []string{
		`{"is_busy":true}`, `{"IS_BUSY":true,"is_busy":false}`, `{"a":1,"a":2}`, `{"a\u005fb":[1,{"c":null}]}`,
		`null`, `[{"a":1}]`, `{"a":1} {}`, `{"a":1}x`, ` { } `, `"s"`, `{"a":`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got := map[string]json.RawMessage{}
		var order []string
		err := decodeObject(data, func(name string, value json.RawMessage) error {
			if _, dup := got[name]; dup {
				return errors.New("twice")
			}
			got[name] = value
			order = append(order, name)
			return nil
		})
		var want map[string]json.RawMessage
		wantErr := json.Unmarshal(data, &want)
		isObject := wantErr == nil && want != nil
		switch {
		case err == nil && !isObject:
			t.Fatalf("%q accepted; encoding/json: %v", data, wantErr)
		case err != nil && err.Error() == "twice":
			return // refused at the second name, before any later syntax error
		case err != nil && isObject:
			t.Fatalf("the object %q refused: %v", data, err)
		case err != nil:
			checkDetail(t, err.Error())
			return
		}
		if len(got) != len(want) {
			t.Fatalf("%q: members %v, encoding/json reads %d", data, order, len(want))
		}
		for name, v := range want {
			if g, ok := got[name]; !ok || !bytes.Equal(bytes.TrimSpace(g), bytes.TrimSpace(v)) {
				t.Fatalf("%q: member %q is %s, encoding/json reads %s", data, name, g, v)
			}
		}
	})
}

// withoutRepeats keeps each id at its first place, as a map that
// remembers what it has seen would.
func TestRepeatedIDsKeepTheirFirstPlace(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		ids := make([]int64, rng.IntN(120))
		for i := range ids {
			ids[i] = 1 + rng.Int64N(int64(1+len(ids)/2+rng.IntN(200)))
		}
		var want []int64
		seen := map[int64]bool{}
		for _, id := range ids {
			if !seen[id] {
				seen[id] = true
				want = append(want, id)
			}
		}
		in := slices.Clone(ids)
		if got := withoutRepeats(ids); !slices.Equal(got, want) && (len(got) != 0 || len(want) != 0) {
			t.Fatalf("withoutRepeats(%v) = %v, want %v", in, got, want)
		}
	}
}
