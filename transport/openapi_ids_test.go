package transport

import (
	"encoding/json"
	"regexp"
	"strconv"
	"testing"
)

// TestOpenAPISaysWhichIDsTheServerTakes holds the document's pattern for
// a path's user id to parseUserID: the same strings pass and fail, at
// every edge of the canonical spelling and of 2^53 − 1.
func TestOpenAPISaysWhichIDsTheServerTakes(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]struct {
			Parameters []struct {
				Name   string `json:"name"`
				Schema struct {
					Pattern string `json:"pattern"`
					Items   struct {
						Maximum int64 `json:"maximum"`
					} `json:"items"`
				} `json:"schema"`
			} `json:"parameters"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(openAPIDocument, &doc); err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(doc.Paths["/users/{user_id}/presence"]["get"].Parameters[0].Schema.Pattern)
	if max := doc.Paths["/users/presence"]["get"].Parameters[0].Schema.Items.Maximum; max != MaxUserID {
		t.Fatalf("user_ids items have maximum %d, want %d", max, MaxUserID)
	}
	cases := []string{"", "0", "1", "9", "10", "+5", "-5", "007", "05", " 5", "5 ", "5.0", "5e0", "1e3", "x", "me1",
		"999999999999999", "1000000000000000", "8999999999999999", "9000000000000000", "9006999999999999",
		"9007099999999999", "9007189999999999", "9007198999999999", "9007199199999999", "9007199249999999",
		"9007199253999999", "9007199254699999", "9007199254739999", "9007199254740899", "9007199254740989",
		"9007199254740990", "9007199254740991", "9007199254740992", "9007199254740999", "9007199254741000",
		"9099999999999999", "9999999999999999", "10000000000000000", "18446744073709551616"}
	for n := int64(1); n < MaxUserID; n = n*7 + 3 {
		cases = append(cases, strconv.FormatInt(n, 10), strconv.FormatInt(MaxUserID-n, 10))
	}
	// The service API's path takes the same ids, and no me: a service has
	// none, and /users/me/status is a route of its own.
	service := regexp.MustCompile(doc.Paths["/users/{user_id}/status"]["get"].Parameters[0].Schema.Pattern)
	for _, s := range cases {
		_, err := parseUserID(s)
		if matched := re.MatchString(s); matched != (err == nil) {
			t.Errorf("%q: the document's pattern says %v, the server %v", s, matched, err)
		}
		if matched := service.MatchString(s); matched != (err == nil) {
			t.Errorf("%q: the service route's pattern says %v, the server %v", s, matched, err)
		}
	}
	if !re.MatchString("me") {
		t.Error("the pattern refuses me")
	}
	if service.MatchString("me") {
		t.Error("the service route's pattern takes me")
	}
}
