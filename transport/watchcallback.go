package transport

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/presenced/presenced/transport/webhook"
)

// CallbackConfig configures a CallbackPolicy. URL and Signer are
// required; the zero value of every other field means the default given
// beside it.
type CallbackConfig struct {
	// URL is the app backend's endpoint that answers who may watch whom:
	// http or https, absolute.
	URL string
	// Signer signs every request as webhooks are signed (Standard
	// Webhooks headers), so that the backend can tell presenced from
	// anyone else who finds the URL.
	Signer *webhook.Signer
	// TTL is how long the answer for one (watcher, user) pair is used
	// before the backend is asked again, allowed or not; a socket's
	// subscription whose answer expires is checked again then, so a
	// withdrawn permission ends within TTL. Default 60s.
	TTL time.Duration
	// Timeout bounds one request, from the dial to the answer's last
	// byte. Default 2s.
	Timeout time.Duration
	// Client makes the requests. Default: a client that follows no
	// redirect (a redirect is a bad answer).
	Client *http.Client
	// MaxEntries bounds the answers kept. When it is reached the expired
	// ones are dropped, and if that is not enough, others at random
	// until a tenth of the room is free. Default 100,000.
	MaxEntries int
	// Logger receives the backend's failures. Default slog.Default().
	Logger *slog.Logger
}

// DefaultCallbackConfig returns the values that the zero fields stand
// for, which presenced's flags and README show.
func DefaultCallbackConfig() CallbackConfig {
	return CallbackConfig{TTL: 60 * time.Second, Timeout: 2 * time.Second, MaxEntries: 100_000}
}

// CallbackPolicy asks the app's backend whom a user may read: a signed
// POST of {"watcher_id":1,"user_ids":[2,3]} to the configured URL, whose
// answer {"allowed":[2]} lists the ids the watcher may read (any other id
// asked is refused; ids not asked are ignored). Answers are kept per
// (watcher, user) pair for the TTL. When the backend cannot answer (it
// cannot be reached, does not answer within the timeout, answers other
// than 2xx, or with another body) Allowed returns an error, and the
// server refuses rather than allowing. It is safe for concurrent use.
type CallbackPolicy struct {
	cfg CallbackConfig

	mu    sync.Mutex
	cache map[watchPair]watchAnswer
	// failures counts the requests that failed since the last that
	// succeeded: the first failure is logged as a warning, the others at
	// debug level, and the recovery says how many there were.
	failures int
}

type watchPair struct{ watcher, user int64 }

type watchAnswer struct {
	allowed bool
	until   time.Time
}

// NewCallbackPolicy returns a CallbackPolicy for cfg.
func NewCallbackPolicy(cfg CallbackConfig) (*CallbackPolicy, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("the watch authorization URL %q is not an absolute http or https URL", truncate(cfg.URL, 64))
	}
	if cfg.Signer == nil {
		return nil, errors.New("the watch authorization callback needs a signer: requests to it are signed like webhooks")
	}
	d := DefaultCallbackConfig()
	if cfg.TTL <= 0 {
		cfg.TTL = d.TTL
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = d.Timeout
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = d.MaxEntries
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &CallbackPolicy{cfg: cfg, cache: make(map[watchPair]watchAnswer)}, nil
}

// Allowed answers from the kept answers where they are fresh, and asks
// the backend, in one request, about the other ids.
func (p *CallbackPolicy) Allowed(ctx context.Context, watcher Identity, ids []int64) ([]int64, time.Time, error) {
	now := time.Now()
	var until time.Time
	verdict := make(map[int64]bool, len(ids))
	var ask []int64
	p.mu.Lock()
	for _, id := range ids {
		if a, ok := p.cache[watchPair{watcher.UserID, id}]; ok && now.Before(a.until) {
			verdict[id] = a.allowed
			until = earliest(until, a.until)
			continue
		}
		ask = append(ask, id)
	}
	p.mu.Unlock()
	if len(ask) > 0 {
		// The answer counts from the moment it was asked for: it may have
		// been true only then.
		exp := now.Add(p.cfg.TTL)
		allowed, err := p.ask(ctx, watcher.UserID, ask)
		if err != nil {
			return nil, time.Time{}, err
		}
		p.mu.Lock()
		p.makeRoom(len(ask), now)
		for _, id := range ask {
			_, ok := allowed[id]
			verdict[id] = ok
			p.cache[watchPair{watcher.UserID, id}] = watchAnswer{allowed: ok, until: exp}
		}
		p.mu.Unlock()
		until = earliest(until, exp)
	}
	out := make([]int64, 0, len(ids))
	for _, id := range ids {
		if verdict[id] {
			out = append(out, id)
		}
	}
	return out, until, nil
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

// makeRoom keeps the cache under MaxEntries once n more are added.
// Called with p.mu held.
func (p *CallbackPolicy) makeRoom(n int, now time.Time) {
	if len(p.cache)+n <= p.cfg.MaxEntries {
		return
	}
	for k, a := range p.cache {
		if !now.Before(a.until) {
			delete(p.cache, k)
		}
	}
	for k := range p.cache { // map order is random enough to spread the loss
		if len(p.cache)+n <= p.cfg.MaxEntries*9/10 {
			break
		}
		delete(p.cache, k)
	}
}

// maxAnswerBytes bounds the backend's answer: a thousand ids are 17 KB.
const maxAnswerBytes = 1 << 20

// watchRequest is the body presenced POSTs to the backend.
type watchRequest struct {
	WatcherID int64   `json:"watcher_id"`
	UserIDs   []int64 `json:"user_ids"`
}

// ask POSTs one signed request and returns the ids the backend allows.
func (p *CallbackPolicy) ask(ctx context.Context, watcher int64, ids []int64) (map[int64]struct{}, error) {
	body, _ := json.Marshal(watchRequest{WatcherID: watcher, UserIDs: ids}) // ints only: cannot fail
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return nil, p.failed(err, "the request could not be made")
	}
	req.Header.Set("Content-Type", "application/json")
	p.cfg.Signer.Sign(req.Header, "authz_"+rand.Text(), time.Now(), body)
	resp, err := p.cfg.Client.Do(req)
	if err != nil {
		return nil, p.failed(err, p.reason(ctx, err, "could not be reached"))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes+1))
	switch {
	case err != nil:
		return nil, p.failed(err, p.reason(ctx, err, "broke off its answer"))
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return nil, p.failed(fmt.Errorf("status %s: %s", resp.Status, clip(data)), fmt.Sprintf("the app's backend answered %d", resp.StatusCode))
	case len(data) > maxAnswerBytes:
		return nil, p.failed(errors.New("answer too long"), fmt.Sprintf("the app's backend answered with more than %d bytes", maxAnswerBytes))
	}
	allowed, err := parseWatchAnswer(data)
	if err != nil {
		return nil, p.failed(err, `the app's backend did not answer {"allowed":[user ids]}: `+err.Error())
	}
	p.mu.Lock()
	if p.failures > 0 {
		p.cfg.Logger.Info("watch authorization: the backend answers again", "failed_requests", p.failures)
		p.failures = 0
	}
	p.mu.Unlock()
	return allowed, nil
}

// reason says why a request failed, without the URL that err carries.
func (p *CallbackPolicy) reason(ctx context.Context, err error, otherwise string) string {
	var netErr net.Error
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()) {
		return fmt.Sprintf("the app's backend did not answer within %s", p.cfg.Timeout)
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return "the request was cancelled"
	}
	return "the app's backend " + otherwise
}

// failed logs a failure in full and returns the reason the caller may
// read.
func (p *CallbackPolicy) failed(err error, reason string) error {
	p.mu.Lock()
	p.failures++
	first := p.failures == 1
	p.mu.Unlock()
	level := slog.LevelDebug
	if first {
		level = slog.LevelWarn
	}
	p.cfg.Logger.Log(context.Background(), level, "watch authorization failed: refusing until the backend answers", "reason", reason, "err", err)
	return errors.New(reason)
}

// parseWatchAnswer reads {"allowed":[ids]}, exactly as bodies are read.
func parseWatchAnswer(data []byte) (map[int64]struct{}, error) {
	var raw json.RawMessage
	err := decodeObject(data, func(name string, value json.RawMessage) error {
		if name == "allowed" {
			return setOnce(&raw, name, value)
		}
		return nil
	})
	switch {
	case errors.Is(err, errNotObject):
		return nil, errors.New("the answer is not a JSON object")
	case err != nil:
		return nil, err
	case raw == nil:
		return nil, errors.New("allowed is missing")
	}
	var elems []json.RawMessage
	if raw[0] != '[' || json.Unmarshal(raw, &elems) != nil {
		return nil, fmt.Errorf("allowed must be an array of user ids, not %s", describe(raw))
	}
	out := make(map[int64]struct{}, len(elems))
	for _, e := range elems {
		id, err := parseIDElement(e)
		if err != nil {
			return nil, fmt.Errorf("allowed: %v", err)
		}
		out[id] = struct{}{}
	}
	return out, nil
}
