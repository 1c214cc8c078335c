package transport

import (
	"net/url"
	"strings"
	"testing"
)

func TestRedactedURIHidesEverySpellingOfATokenParameter(t *testing.T) {
	const jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
	for _, c := range []struct{ in, want string }{
		{"/ws", "/ws"},
		{"/ws?access_token=abc.def.ghi", "/ws?access_token=REDACTED"},
		{"/ws?a=1&access_token=abc&b=2", "/ws?a=1&access_token=REDACTED&b=2"},
		// ';' separates pairs for many servers and proxies.
		{"/ws?x=1;access_token=abc", "/ws?x=1;access_token=REDACTED"},
		{"/ws?access_token=abc;x=1", "/ws?access_token=REDACTED;x=1"},
		{"/ws?x=1;access_token=abc&token=def;y=2", "/ws?x=1;access_token=REDACTED&token=REDACTED;y=2"},
		{"/ws?;access_token=abc", "/ws?;access_token=REDACTED"},
		{"/ws?x=1;;access_token=abc", "/ws?x=1;;access_token=REDACTED"},
		// Case.
		{"/ws?ACCESS_TOKEN=abc", "/ws?access_token=REDACTED"},
		{"/ws?Access_Token=abc", "/ws?access_token=REDACTED"},
		{"/ws?aCcEsS_tOkEn=abc", "/ws?access_token=REDACTED"},
		{"/ws?TOKEN=abc", "/ws?token=REDACTED"},
		// Escapes, once and twice, in either case, of any byte.
		{"/ws?access%5Ftoken=abc", "/ws?access_token=REDACTED"},
		{"/ws?access%5ftoken=abc", "/ws?access_token=REDACTED"},
		{"/ws?%61ccess_token=abc", "/ws?access_token=REDACTED"},
		{"/ws?%61%63%63%65%73%73%5F%74%6F%6B%65%6E=abc", "/ws?access_token=REDACTED"},
		{"/ws?access%255Ftoken=abc", "/ws?access_token=REDACTED"},
		{"/ws?access%25255Ftoken=abc", "/ws?access_token=REDACTED"},
		{"/ws?%74oken=abc", "/ws?token=REDACTED"},
		// Spaces, separators, brackets, stray and invalid bytes around it.
		{"/ws?+access_token=abc", "/ws?access_token=REDACTED"},
		{"/ws?access_token+=abc", "/ws?access_token=REDACTED"},
		{"/ws?%20access_token%20=abc", "/ws?access_token=REDACTED"},
		{"/ws?access_token%00=abc", "/ws?access_token=REDACTED"},
		{"/ws?access_token%zz=abc", "/ws?access_token=REDACTED"},
		{"/ws?access_token[]=abc", "/ws?access_token=REDACTED"},
		{"/ws?access_token%5B0%5D=abc", "/ws?access_token=REDACTED"},
		{"/ws?access-token=abc", "/ws?access_token=REDACTED"},
		{"/ws?accessToken=abc", "/ws?access_token=REDACTED"},
		{"/ws?access.token=abc", "/ws?access_token=REDACTED"},
		{"/ws?access+token=abc", "/ws?access_token=REDACTED"},
		// Every value of a repeated name; a name without a value.
		{"/ws?access_token=abc&access_token=def", "/ws?access_token=REDACTED&access_token=REDACTED"},
		{"/ws?access_token", "/ws?access_token=REDACTED"},
		{"/ws?access_token=", "/ws?access_token=REDACTED"},
		{"/ws?access_token==abc", "/ws?access_token=REDACTED"},
		// Other credentials a client might send.
		{"/ws?refresh_token=abc", "/ws?refresh_token=REDACTED"},
		{"/ws?id_token=abc", "/ws?id_token=REDACTED"},
		{"/ws?auth_token=abc", "/ws?token=REDACTED"},
		{"/ws?authorization=Bearer%20abc", "/ws?authorization=REDACTED"},
		{"/ws?jwt=abc", "/ws?jwt=REDACTED"},
		// A JWT under any name, or as a bare pair, or inside a name.
		{"/ws?t=" + jwt, "/ws?REDACTED"},
		{"/ws?" + jwt, "/ws?REDACTED"},
		{"/ws?x=1&" + jwt + "=1", "/ws?x=1&REDACTED"},
		{"/ws?access_token%3D" + jwt, "/ws?REDACTED"},
		{"/ws?t=" + strings.ReplaceAll(jwt, ".", "%2E"), "/ws?REDACTED"},
		// Nothing else changes.
		{"/ws?%zz=1&access_token=abc", "/ws?%zz=1&access_token=REDACTED"},
		{"/users/presence?user_ids=1,2", "/users/presence?user_ids=1,2"},
		{"/users/presence?user_ids=1&user_ids=2;x", "/users/presence?user_ids=1&user_ids=2;x"},
		{"/a%20b?x=y", "/a%20b?x=y"},
		{"/ws?x=%2B%25&&=;=", "/ws?x=%2B%25&&=;="},
	} {
		u, err := url.ParseRequestURI(c.in)
		if err != nil {
			t.Fatalf("%s: %v", c.in, err)
		}
		if got := redactedURI(u); got != c.want {
			t.Errorf("redactedURI(%s) = %s, want %s", c.in, got, c.want)
		}
	}
}
