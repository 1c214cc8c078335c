package loadgen

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// IdleParams shapes the idle scenario: sockets that connect and then only
// answer the server's pings, which is what most of a presence server's
// connections do most of the time.
type IdleParams struct {
	// Sockets is how many sockets to open and hold. Required.
	Sockets int
	// Steps are socket counts at which the server's memory is sampled on
	// the way up; Sockets is always sampled last.
	Steps []int
	// Settle is how long to wait after each step before sampling, so that
	// the server has finished the last handshakes. Default 2s.
	Settle time.Duration
	// Hold is how long all sockets stay open after the last sample before
	// each is asked to prove it is still served. Zero holds no longer.
	Hold time.Duration
}

// IdleResult is the outcome of the idle scenario.
type IdleResult struct {
	Header
	Sockets   int   `json:"sockets"`
	Connected int64 `json:"connected"`
	// ConnectSeconds is the time spent connecting; the pauses to sample
	// memory are left out.
	ConnectSeconds float64 `json:"connect_seconds"`
	ConnectsPerSec float64 `json:"connects_per_s"`
	// ConnectLatency is the time of each dial: TCP, handshake and the
	// server's token check.
	ConnectLatency Latency `json:"connect_latency"`
	// BaseRSS is the server's resident memory before the first socket.
	BaseRSS int64         `json:"server_rss_base_bytes,omitempty"`
	Points  []MemoryPoint `json:"points,omitempty"`
	// Alive counts the sockets that answered a ping after the hold.
	Alive int64 `json:"alive"`
	// CPU is spent on connecting, per connection.
	CPU CPU `json:"cpu"`
}

// MemoryPoint is the server's memory with a number of sockets open.
type MemoryPoint struct {
	Sockets int   `json:"sockets"`
	RSS     int64 `json:"rss_bytes"`
	// PerSocket is RSS divided by the sockets; PerSocketOverBase leaves
	// out the memory the server had before the first socket.
	PerSocket         float64 `json:"bytes_per_socket"`
	PerSocketOverBase float64 `json:"bytes_per_socket_over_base"`
}

// Idle opens p.Sockets sockets, samples the server's memory on the way up,
// holds them, checks each still answers, and closes them.
func Idle(ctx context.Context, cfg Config, p IdleParams) (IdleResult, error) {
	res := IdleResult{Header: newHeader("idle"), Sockets: p.Sockets}
	if err := cfg.setDefaults(); err != nil {
		return res, err
	}
	if p.Sockets <= 0 {
		return res, fmt.Errorf("idle: sockets must be positive, not %d", p.Sockets)
	}
	if p.Settle <= 0 {
		p.Settle = 2 * time.Second
	}
	steps := append(slices.DeleteFunc(slices.Clone(p.Steps), func(s int) bool { return s <= 0 || s >= p.Sockets }), p.Sockets)
	slices.Sort(steps)
	steps = slices.Compact(steps)

	d := newDialer(&cfg)
	tokens, err := d.tokens(cfg.UserBase, p.Sockets)
	if err != nil {
		return res, err
	}
	if cfg.ServerPID != 0 {
		if res.BaseRSS, err = RSS(cfg.ServerPID); err != nil {
			return res, err
		}
	}

	start := time.Now()
	var errs errorCounts
	var hist Histogram
	conns := make([]*client, p.Sockets)
	var pongs, connected, ended atomic.Int64
	var closing atomic.Bool
	var readers sync.WaitGroup
	defer func() {
		closing.Store(true)
		closeAll(conns)
		readers.Wait()
	}()

	var connecting time.Duration
	from := 0
	d.start = time.Now()
	for _, step := range steps {
		cfg.progress("idle: connecting sockets %d..%d", from, step)
		t0, cpu0 := time.Now(), startCPU(cfg.ServerPID)
		forEach(ctx, step-from, cfg.Concurrency, func(k int) {
			i := from + k
			t := time.Now()
			c, err := d.dial(ctx, i, tokens[i])
			if err != nil {
				errs.add("dial_" + kindOf(err))
				return
			}
			hist.Record(time.Since(t))
			conns[i] = c
			connected.Add(1)
			readers.Go(func() {
				err := readFrames(c.ws, func(frame []byte) {
					fi := cfg.proto.read(frame, func(int64, int64) {})
					if fi.pong {
						pongs.Add(1)
					}
					if fi.ping {
						if err := c.write(cfg.proto.pong(), cfg.WaitTimeout); err != nil {
							errs.add("pong_" + kindOf(err))
						}
					}
				})
				if !closing.Load() {
					errs.add(kindOf(err))
				}
				ended.Add(1)
			})
		})
		connecting += time.Since(t0)
		c := cpu0.stop(0)
		res.CPU.ServerSeconds += c.ServerSeconds
		res.CPU.ToolSeconds += c.ToolSeconds
		from = step
		if err := sleep(ctx, p.Settle); err != nil {
			break
		}
		if cfg.ServerPID != 0 {
			rss, err := RSS(cfg.ServerPID)
			if err != nil {
				return res, err
			}
			n := int(connected.Load())
			pt := MemoryPoint{Sockets: n, RSS: rss}
			if n > 0 {
				pt.PerSocket = float64(rss) / float64(n)
				pt.PerSocketOverBase = float64(rss-res.BaseRSS) / float64(n)
			}
			res.Points = append(res.Points, pt)
			cfg.progress("idle: %d sockets, server RSS %d MiB, %.0f bytes/socket", n, rss>>20, pt.PerSocket)
		}
	}
	res.Connected = connected.Load()
	res.ConnectSeconds = round3(connecting.Seconds())
	if connecting > 0 {
		res.ConnectsPerSec = float64(int64(float64(res.Connected) / connecting.Seconds()))
	}
	res.ConnectLatency = hist.Summary(cfg.Buckets)
	if res.Connected > 0 {
		res.CPU.ServerPerUS = round3(res.CPU.ServerSeconds * 1e6 / float64(res.Connected))
		res.CPU.ToolPerUS = round3(res.CPU.ToolSeconds * 1e6 / float64(res.Connected))
	}

	if err := sleep(ctx, p.Hold); err == nil {
		cfg.progress("idle: checking every socket answers")
		ping := cfg.proto.ping()
		forEach(ctx, len(conns), cfg.Concurrency, func(i int) {
			if c := conns[i]; c != nil {
				if err := c.write(ping, cfg.WaitTimeout); err != nil {
					errs.add("ping_" + kindOf(err))
				}
			}
		})
		// A socket the server closed will never answer.
		waitFor(ctx, cfg.WaitTimeout, func() bool { return pongs.Load()+ended.Load() >= res.Connected })
	}
	res.Alive = pongs.Load()
	res.finish(start, &errs)
	return res, ctx.Err()
}

// sleep waits for d or until ctx ends. It measures: the server is given
// time to settle before a sample, which no event announces.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waitFor polls cond until it holds, ctx ends or timeout passes, and
// reports whether it held.
func waitFor(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return false
		}
	}
	return true
}
