package webhook

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/presenced/presenced/hub"
)

// Observer is told what the sender does, for metrics. target is the URL
// without its query and credentials. Methods must return at once.
type Observer interface {
	// WebhookSent: events reached the receiver (a 2xx answer).
	WebhookSent(target string, events int)
	// WebhookRetried: a request failed in a way that may pass later (a
	// 5xx, a 429, a timeout, a refused connection) and will be tried
	// again.
	WebhookRetried(target string)
	// WebhookFailed: the receiver refused events for good (another 4xx);
	// they are given up.
	WebhookFailed(target string, events int)
	// WebhookDropped: events were dropped unsent because more than
	// Config.MaxQueue waited.
	WebhookDropped(target string, events int)
}

// Config tunes a Sender. The zero value of each field means the default
// given beside it.
type Config struct {
	// URLs receive every event, each in order and independently of the
	// others. Required.
	URLs []string
	// Signer signs each request. Required.
	Signer *Signer
	// Outbox holds the events. Required.
	Outbox hub.Outbox
	// EncodePresence writes an event's data: the user as the REST API
	// shows them. Required.
	EncodePresence func(hub.Presence) []byte
	// Client sends the requests. Default: an http.Client whose requests
	// time out after 10s.
	Client *http.Client
	// MaxBatch is the most events one request carries. Default 100.
	MaxBatch int
	// MaxQueue bounds the events waiting per URL; beyond it the oldest
	// are dropped (and counted). Default 10000.
	MaxQueue int
	// MinBackoff and MaxBackoff bound the wait before a retry, which
	// doubles from the first to the second, with jitter. Defaults 1s and
	// 1m.
	MinBackoff, MaxBackoff time.Duration
	// Poll is how often the outbox is looked at when nothing says an
	// event was added (another node may have added one). Default 250ms.
	Poll time.Duration
	// UserAgent is sent with each request. Default "presenced".
	UserAgent string
	// Observer is told of each outcome. Default: nobody.
	Observer Observer
	// Logger receives the sender's logs. Default slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns the values that the zero fields stand for, but
// Client, Observer and Logger; presenced's flags and README show them.
func DefaultConfig() Config {
	return Config{MaxBatch: 100, MaxQueue: 10000, MinBackoff: time.Second, MaxBackoff: time.Minute, Poll: 250 * time.Millisecond, UserAgent: "presenced"}
}

func (c *Config) setDefaults() {
	if c.Client == nil {
		c.Client = &http.Client{Timeout: 10 * time.Second}
	}
	d := DefaultConfig()
	if c.MaxBatch == 0 {
		c.MaxBatch = d.MaxBatch
	}
	if c.MaxQueue == 0 {
		c.MaxQueue = d.MaxQueue
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = d.MinBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = d.MaxBackoff
	}
	if c.Poll == 0 {
		c.Poll = d.Poll
	}
	if c.UserAgent == "" {
		c.UserAgent = d.UserAgent
	}
	if c.Observer == nil {
		c.Observer = nopObserver{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

type nopObserver struct{}

func (nopObserver) WebhookSent(string, int)    {}
func (nopObserver) WebhookRetried(string)      {}
func (nopObserver) WebhookFailed(string, int)  {}
func (nopObserver) WebhookDropped(string, int) {}

// Sender delivers the outbox's events to each URL: several waiting
// events in one request, a JSON array in which each event has its own
// id; at least once, retried with backoff and jitter on 5xx, 429 and
// timeouts; in order for each URL.
type Sender struct {
	cfg Config
}

// NewSender checks cfg and returns a Sender.
func NewSender(cfg Config) (*Sender, error) {
	cfg.setDefaults()
	if len(cfg.URLs) == 0 || cfg.Signer == nil || cfg.Outbox == nil || cfg.EncodePresence == nil {
		return nil, errors.New("webhook: URLs, Signer, Outbox and EncodePresence are required")
	}
	for _, u := range cfg.URLs {
		if err := checkURL(u); err != nil {
			return nil, err
		}
	}
	return &Sender{cfg: cfg}, nil
}

// checkURL accepts http and https URLs with a host.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("webhook URL %q: want an http or https URL such as https://api.example.com/presence-events", raw)
	}
	return nil
}

// Name is how a target shows in logs and metrics: the URL without its
// query and credentials, which may hold secrets.
func Name(target string) string {
	u, err := url.Parse(target)
	if err != nil {
		return "invalid"
	}
	return u.Scheme + "://" + u.Host + u.Path
}

// Run sends until ctx is done, one goroutine per URL, and returns once
// they have all stopped.
func (s *Sender) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, target := range s.cfg.URLs {
		wg.Go(func() { s.serve(ctx, target) })
	}
	wg.Wait()
}

// serve claims target and sends its events, claiming again after any
// failure of the outbox, until ctx is done.
func (s *Sender) serve(ctx context.Context, target string) {
	log := s.cfg.Logger.With("webhook", Name(target))
	for ctx.Err() == nil {
		claim, err := s.cfg.Outbox.Claim(ctx, target)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("webhook outbox unavailable", "err", err)
				sleep(ctx, s.cfg.MinBackoff)
			}
			continue
		}
		err = s.send(ctx, target, claim, log)
		claim.Release()
		if err != nil && ctx.Err() == nil {
			log.Warn("webhook outbox failed; claiming again", "err", err)
			sleep(ctx, s.cfg.MinBackoff)
		}
	}
}

// send delivers target's events under claim until ctx is done or the
// outbox fails.
func (s *Sender) send(ctx context.Context, target string, claim hub.OutboxClaim, log *slog.Logger) error {
	name := Name(target)
	attempt := 0
	trimmed := time.Time{}
	poll := time.NewTimer(0)
	defer poll.Stop()
	for {
		if time.Since(trimmed) > time.Second {
			dropped, err := claim.Trim(ctx, s.cfg.MaxQueue)
			if err != nil {
				return err
			}
			if dropped > 0 {
				s.cfg.Observer.WebhookDropped(name, dropped)
				log.Warn("webhook events dropped: too many waited for the receiver", "events", dropped, "max", s.cfg.MaxQueue)
			}
			trimmed = time.Now()
		}
		events, err := claim.Pending(ctx, s.cfg.MaxBatch)
		if err != nil {
			return err
		}
		if len(events) == 0 {
			poll.Reset(s.cfg.Poll)
			select {
			case <-ctx.Done():
				return nil
			case <-claim.Added():
			case <-poll.C:
			}
			continue
		}
		wait, err := s.post(ctx, target, events)
		switch {
		case err == nil:
			attempt = 0
			s.cfg.Observer.WebhookSent(name, len(events))
		case errors.Is(err, errRefused):
			attempt = 0
			s.cfg.Observer.WebhookFailed(name, len(events))
			log.Error("webhook receiver refused events; they are given up", "events", len(events), "err", err)
		default:
			if ctx.Err() != nil {
				return nil
			}
			s.cfg.Observer.WebhookRetried(name)
			if wait == 0 {
				wait = backoff(attempt, s.cfg.MinBackoff, s.cfg.MaxBackoff)
			}
			attempt++
			log.Warn("webhook delivery failed; retrying", "events", len(events), "in", wait, "err", err)
			if !sleep(ctx, wait) {
				return nil
			}
			continue
		}
		if err := claim.Delivered(ctx, events); err != nil {
			return err
		}
	}
}

// errRefused marks an answer that retrying will not change.
var errRefused = errors.New("refused")

// post sends one request. A failure worth retrying comes with the wait
// the receiver asked for (Retry-After on a 429), or zero.
func (s *Sender) post(ctx context.Context, target string, events []hub.Event) (time.Duration, error) {
	body := s.appendEvents(nil, events)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errRefused, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", s.cfg.UserAgent)
	s.cfg.Signer.Sign(req.Header, messageID(events), time.Now(), body)
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		return 0, err // a timeout, a refused or reset connection
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return 0, nil
	case resp.StatusCode == http.StatusTooManyRequests:
		return min(retryAfter(resp.Header.Get("Retry-After")), s.cfg.MaxBackoff), fmt.Errorf("receiver answered %s", resp.Status)
	case resp.StatusCode >= 500:
		return 0, fmt.Errorf("receiver answered %s", resp.Status)
	}
	return 0, fmt.Errorf("%w: receiver answered %s", errRefused, resp.Status)
}

// messageID names a request: the same events, the same id, so that a
// receiver that deduplicates requests by webhook-id sees a retry as one;
// each event inside has its own id too.
func messageID(events []hub.Event) string {
	h := sha256.New()
	for _, e := range events {
		h.Write([]byte(e.ID))
		h.Write([]byte{0})
	}
	return "msg_" + hex.EncodeToString(h.Sum(nil)[:16])
}

func retryAfter(v string) time.Duration {
	if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(0, time.Until(at))
	}
	return 0
}

// backoff is the wait before retry number attempt (0 for the first):
// doubling from lo up to hi, and between half and all of that, so that
// nodes and URLs do not retry in step.
func backoff(attempt int, lo, hi time.Duration) time.Duration {
	d := lo << min(attempt, 20)
	if d > hi || d <= 0 {
		d = hi
	}
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// sleep waits d or until ctx is done; false means ctx is done.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// appendEvents writes the body of a request: a JSON array of events,
// each {"id", "type", "timestamp", "data"} as Standard Webhooks suggests,
// data being the user as others see them.
func (s *Sender) appendEvents(b []byte, events []hub.Event) []byte {
	b = append(b, '[')
	for i, e := range events {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":"`...)
		b = append(b, e.ID...) // evt_ and hex: nothing to escape
		b = append(b, `","type":"`...)
		b = append(b, e.Type...)
		b = append(b, `","timestamp":"`...)
		b = e.At.UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, `","data":`...)
		b = append(b, s.cfg.EncodePresence(e.Presence)...)
		b = append(b, '}')
	}
	return append(b, ']')
}
