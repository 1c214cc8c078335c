package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// RESTParams shapes the rest scenario: heartbeats from many users, then
// batch presence reads, then the same reads against a bare handler.
type RESTParams struct {
	// IDs is how many user ids each batch presence request asks for.
	// Default 100, the server's default limit.
	IDs int
	// Users is how many users' tokens the requests rotate through, so that
	// no one user's rate stands for everyone's. Default 1,000.
	Users int
	// Concurrency is how many requests are in flight. Default 32.
	Concurrency int
	// Duration is the length of each phase. Default 5s.
	Duration time.Duration
	// Rounds is how many times the batch reads alternate with the same
	// reads against the bare handler, so that a change in the machine's
	// load weighs on both alike. Default 3.
	Rounds int
	// Requests bounds each phase. Default 10,000,000.
	Requests int
	// Baseline, when not nil, starts a bare net/http handler that answers
	// every request with body, and returns its address and a function that
	// stops it. The batch reads are then repeated against it.
	Baseline func(body []byte) (addr string, stop func(), err error)
}

// RESTResult is the outcome of the rest scenario.
type RESTResult struct {
	Header
	IDs         int        `json:"ids"`
	Users       int        `json:"users"`
	Concurrency int        `json:"concurrency"`
	BodyBytes   int        `json:"body_bytes"`
	Heartbeat   Throughput `json:"heartbeat"`
	Presence    Throughput `json:"presence"`
	// Bare is the same batch read against a bare net/http handler that
	// writes the same body; PresenceVsBare is Presence over Bare.
	Bare           *Throughput `json:"bare,omitempty"`
	PresenceVsBare float64     `json:"presence_vs_bare,omitempty"`
}

// Throughput is the outcome of one phase of requests.
type Throughput struct {
	Requests int64   `json:"requests"`
	Failed   int64   `json:"failed"`
	PerSec   float64 `json:"per_s"`
	Latency  Latency `json:"latency"`
}

// BareHandler answers every request with body as JSON: the cheapest
// handler net/http allows, the yardstick for the REST API.
func BareHandler(body []byte) http.Handler {
	length := strconv.Itoa(len(body))
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", length)
		_, _ = w.Write(body)
	})
}

// REST measures heartbeats and batch presence reads.
func REST(ctx context.Context, cfg Config, p RESTParams) (res RESTResult, err error) {
	res = RESTResult{Header: newHeader("rest")}
	if err := cfg.setDefaults(); err != nil {
		return res, err
	}
	if p.IDs <= 0 {
		p.IDs = 100
	}
	if p.Users <= 0 {
		p.Users = 1000
	}
	p.Users = max(p.Users, p.IDs)
	if p.Concurrency <= 0 {
		p.Concurrency = 32
	}
	if p.Duration <= 0 {
		p.Duration = 5 * time.Second
	}
	if p.Requests <= 0 {
		p.Requests = 10_000_000
	}
	if p.Rounds <= 0 {
		p.Rounds = 3
	}
	res.IDs, res.Users, res.Concurrency = p.IDs, p.Users, p.Concurrency
	began := time.Now()
	var errs errorCounts
	defer func() { res.finish(began, &errs) }() // res is named: this reaches the caller

	d := newDialer(&cfg)
	tokens, err := d.tokens(cfg.UserBase, p.Users)
	if err != nil {
		return res, err
	}
	var source atomic.Uint32
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			ip := net.IPv4(127, 0, 0, byte(2+int(source.Add(1))%cfg.Sources))
			nd := net.Dialer{Timeout: cfg.WaitTimeout, LocalAddr: &net.TCPAddr{IP: ip}}
			return nd.DialContext(ctx, network, addr)
		},
		MaxIdleConnsPerHost: p.Concurrency,
		MaxConnsPerHost:     p.Concurrency,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: cfg.WaitTimeout}
	base := "http://" + cfg.Addrs[0]

	// Every user in the batch must be known, or the answer is short.
	for i := range p.IDs {
		if err := do(ctx, client, http.MethodPost, base+"/users/me/heartbeat", tokens[i], nil); err != nil {
			return res, fmt.Errorf("rest: first heartbeat: %w", err)
		}
	}
	cfg.progress("rest: heartbeats")
	var heartbeats meter
	heartbeats.run(ctx, p, &errs, func(n int) error {
		return do(ctx, client, http.MethodPost, base+"/users/me/heartbeat", tokens[n%p.Users], nil)
	})
	res.Heartbeat = heartbeats.result()

	ids := make([]string, p.IDs)
	for i := range ids {
		ids[i] = strconv.FormatInt(cfg.UserBase+int64(i), 10)
	}
	path := "/users/presence?user_ids=" + strings.Join(ids, ",")
	var body []byte
	if err := do(ctx, client, http.MethodGet, base+path, tokens[0], &body); err != nil {
		return res, fmt.Errorf("rest: first batch read: %w", err)
	}
	res.BodyBytes = len(body)
	bareBase := ""
	if p.Baseline != nil {
		addr, stop, err := p.Baseline(body)
		if err != nil {
			return res, fmt.Errorf("rest: baseline: %w", err)
		}
		defer stop()
		if err := checkLoopback(addr); err != nil {
			return res, err
		}
		bareBase = "http://" + addr
	}
	var reads, bare meter
	for round := range p.Rounds {
		cfg.progress("rest: round %d: batch presence of %d ids, %d bytes", round+1, p.IDs, len(body))
		reads.run(ctx, p, &errs, func(n int) error {
			return do(ctx, client, http.MethodGet, base+path, tokens[n%p.Users], nil)
		})
		if bareBase != "" {
			cfg.progress("rest: round %d: the same reads from a bare handler at %s", round+1, bareBase)
			bare.run(ctx, p, &errs, func(n int) error {
				return do(ctx, client, http.MethodGet, bareBase+path, tokens[n%p.Users], nil)
			})
		}
	}
	res.Presence = reads.result()
	if bareBase != "" {
		b := bare.result()
		res.Bare = &b
		if b.PerSec > 0 {
			res.PresenceVsBare = round3(res.Presence.PerSec / b.PerSec)
		}
	}
	return res, ctx.Err()
}

// meter adds up the requests of one kind over one or more phases.
type meter struct {
	hist    Histogram
	failed  atomic.Int64
	elapsed time.Duration
}

func (m *meter) result() Throughput {
	l := m.hist.Summary(false)
	t := Throughput{Requests: int64(l.Count), Failed: m.failed.Load(), Latency: l}
	if m.elapsed > 0 {
		t.PerSec = float64(int64(float64(l.Count) / m.elapsed.Seconds()))
	}
	return t
}

// run calls request(n) from p.Concurrency workers until p.Duration or
// p.Requests is reached.
func (m *meter) run(ctx context.Context, p RESTParams, errs *errorCounts, request func(n int) error) {
	ctx, cancel := context.WithTimeout(ctx, p.Duration)
	defer cancel()
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range p.Concurrency {
		wg.Go(func() {
			for ctx.Err() == nil {
				n := next.Add(1)
				if n > int64(p.Requests) {
					return
				}
				t := time.Now()
				if err := request(int(n)); err != nil {
					if ctx.Err() == nil {
						m.failed.Add(1)
						errs.add(err.Error())
					}
					continue
				}
				m.hist.Record(time.Since(t))
			}
		})
	}
	wg.Wait()
	m.elapsed += time.Since(start)
}

// do sends one request and checks for 200; body, when not nil, receives
// the answer.
func do(ctx context.Context, c *http.Client, method, url, token string, body *[]byte) error {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return err
		}
		return errors.New("http_" + kindOf(err))
	}
	defer resp.Body.Close()
	if body != nil {
		*body, err = io.ReadAll(resp.Body)
	} else {
		_, err = io.Copy(io.Discard, resp.Body)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status_%d", resp.StatusCode)
	}
	if err != nil {
		return errors.New("read_" + kindOf(err))
	}
	return nil
}
