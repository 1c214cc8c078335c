package transport_test

import (
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/presenced/presenced/auth"
	"github.com/presenced/presenced/transport"
)

var wireTime = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)

func keys(m map[string]any) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ",")
}

// checkUserStatus checks a UserStatus field for field against the seed API.
func checkUserStatus(t *testing.T, m map[string]any, user int64) {
	t.Helper()
	if got, want := keys(m), "busy_since,created_at,is_busy,is_online,last_seen,last_seen_visible,updated_at,user_id,wait_time"; got != want {
		t.Fatalf("UserStatus fields %s, want %s", got, want)
	}
	if m["user_id"] != float64(user) {
		t.Fatalf("user_id %v, want %d", m["user_id"], user)
	}
	for _, f := range []string{"created_at", "updated_at", "last_seen"} {
		if s, _ := m[f].(string); !wireTime.MatchString(s) {
			t.Fatalf("%s = %v, want RFC 3339 UTC", f, m[f])
		}
	}
}

func TestStatusEndpointsOnBothPathFamilies(t *testing.T) {
	for _, family := range []struct{ status, heartbeat string }{
		{"/both/status/me", "/both/status/heartbeat"},
		{"/users/me/status", "/users/me/heartbeat"},
	} {
		t.Run(family.status, func(t *testing.T) {
			e := newEnv(t, options{})
			tok := e.token(42, "zoe")

			r := e.do("GET", family.status, tok, "")
			if r.status != 404 || r.detail(t) != "User status not found" {
				t.Fatalf("GET before any sign of life: %d %s", r.status, r.body)
			}

			r = e.do("PUT", family.status, tok, `{"is_busy":true,"wait_time":15}`)
			if r.status != 200 {
				t.Fatalf("PUT: %d %s", r.status, r.body)
			}
			m := r.object(t)
			checkUserStatus(t, m, 42)
			if m["is_busy"] != true || m["wait_time"] != float64(15) || m["is_online"] != true || !wireTime.MatchString(m["busy_since"].(string)) {
				t.Fatalf("PUT answered %s", r.body)
			}

			r = e.do("PATCH", family.status, tok, `{"is_busy":false}`)
			if m := r.object(t); r.status != 200 || m["is_busy"] != false || m["wait_time"] != nil || m["busy_since"] != nil {
				t.Fatalf("PATCH is_busy=false: %d %s; wait_time must clear", r.status, r.body)
			}

			r = e.do("GET", family.status, tok, "")
			if r.status != 200 {
				t.Fatalf("GET: %d %s", r.status, r.body)
			}
			checkUserStatus(t, r.object(t), 42)

			r = e.do("POST", family.heartbeat, tok, "")
			if r.status != 200 || string(r.body) != `{"message":"Heartbeat received"}` {
				t.Fatalf("heartbeat: %d %s", r.status, r.body)
			}
		})
	}
}

func TestHeartbeatCreatesAndKeepsOnline(t *testing.T) {
	e := newEnv(t, options{})
	tok := e.token(7, "ann")
	if r := e.do("POST", "/users/me/heartbeat", tok, ""); r.status != 200 {
		t.Fatalf("heartbeat: %d %s", r.status, r.body)
	}
	r := e.do("GET", "/both/status/me", tok, "")
	if m := r.object(t); r.status != 200 || m["is_online"] != true {
		t.Fatalf("after a heartbeat: %d %s", r.status, r.body)
	}
}

func TestUpdateRejectsBadBodies(t *testing.T) {
	e := newEnv(t, options{})
	tok := e.token(1, "a")
	for _, tc := range []struct{ body, status, detail string }{
		{`{}`, "400", "No status fields to update"},
		{``, "400", "No status fields to update"},
		{`{"username":"x"}`, "400", "No status fields to update"},
		{`{`, "400", "Request body is not valid JSON"},
		{`not json`, "400", "Request body is not valid JSON"},
		{`[1,2]`, "400", "Request body must be a JSON object"},
		{`"busy"`, "400", "Request body must be a JSON object"},
		{`{"is_busy":"yes"}`, "400", "is_busy must be true or false, not a string"},
		{`{"is_online":null}`, "400", "is_online must be true or false, not null"},
		{`{"is_online":1}`, "400", "is_online must be true or false, not the number 1"},
		{`{"wait_time":-1}`, "400", "wait_time must not be negative"},
		{`{"wait_time":1.5}`, "400", "wait_time must be a whole number of minutes"},
		{`{"wait_time":"5"}`, "400", "wait_time must be a whole number of minutes or null, not a string"},
		{`{"wait_time":1e400}`, "400", "wait_time must be a whole number of minutes or null"},
		{`{"wait_time":99999}`, "400", "wait_time must be at most 10080 minutes"},
		{`{"is_busy":true,"wait_time":` + strings.Repeat("1", 70000) + `}`, "413", "Request body is larger than"},
	} {
		r := e.do("PUT", "/users/me/status", tok, tc.body)
		if fmt.Sprint(r.status) != tc.status || !strings.HasPrefix(r.detail(t), tc.detail) {
			t.Errorf("PUT %.40q: %d %s, want %s %q…", tc.body, r.status, r.body, tc.status, tc.detail)
		}
	}
	// Nothing above was stored.
	if r := e.do("GET", "/users/me/status", tok, ""); r.status != 404 {
		t.Fatalf("a rejected update created a status: %d %s", r.status, r.body)
	}
	// A good request still works.
	if r := e.do("PUT", "/users/me/status", tok, `{"is_busy":true,"wait_time":5.0}`); r.status != 200 {
		t.Fatalf("good update after bad ones: %d %s", r.status, r.body)
	}
}

func TestUserPresence(t *testing.T) {
	e := newEnv(t, options{})
	tok := e.token(1, "asker")
	if r := e.do("PUT", "/users/me/status", e.token(5, "eve"), `{"is_busy":true,"wait_time":3}`); r.status != 200 {
		t.Fatal(r.status)
	}
	r := e.do("GET", "/users/5/presence", tok, "")
	m := r.object(t)
	if r.status != 200 || keys(m) != "busy_since,is_busy,is_online,last_seen,user_id,username,wait_time" {
		t.Fatalf("presence: %d %s", r.status, r.body)
	}
	if m["username"] != "eve" || m["is_busy"] != true || m["wait_time"] != float64(3) || !wireTime.MatchString(m["last_seen"].(string)) {
		t.Fatalf("presence of eve: %s", r.body)
	}
	if r := e.do("GET", "/users/6/presence", tok, ""); r.status != 404 || r.detail(t) != "User status not found" {
		t.Fatalf("unknown user: %d %s", r.status, r.body)
	}
	for bad, detail := range map[string]string{
		"abc": "is not a positive integer", "0": "is not a positive integer", "-1": "is not a positive integer", "1.5": "is not a positive integer",
		"99999999999999999999": "is too large: ids are at most 9007199254740991 (2^53 − 1)",
		"9007199254740992":     "is too large: ids are at most 9007199254740991 (2^53 − 1)",
		"+5":                   "must be written in canonical decimal: digits only, no sign, no leading zero",
		"007":                  "must be written in canonical decimal",
		"%205":                 "must be written in canonical decimal",
	} {
		r := e.do("GET", "/users/"+bad+"/presence", tok, "")
		if r.status != 400 || !strings.Contains(r.detail(t), detail) {
			t.Errorf("GET /users/%s/presence: %d %s, want 400 saying %q", bad, r.status, r.body, detail)
		}
	}
}

func TestBatchPresence(t *testing.T) {
	e := newEnv(t, options{})
	tok := e.token(1, "asker")
	for _, id := range []int64{3, 9, 4} {
		if r := e.do("POST", "/users/me/heartbeat", e.token(id, fmt.Sprint("u", id)), ""); r.status != 200 {
			t.Fatal(r.status)
		}
	}
	r := e.do("GET", "/users/presence?user_ids=9,2,3,9,4", tok, "")
	list, ok := r.json(t).([]any)
	if r.status != 200 || !ok {
		t.Fatalf("batch: %d %s", r.status, r.body)
	}
	var ids []float64
	for _, p := range list {
		ids = append(ids, p.(map[string]any)["user_id"].(float64))
	}
	if fmt.Sprint(ids) != "[9 3 4]" {
		t.Fatalf("ids %v, want the known ones in the order asked, once each: [9 3 4]", ids)
	}
	if r := e.do("GET", "/users/presence?user_ids=3&user_ids=4", tok, ""); len(r.json(t).([]any)) != 2 {
		t.Fatalf("repeated parameter: %s", r.body)
	}
	if r := e.do("GET", "/users/presence?user_ids=5", tok, ""); r.status != 200 || string(r.body) != "[]" {
		t.Fatalf("only unknown ids: %d %s, want []", r.status, r.body)
	}

	ids101 := make([]string, 101)
	for i := range ids101 {
		ids101[i] = fmt.Sprint(i + 1)
	}
	for _, tc := range []struct{ query, detail string }{
		{"user_ids=" + strings.Join(ids101, ","), "Too many user IDs requested"},
		{"user_ids=" + strings.Join(ids101[:100], ","), ""},
		{"user_ids=1,,2", "user_ids has an empty entry: use a comma-separated list such as 1,2,3"},
		{"user_ids=1,a", `user id "a" is not a positive integer`},
		{"user_ids=-3", `user id "-3" is not a positive integer`},
		{"user_ids=", "user_ids must list at least one user id"},
		{"", "Query parameter user_ids is required, e.g. ?user_ids=1,2,3"},
	} {
		r := e.do("GET", "/users/presence?"+tc.query, tok, "")
		if tc.detail == "" {
			if r.status != 200 {
				t.Errorf("%.30s…: %d %s", tc.query, r.status, r.body)
			}
			continue
		}
		if r.status != 400 || r.detail(t) != tc.detail {
			t.Errorf("%.30s: %d %s, want 400 %q", tc.query, r.status, r.body, tc.detail)
		}
	}
}

func TestBadTokensGet401(t *testing.T) {
	e := newEnv(t, options{})
	exp := time.Now().Add(time.Hour).Unix()
	good := e.token(1, "a")
	expired, _ := auth.NewIssuer([]byte(secret), -time.Minute).Issue(1, "a")
	cases := map[string]string{
		"missing":       "",
		"malformed":     "not.a.jwt",
		"expired":       expired,
		"forged":        signed(t, jwt.SigningMethodHS256, []byte("another-secret"), jwt.MapClaims{"sub": "1", "exp": exp}),
		"alg none":      signed(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwt.MapClaims{"sub": "1", "exp": exp}),
		"alg HS512":     signed(t, jwt.SigningMethodHS512, []byte(secret), jwt.MapClaims{"sub": "1", "exp": exp}),
		"no exp":        signed(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"sub": "1"}),
		"no user":       signed(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"exp": exp}),
		"sub not a num": signed(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"sub": "alice", "exp": exp}),
	}
	for name, tok := range cases {
		r := e.do("GET", "/users/me/status", tok, "")
		if r.status != 401 || r.detail(t) != "Invalid or expired token" || r.header.Get("WWW-Authenticate") != "Bearer" {
			t.Errorf("%s token: %d %s %v", name, r.status, r.body, r.header)
		}
	}
	// Wrong scheme, and a token in the query string instead of the header.
	req, _ := http.NewRequest("GET", e.srv.URL+"/users/me/status?access_token="+good, nil)
	req.Header.Set("Authorization", "Basic "+good)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("token outside the Bearer header: %d, want 401", resp.StatusCode)
	}
	// A numeric user_id claim is accepted in place of sub.
	tok := signed(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"user_id": 77, "exp": exp})
	if r := e.do("POST", "/users/me/heartbeat", tok, ""); r.status != 200 {
		t.Fatalf("user_id claim: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/users/me/status", tok, ""); r.status != 200 || r.object(t)["user_id"] != float64(77) {
		t.Fatalf("user_id claim: %d %s", r.status, r.body)
	}
}

func TestUnknownRoutesAndDevToken(t *testing.T) {
	e := newEnv(t, options{})
	if r := e.do("GET", "/nope", "", ""); r.status != 404 || r.detail(t) != "Not Found" {
		t.Fatalf("unknown route: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/dev/token", "", `{"user_id":1}`); r.status != 404 {
		t.Fatalf("POST /dev/token without dev mode: %d %s", r.status, r.body)
	}

	issuer := auth.NewIssuer([]byte(secret), time.Hour)
	dev := newEnv(t, options{transport: transport.Config{DevTokens: issuer}})
	r := dev.do("POST", "/dev/token", "", `{"user_id":3,"username":"carol"}`)
	m := r.object(t)
	if r.status != 200 || m["token_type"] != "bearer" {
		t.Fatalf("dev token: %d %s", r.status, r.body)
	}
	if r := dev.do("POST", "/users/me/heartbeat", m["access_token"].(string), ""); r.status != 200 {
		t.Fatalf("using the dev token: %d %s", r.status, r.body)
	}
	for body, detail := range map[string]string{
		`{}`:              "user_id is required",
		`{"user_id":"x"}`: `user id "\"x\"" is not a positive integer`,
		`{"user_id":0}`:   `user id "0" is not a positive integer`,
		`{"user_id":1,"username":"` + strings.Repeat("n", 65) + `"}`: "username is 65 characters; at most 64 are allowed",
	} {
		if r := dev.do("POST", "/dev/token", "", body); r.status != 400 || r.detail(t) != detail {
			t.Errorf("dev token %s: %d %s, want %q", body, r.status, r.body, detail)
		}
	}
}
