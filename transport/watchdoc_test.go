package transport

import (
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/presenced/presenced/internal/readme"
	"github.com/presenced/presenced/transport/webhook"
)

// codeBlocks returns the fenced blocks of a README section by language.
func codeBlocks(section string) map[string][]string {
	out := map[string][]string{}
	for rest := section; ; {
		_, after, ok := strings.Cut(rest, "```")
		if !ok {
			break
		}
		lang, after, _ := strings.Cut(after, "\n")
		body, after, _ := strings.Cut(after, "```")
		out[lang] = append(out[lang], body)
		rest = after
	}
	return out
}

// TestReadmeWatchExamplesAreWhatTheServerSendsAndReads holds the README's
// callback example to the code: the request body is the one the policy
// encodes, its signature is the Signer's with the example secret, and the
// answer and the watch claim shown are read as the README says.
func TestReadmeWatchExamplesAreWhatTheServerSendsAndReads(t *testing.T) {
	section := readme.Section(t, "### Who may watch whom")
	blocks := codeBlocks(section)
	if len(blocks["http"]) != 1 || len(blocks["json"]) != 2 {
		t.Fatalf("want one http and two json examples, got %d and %d", len(blocks["http"]), len(blocks["json"]))
	}

	var token map[string]json.RawMessage
	if err := json.Unmarshal([]byte(blocks["json"][0]), &token); err != nil {
		t.Fatalf("the token example: %v", err)
	}
	set, err := parseWatchClaim(token["watch"])
	if err != nil || len(set) != 3 {
		t.Fatalf("the watch claim example reads as %v, %v", set, err)
	}

	head, body, ok := strings.Cut(strings.TrimSpace(blocks["http"][0]), "\n\n")
	if !ok {
		t.Fatal("the request example has no body")
	}
	lines := strings.Split(head, "\n")
	if !strings.HasPrefix(lines[0], "POST ") {
		t.Fatalf("request line %q", lines[0])
	}
	header := map[string]string{}
	for _, l := range lines[1:] {
		k, v, _ := strings.Cut(l, ": ")
		header[k] = v
	}
	var req watchRequest
	if err := json.Unmarshal([]byte(body), &req); err != nil {
		t.Fatal(err)
	}
	if again, _ := json.Marshal(req); string(again) != body {
		t.Fatalf("the README's body %s is not what presenced sends for it: %s", body, again)
	}
	secret := regexp.MustCompile(`whsec_[A-Za-z0-9+/=]+`).FindString(section)
	signer, err := webhook.NewSigner(secret)
	if err != nil {
		t.Fatalf("the example secret %q: %v", secret, err)
	}
	ts, err := strconv.ParseInt(header[webhook.HeaderTimestamp], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if want := signer.Signature(header[webhook.HeaderID], time.Unix(ts, 0), []byte(body)); header[webhook.HeaderSignature] != want {
		t.Fatalf("the example's %s is %q; signed with the example secret it is %q", webhook.HeaderSignature, header[webhook.HeaderSignature], want)
	}
	if !strings.HasPrefix(header[webhook.HeaderID], "authz_") || header["Content-Type"] != "application/json" {
		t.Fatalf("example headers %v", header)
	}

	allowed, err := parseWatchAnswer([]byte(blocks["json"][1]))
	if err != nil || len(allowed) != 1 {
		t.Fatalf("the answer example reads as %v, %v", allowed, err)
	}
	if _, ok := allowed[req.UserIDs[0]]; !ok || !slices.Contains(req.UserIDs, 2) {
		t.Fatalf("the answer %v does not allow the first id asked, %v", allowed, req.UserIDs)
	}
}
