package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The headers of a signed request, as the Standard Webhooks
// specification names them.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// secretPrefix starts a secret as Standard Webhooks writes it: whsec_
// and the base64 of the key.
const secretPrefix = "whsec_"

// minKeyBytes is the shortest key accepted: an HMAC-SHA256 key shorter
// than its 32-byte output is weaker than the MAC (RFC 2104, section 3).
const minKeyBytes = 24

// Signer signs requests with one or more secrets: while a secret is
// rotated, requests carry a signature for each, and a receiver that
// knows either accepts them.
type Signer struct {
	keys [][]byte
}

// NewSigner reads secrets written whsec_<base64>, as Standard Webhooks
// libraries take them.
func NewSigner(secrets ...string) (*Signer, error) {
	if len(secrets) == 0 {
		return nil, errors.New("a webhook secret is required, written whsec_ and the base64 of at least 24 random bytes")
	}
	s := &Signer{}
	for _, sec := range secrets {
		if !strings.HasPrefix(sec, secretPrefix) {
			return nil, errors.New("a webhook secret is written whsec_ and base64, e.g. whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef01234567")))
		}
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sec, secretPrefix))
		if err != nil {
			return nil, fmt.Errorf("a webhook secret is whsec_ and standard base64: %v", err)
		}
		if len(key) < minKeyBytes {
			return nil, fmt.Errorf("a webhook secret's key is %d bytes; use at least %d random bytes", len(key), minKeyBytes)
		}
		s.keys = append(s.keys, key)
	}
	return s, nil
}

// Signature returns the webhook-signature header for a message: v1, and
// the base64 HMAC-SHA256 of "id.timestamp.body", for each secret,
// separated by spaces.
func (s *Signer) Signature(id string, at time.Time, body []byte) string {
	content := make([]byte, 0, len(id)+len(body)+24)
	content = append(content, id...)
	content = append(content, '.')
	content = strconv.AppendInt(content, at.Unix(), 10)
	content = append(content, '.')
	content = append(content, body...)
	var b strings.Builder
	for i, key := range s.keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		mac := hmac.New(sha256.New, key)
		mac.Write(content)
		b.WriteString("v1,")
		b.WriteString(base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	return b.String()
}

// Sign sets the three headers of a signed request with body on h.
func (s *Signer) Sign(h http.Header, id string, at time.Time, body []byte) {
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(at.Unix(), 10))
	h.Set(HeaderSignature, s.Signature(id, at, body))
}
