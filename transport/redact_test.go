package transport

import (
	"net/url"
	"testing"
)

func TestRedactedURIHidesEverySpellingOfATokenParameter(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"/ws", "/ws"},
		{"/ws?access_token=abc.def.ghi", "/ws?access_token=REDACTED"},
		{"/ws?a=1&access_token=abc&b=2", "/ws?a=1&access_token=REDACTED&b=2"},
		{"/ws?ACCESS_TOKEN=abc", "/ws?access_token=REDACTED"},
		{"/ws?access%5Ftoken=abc", "/ws?access_token=REDACTED"},
		{"/ws?access_token=abc&access_token=def", "/ws?access_token=REDACTED&access_token=REDACTED"},
		{"/ws?token=abc", "/ws?token=REDACTED"},
		{"/ws?access_token", "/ws?access_token=REDACTED"},
		{"/ws?%zz=1&access_token=abc", "/ws?%zz=1&access_token=REDACTED"},
		{"/users/presence?user_ids=1,2", "/users/presence?user_ids=1,2"},
		{"/a%20b?x=y", "/a%20b?x=y"},
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
