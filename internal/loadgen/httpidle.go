package loadgen

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// HTTPIdleParams shapes the idle-HTTP scenario: connections that make one
// request and then wait, kept alive, which is what a flood of idle
// connections without any token looks like.
type HTTPIdleParams struct {
	// Conns is how many connections to open and hold. Required.
	Conns int
	// Wait bounds how long the connections are held for the server to
	// close them. Required: the server's -idle-timeout and a margin.
	Wait time.Duration
	// ProbeEvery is the time between two probes of /healthz and the REST
	// API on fresh connections. Default 1s.
	ProbeEvery time.Duration
}

// HTTPIdleResult is the outcome of the idle-HTTP scenario.
type HTTPIdleResult struct {
	Header
	Conns int `json:"conns"`
	// Opened counts the connections whose first request was answered.
	Opened      int64   `json:"opened"`
	OpenSeconds float64 `json:"open_seconds"`
	// ClosedByServer counts held connections the server closed within
	// Wait; ClosedAfter is how long after its answer each was closed.
	ClosedByServer int64   `json:"closed_by_server"`
	ClosedAfter    Latency `json:"closed_after"`
	// StillOpen counts connections the server had not closed at the end.
	StillOpen int64 `json:"still_open"`
	// Probes counts probe requests (healthz and REST each count one);
	// ProbeFailures those that failed or got an unexpected status.
	Probes        int64   `json:"probes"`
	ProbeFailures int64   `json:"probe_failures"`
	ProbeLatency  Latency `json:"probe_latency"`
	// BaseRSS and PeakRSS are the server's resident memory before the
	// first connection and the most sampled while they were held.
	BaseRSS int64 `json:"server_rss_base_bytes,omitempty"`
	PeakRSS int64 `json:"server_rss_peak_bytes,omitempty"`
}

// HTTPIdle opens p.Conns connections, each answered once and then left
// idle, probes the server with fresh requests all the while, and waits
// for the server to close the idle ones.
func HTTPIdle(ctx context.Context, cfg Config, p HTTPIdleParams) (HTTPIdleResult, error) {
	res := HTTPIdleResult{Header: newHeader("http-idle"), Conns: p.Conns}
	if err := cfg.setDefaults(); err != nil {
		return res, err
	}
	if p.Conns <= 0 || p.Wait <= 0 {
		return res, fmt.Errorf("http-idle: conns (%d) and wait (%v) must be positive", p.Conns, p.Wait)
	}
	if p.ProbeEvery <= 0 {
		p.ProbeEvery = time.Second
	}
	errs := &errorCounts{}
	start := time.Now()
	if cfg.ServerPID != 0 {
		res.BaseRSS, _ = RSS(cfg.ServerPID)
	}
	d := newDialer(&cfg)
	token, err := d.token(cfg.UserBase)
	if err != nil {
		return res, err
	}

	ctx, cancel := context.WithTimeout(ctx, p.Wait+cfg.WaitTimeout+time.Duration(p.Conns)*time.Millisecond)
	defer cancel()
	probeCtx, stopProbes := context.WithCancel(ctx)
	var probes sync.WaitGroup
	var probeHist Histogram
	probes.Go(func() {
		client := &http.Client{Timeout: cfg.WaitTimeout, Transport: &http.Transport{DisableKeepAlives: true}}
		defer client.CloseIdleConnections()
		tick := time.NewTicker(p.ProbeEvery)
		defer tick.Stop()
		for {
			select {
			case <-probeCtx.Done():
				return
			case <-tick.C:
			}
			// 404: the probing user never set a status.
			for path, want := range map[string]int{"/healthz": 200, "/users/me/status": 404} {
				res.Probes++
				t0 := time.Now()
				req, _ := http.NewRequestWithContext(probeCtx, "GET", "http://"+cfg.Addrs[0]+path, nil)
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := client.Do(req)
				if err != nil {
					if probeCtx.Err() == nil {
						res.ProbeFailures++
						errs.add("probe_" + kindOf(err))
					}
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != want {
					res.ProbeFailures++
					errs.add(fmt.Sprintf("probe_%d", resp.StatusCode))
					continue
				}
				probeHist.Record(time.Since(t0))
			}
			if cfg.ServerPID != 0 {
				if rss, err := RSS(cfg.ServerPID); err == nil && rss > res.PeakRSS {
					res.PeakRSS = rss
				}
			}
		}
	})

	var (
		closed, open atomic.Int64
		mu           sync.Mutex
		closedHist   Histogram
		held         sync.WaitGroup
		conns        = make([]net.Conn, p.Conns)
	)
	cfg.progress("http-idle: opening %d connections", p.Conns)
	forEach(ctx, p.Conns, cfg.Concurrency, func(i int) {
		c, err := d.dialTCP(ctx, i)
		if err != nil {
			errs.add("dial_" + kindOf(err))
			return
		}
		_ = c.SetDeadline(time.Now().Add(cfg.WaitTimeout))
		br := bufio.NewReader(c)
		_, err = fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", cfg.Addrs[0])
		var resp *http.Response
		if err == nil {
			resp, err = http.ReadResponse(br, nil)
		}
		if err != nil {
			// The server may close a new connection at once to keep to
			// its cap on idle ones: that is counted, not a failure.
			errs.add("first_request_" + kindOf(err))
			c.Close()
			return
		}
		resp.Body.Close()
		answered := time.Now()
		_ = c.SetDeadline(time.Time{})
		conns[i] = c
		open.Add(1)
		held.Go(func() {
			var b [1]byte
			if _, err := br.Read(b[:]); err != nil && ctx.Err() == nil {
				closed.Add(1)
				mu.Lock()
				closedHist.Record(time.Since(answered))
				mu.Unlock()
			}
		})
	})
	res.Opened = open.Load()
	res.OpenSeconds = round3(time.Since(start).Seconds())
	cfg.progress("http-idle: %d answered and held; waiting up to %v for the server to close them", res.Opened, p.Wait)
	waitFor(ctx, p.Wait, func() bool { return closed.Load() == res.Opened })
	res.ClosedByServer = closed.Load()
	res.StillOpen = res.Opened - res.ClosedByServer
	cancel()
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
	held.Wait()
	stopProbes()
	probes.Wait()
	res.ClosedAfter = closedHist.Summary(cfg.Buckets)
	res.ProbeLatency = probeHist.Summary(cfg.Buckets)
	res.finish(start, errs)
	return res, nil
}

// dialTCP opens a plain TCP connection for client i from its source
// address.
func (d *dialer) dialTCP(ctx context.Context, i int) (net.Conn, error) {
	nd := net.Dialer{Timeout: d.cfg.WaitTimeout, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%d.cfg.Sources))}}
	return nd.DialContext(ctx, "tcp", d.cfg.Addrs[i%len(d.cfg.Addrs)])
}
