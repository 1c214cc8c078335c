package transport

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/presenced/presenced/hub"
)

// MaxWaitTime is the largest wait_time accepted, in minutes (one week).
const MaxWaitTime = 7 * 24 * 60

// statusJSON is the seed API's UserStatus.
type statusJSON struct {
	UserID    int64      `json:"user_id"`
	IsOnline  bool       `json:"is_online"`
	IsBusy    bool       `json:"is_busy"`
	WaitTime  *int       `json:"wait_time"`
	LastSeen  *time.Time `json:"last_seen"`
	CreatedAt *time.Time `json:"created_at"`
	UpdatedAt *time.Time `json:"updated_at"`
	// BusySince is when is_busy turned true; null while not busy. Not in
	// the seed API; added after its fields.
	BusySince *time.Time `json:"busy_since"`
	// LastSeenVisible says whether others may read last_seen; not in the
	// seed API either.
	LastSeenVisible bool `json:"last_seen_visible"`
}

// presenceJSON is the seed API's UserPresence.
type presenceJSON struct {
	UserID    int64      `json:"user_id"`
	Username  string     `json:"username"`
	IsOnline  bool       `json:"is_online"`
	IsBusy    bool       `json:"is_busy"`
	WaitTime  *int       `json:"wait_time"`
	LastSeen  *time.Time `json:"last_seen"`
	BusySince *time.Time `json:"busy_since"` // as in statusJSON
}

// wireTime gives the seed's time format: RFC 3339 in UTC, whole seconds;
// nil (JSON null) for a time never set.
func wireTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC().Truncate(time.Second)
	return &t
}

func toStatusJSON(s hub.Status) statusJSON {
	return statusJSON{
		UserID: s.UserID, IsOnline: s.Online, IsBusy: s.Busy, WaitTime: s.WaitTime,
		LastSeen: wireTime(s.LastSeen), CreatedAt: wireTime(s.CreatedAt), UpdatedAt: wireTime(s.UpdatedAt),
		BusySince: wireTime(s.BusySince), LastSeenVisible: !s.HideLastSeen,
	}
}

func toPresenceJSON(p hub.Presence) presenceJSON {
	return presenceJSON{
		UserID: p.UserID, Username: p.Username, IsOnline: p.Online, IsBusy: p.Busy,
		WaitTime: p.WaitTime, LastSeen: wireTime(p.LastSeen), BusySince: wireTime(p.BusySince),
	}
}

func toPresencesJSON(ps []hub.Presence) []presenceJSON {
	out := make([]presenceJSON, len(ps))
	for i, p := range ps {
		out[i] = toPresenceJSON(p)
	}
	return out
}

// EncodeEvent encodes a presence event as the WebSocket message
// {"type":"presence", ...UserPresence}. The hub calls it once per change
// and shares the bytes among all watchers, so it is written by hand
// rather than through reflection.
func EncodeEvent(p hub.Presence) []byte {
	b := make([]byte, 0, 160+len(p.Username))
	b = append(b, `{"type":"presence",`...)
	b = appendPresenceFields(b, p)
	return append(b, '}')
}

// EncodePresence encodes p as a UserPresence object, as the webhooks'
// events carry it in their data.
func EncodePresence(p hub.Presence) []byte {
	b := make([]byte, 0, 160+len(p.Username))
	b = append(b, '{')
	b = appendPresenceFields(b, p)
	return append(b, '}')
}

// appendPresences appends ps as a JSON array of UserPresence objects, the
// same bytes encoding/json writes for toPresencesJSON(ps) at a fraction of
// the cost: a batch read of 100 users spent half its time in reflection.
func appendPresences(b []byte, ps []hub.Presence) []byte {
	b = append(b, '[')
	for i, p := range ps {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		b = appendPresenceFields(b, p)
		b = append(b, '}')
	}
	return append(b, ']')
}

// encodeSubscribed encodes the answer to a subscribe,
// {"type":"subscribed","id":...,"presences":[...]}, id left out when the
// client sent none. The hub goroutine calls it with the snapshot, while
// every other request waits, so it is written by hand, as REST's batch
// answer is: the same bytes encoding/json writes for the struct it
// replaces (encode_test.go holds it to them), at a fraction of the cost.
func encodeSubscribed(id json.RawMessage, ps []hub.Presence) []byte {
	b := make([]byte, 0, 48+len(id)+len(ps)*(160+16))
	b = append(b, `{"type":"subscribed",`...)
	if len(id) > 0 {
		b = append(b, `"id":`...)
		b = appendRaw(b, id)
		b = append(b, ',')
	}
	b = append(b, `"presences":`...)
	b = appendPresences(b, ps)
	return append(b, '}')
}

// appendRaw appends the client's id as encoding/json writes a
// json.RawMessage: as it came when it is plain (a number, or a string of
// printable ASCII without HTML's special characters, which is what ids
// are), else through encoding/json, which compacts it and escapes <, >,
// &, U+2028 and U+2029.
func appendRaw(b []byte, raw json.RawMessage) []byte {
	for _, c := range raw {
		if c < 0x20 || c >= 0x7f || c == '<' || c == '>' || c == '&' {
			q, err := json.Marshal(raw)
			if err != nil {
				panic(fmt.Sprintf("transport: encode id %q: %v", raw, err)) // the reader checked it
			}
			return append(b, q...)
		}
	}
	return append(b, raw...)
}

// appendPresenceFields appends the fields of a UserPresence, without
// braces, in the order of presenceJSON.
func appendPresenceFields(b []byte, p hub.Presence) []byte {
	b = append(b, `"user_id":`...)
	b = strconv.AppendInt(b, p.UserID, 10)
	b = append(b, `,"username":`...)
	b = appendString(b, p.Username)
	b = append(b, `,"is_online":`...)
	b = strconv.AppendBool(b, p.Online)
	b = append(b, `,"is_busy":`...)
	b = strconv.AppendBool(b, p.Busy)
	b = append(b, `,"wait_time":`...)
	if p.WaitTime == nil {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendInt(b, int64(*p.WaitTime), 10)
	}
	b = append(b, `,"last_seen":`...)
	b = appendTime(b, p.LastSeen)
	b = append(b, `,"busy_since":`...)
	return appendTime(b, p.BusySince)
}

// appendTime appends t as wireTime gives it: null, or a quoted RFC 3339
// time in UTC, whole seconds.
func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = t.UTC().Truncate(time.Second).AppendFormat(b, time.RFC3339)
	return append(b, '"')
}

// appendString appends s as a JSON string; names are almost always plain
// ASCII, which needs no escaping.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// statusFields holds the status fields of a request body, each left raw so
// that "absent", "null" and "wrong type" can be told apart.
type statusFields struct {
	IsOnline json.RawMessage `json:"is_online"`
	IsBusy   json.RawMessage `json:"is_busy"`
	WaitTime json.RawMessage `json:"wait_time"`
	// LastSeenVisible is not in the seed API: false hides last_seen from
	// others.
	LastSeenVisible json.RawMessage `json:"last_seen_visible"`
}

// set fills the status field called name with value; it reports whether
// name is one of them. Names match exactly: encoding/json's struct
// decoding would take IS_BUSY for is_busy.
func (f *statusFields) set(name string, value json.RawMessage) (bool, error) {
	var dst *json.RawMessage
	switch name {
	case "is_online":
		dst = &f.IsOnline
	case "is_busy":
		dst = &f.IsBusy
	case "wait_time":
		dst = &f.WaitTime
	case "last_seen_visible":
		dst = &f.LastSeenVisible
	default:
		return false, nil
	}
	return true, setOnce(dst, name, value)
}

// setOnce keeps the first value of a member and refuses a second one: two
// values under one name (RFC 8259 says names SHOULD be unique) are read
// differently by different parsers, so the request means nothing sure.
func setOnce(dst *json.RawMessage, name string, value json.RawMessage) error {
	if *dst != nil {
		return fmt.Errorf("%s is given twice", truncate(name, 32))
	}
	*dst = value
	return nil
}

// errNotObject is the answer to JSON that is not an object.
var errNotObject = errors.New("must be a JSON object")

// decodeObject reads data, which must be exactly one JSON object, and
// hands each member to set with its name as written (escapes decoded,
// case kept), so that each caller matches the names it knows exactly.
// Values stay raw for the caller to check. Its errors are errNotObject,
// or a syntax error that says where the JSON breaks.
func decodeObject(data []byte, set func(name string, value json.RawMessage) error) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // a number is never converted, so a huge one costs and says nothing
	tok, err := dec.Token()
	if err != nil {
		return syntaxError(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		if ok && d == '[' {
			// Read no further: the value may be nested thousands deep.
			return errNotObject
		}
		if _, err := dec.Token(); err != io.EOF {
			return syntaxError(err)
		}
		return errNotObject
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return syntaxError(err)
		}
		name, _ := tok.(string) // Token gives only strings in key position
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return syntaxError(err)
		}
		if err := set(name, value); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return syntaxError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("not valid JSON: something follows the object")
	}
	return nil
}

func syntaxError(err error) error {
	if err == nil {
		err = errors.New("something follows the value")
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("not valid JSON: unexpected end of JSON input")
	}
	return fmt.Errorf("not valid JSON: %s", truncate(err.Error(), 120))
}

// seedError is an error whose text the seed API (see the package doc)
// fixes, capital letter and all. The handlers write an error's text as
// the detail of the seed API's error body, {"detail": "..."}
// (writeError); apps in the field compare a seedError's, so it must stay
// as the seed API has it and is never wrapped, where the texts of other
// errors are presenced's own.
type seedError string

func (e seedError) Error() string { return string(e) }

// errNoFields is the seed API's answer to an update that changes nothing.
const errNoFields = seedError("No status fields to update")

// update turns the raw fields into a hub.StatusUpdate, or says what is
// wrong with them.
func (f statusFields) update() (hub.StatusUpdate, error) {
	var up hub.StatusUpdate
	var err error
	if up.Online, err = parseBool("is_online", f.IsOnline); err != nil {
		return up, err
	}
	if up.Busy, err = parseBool("is_busy", f.IsBusy); err != nil {
		return up, err
	}
	if f.WaitTime != nil {
		up.WaitTimeSet = true
		if up.WaitTime, err = parseWaitTime(f.WaitTime); err != nil {
			return up, err
		}
	}
	if up.LastSeenVisible, err = parseBool("last_seen_visible", f.LastSeenVisible); err != nil {
		return up, err
	}
	if up.Empty() {
		return up, errNoFields
	}
	return up, nil
}

func parseBool(name string, raw json.RawMessage) (*bool, error) {
	if raw == nil {
		return nil, nil
	}
	switch string(raw) {
	case "true":
		v := true
		return &v, nil
	case "false":
		v := false
		return &v, nil
	}
	return nil, fmt.Errorf("%s must be true or false, not %s", name, describe(raw))
}

func parseWaitTime(raw json.RawMessage) (*int, error) {
	if string(raw) == "null" {
		return nil, nil
	}
	var f float64
	if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) || json.Unmarshal(raw, &f) != nil {
		return nil, fmt.Errorf("wait_time must be a whole number of minutes or null, not %s", describe(raw))
	}
	switch {
	case f < 0:
		return nil, fmt.Errorf("wait_time must not be negative, got %s", clip(raw))
	case f != math.Trunc(f):
		return nil, fmt.Errorf("wait_time must be a whole number of minutes, got %s", clip(raw))
	case f > MaxWaitTime:
		return nil, fmt.Errorf("wait_time must be at most %d minutes, got %s", MaxWaitTime, clip(raw))
	}
	v := int(f)
	return &v, nil
}

// describe names the JSON type of raw for error messages.
func describe(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 'n':
		return "null"
	case 't', 'f':
		return "a boolean"
	}
	return "the number " + clip(raw)
}

// clip shortens a client's value for an error detail, so that a huge
// input is not echoed back at length.
func clip(raw []byte) string {
	if len(raw) > 32 {
		return string(raw[:32]) + "…"
	}
	return string(raw)
}

// MaxUserID is the largest user id accepted anywhere, 2^53 − 1: the
// largest integer a JavaScript number holds exactly, so that every id
// the server takes is one a browser client can send and compare.
const MaxUserID = 1<<53 - 1

// parseUserID reads one user id in its one canonical spelling: decimal
// digits with no sign and no leading zero, from 1 to MaxUserID. Any other
// spelling of a number ("+5", "007", "5.0", "5e0") is refused rather than
// read, so that no two strings name one user.
func parseUserID(s string) (int64, error) {
	// The one spelling, read in place: this runs for each of the up to
	// 100 ids of every batch read.
	if len(s) > 0 && len(s) <= 16 && s[0] >= '1' && s[0] <= '9' {
		var id int64
		canonical := true
		for i := 0; i < len(s) && canonical; i++ {
			canonical = s[i] >= '0' && s[i] <= '9'
			id = id*10 + int64(s[i]-'0')
		}
		if canonical {
			if id > MaxUserID {
				return 0, fmt.Errorf("user id %q is too large: ids are at most %d (2^53 − 1)", quote(s), MaxUserID)
			}
			return id, nil
		}
	}
	return 0, badUserID(s)
}

// badUserID says what is wrong with s, which is not a user id in the
// one spelling.
func badUserID(s string) error {
	quoted := quote(s)
	allDigits := strings.Trim(s, "0123456789") == ""
	switch bare := strings.Trim(strings.TrimLeft(s, "+ \t0"), " \t"); {
	case allDigits && len(s) > 16 && s[0] != '0':
		return fmt.Errorf("user id %q is too large: ids are at most %d (2^53 − 1)", quoted, MaxUserID)
	case bare != "" && bare[0] != '0' && strings.Trim(bare, "0123456789") == "":
		return fmt.Errorf("user id %q must be written in canonical decimal: digits only, no sign, no leading zero, no spaces", quoted)
	}
	// 5.0 and 5e0 name a whole number, but not in the one spelling.
	if f, err := strconv.ParseFloat(s, 64); err == nil && f >= 1 && f == math.Trunc(f) {
		if f > MaxUserID {
			return fmt.Errorf("user id %q is too large: ids are at most %d (2^53 − 1)", quoted, MaxUserID)
		}
		return fmt.Errorf("user id %q must be written in canonical decimal: digits only, no fraction, no exponent", quoted)
	}
	return fmt.Errorf("user id %q is not a positive integer", quoted)
}

// quote is s cut to 32 bytes and made valid UTF-8, for an error.
func quote(s string) string {
	if len(s) > 32 {
		s = s[:32] + "…"
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "?")
	}
	return s
}

// checkUsername refuses a name that must not be stored or shown: longer
// than max characters (one huge name makes every answer that carries it
// huge), or holding a control character (a NUL cannot be stored in
// PostgreSQL at all, and others break logs and displays).
func checkUsername(name string, max int) error {
	if !utf8.ValidString(name) {
		return errors.New("username is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(name); n > max {
		return fmt.Errorf("username is %d characters; at most %d are allowed", n, max)
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return fmt.Errorf("username must not contain control characters; it has U+%04X", r)
		}
	}
	return nil
}

// ParseUserIDList reads the comma-separated ids of a user_ids query
// parameter: at most max of them, each a user id as parseUserID reads
// it, with nothing around it. Duplicates are dropped and the first order
// is kept.
func ParseUserIDList(list string, max int) ([]int64, error) {
	if list == "" {
		return nil, errors.New("user_ids must list at least one user id")
	}
	if strings.Count(list, ",")+1 > max {
		return nil, errTooManyIDs
	}
	ids := make([]int64, 0, strings.Count(list, ",")+1)
	for rest, more := list, true; more; {
		var p string
		p, rest, more = strings.Cut(rest, ",")
		if p == "" {
			return nil, errors.New("user_ids has an empty entry: use a comma-separated list such as 1,2,3")
		}
		id, err := parseUserID(p)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return withoutRepeats(ids), nil
}

// errTooManyIDs is the seed API's answer to an oversized id list.
const errTooManyIDs = seedError("Too many user IDs requested")

// parseIDArray reads a JSON array of positive integer user ids.
func parseIDArray(raw json.RawMessage, max int) ([]int64, error) {
	if raw == nil {
		return nil, errors.New("user_ids is required: a JSON array of user ids")
	}
	var nums []json.RawMessage
	if err := json.Unmarshal(raw, &nums); err != nil {
		return nil, fmt.Errorf("user_ids must be an array of user ids, not %s", describe(raw))
	}
	if len(nums) == 0 {
		return nil, errors.New("user_ids must list at least one user id")
	}
	if len(nums) > max {
		return nil, fmt.Errorf("user_ids lists %d ids; at most %d are allowed in one message", len(nums), max)
	}
	return dedupe(len(nums), func(i int) (int64, error) { return parseIDElement(nums[i]) })
}

// parseIDElement reads one element of a JSON array of user ids: a number
// in the one spelling parseUserID reads.
func parseIDElement(n json.RawMessage) (int64, error) {
	if len(n) == 0 || n[0] < '0' || n[0] > '9' {
		if len(n) > 0 && n[0] == '-' {
			return 0, fmt.Errorf("user id %s is not a positive integer", clip(n))
		}
		return 0, fmt.Errorf("user ids must be numbers, not %s", describe(n))
	}
	return parseUserID(string(n))
}

func dedupe(n int, at func(int) (int64, error)) ([]int64, error) {
	ids := make([]int64, 0, n)
	for i := 0; i < n; i++ {
		id, err := at(i)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return withoutRepeats(ids), nil
}

// withoutRepeats drops from ids, in place, every id seen earlier in it,
// keeping the order. A sorted copy finds repeats without the map that
// was a tenth of a batch read's CPU, and a list without any, the usual
// one, is left as it is.
func withoutRepeats(ids []int64) []int64 {
	if len(ids) < 2 {
		return ids
	}
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	repeats := false
	for i := 1; i < len(sorted) && !repeats; i++ {
		repeats = sorted[i] == sorted[i-1]
	}
	if !repeats {
		return ids
	}
	taken := make([]bool, len(sorted))
	out := ids[:0]
	for _, id := range ids {
		i, _ := slices.BinarySearch(sorted, id) // its first place
		if !taken[i] {
			taken[i] = true
			out = append(out, id)
		}
	}
	return out
}
