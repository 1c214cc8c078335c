package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// maxChanges is the most changes one user makes in a run: each carries its
// sequence number as wait_time, which the server caps at a week of minutes.
const maxChanges = 7 * 24 * 60

// FanoutParams shapes the fanout scenario: many watchers of one user who
// changes status at a steady rate.
type FanoutParams struct {
	// Watchers is how many sockets watch the publishing users. Required.
	Watchers int
	// Rate is the changes per second of all publishers together. Required.
	Rate float64
	// Changes is how many changes the publishers make in all, at most
	// 10,080 each. Default: ten seconds' worth.
	Changes int
	// Publishers is how many users change status, taking turns at even
	// intervals; every watcher watches all of them. Default 1. Several
	// measure the delivery rate without presenced merging the changes
	// that queue on one socket (the latest wins).
	Publishers int
}

// MeshParams shapes the mesh scenario: users that each watch a few others
// and change status now and then, as in a contact list.
type MeshParams struct {
	// Users is how many users the mesh holds, in all processes. User i
	// watches users i+1 ... i+Watch (modulo Users). Required.
	Users int
	// First and Count select the users this process connects; Count zero
	// means all of them. Several processes each take a slice when one
	// process may not hold enough sockets.
	First, Count int
	// Watch is how many users each one watches. Required.
	Watch int
	// Period is the time between two changes of one user; users are
	// spread evenly over it. Required.
	Period time.Duration
	// Changes is how many changes each user makes, at most 10,080.
	// Default 12.
	Changes int
	// Ready, when not nil, is called once every socket of this process has
	// subscribed, and returns when the schedule starts (wall clock). The
	// processes of one mesh must all use the same start. Nil starts at once.
	Ready func() (time.Time, error)
}

// DeliveryResult is the outcome of a scenario that counts deliveries.
type DeliveryResult struct {
	Header
	// Clients is the sockets this process held; Watch the users each
	// watches; Rate the changes per second all users made together.
	Clients int     `json:"clients"`
	Watch   int     `json:"watch"`
	Rate    float64 `json:"rate"`
	// Sent counts the changes this process sent; Expected the deliveries
	// that all changes owe the watchers of this process; Delivered the
	// distinct ones that arrived.
	Sent      int64 `json:"sent"`
	Expected  int64 `json:"expected"`
	Delivered int64 `json:"delivered"`
	// Superseded counts changes a watcher never saw because a later
	// change of the same user reached it first: the server merges status
	// updates of one socket that wait for the store, the latest winning,
	// so a watcher may skip a state but never misses the last one. Lost
	// counts the deliveries neither made nor superseded.
	Superseded int64 `json:"superseded"`
	Lost       int64 `json:"lost"`
	Duplicates int64 `json:"duplicates"`
	// Frames counts the frames that carried events: fewer frames than
	// deliveries means the server packed events together.
	Frames int64 `json:"frames"`
	// OfferedPerSec is the deliveries per second the schedule asked for;
	// DeliveredPerSec what arrived, over the time from the start of the
	// schedule to the last delivery.
	OfferedPerSec   float64 `json:"offered_per_s"`
	DeliveredPerSec float64 `json:"delivered_per_s"`
	// SendLagMS is how late the tool sent its most delayed change. It is
	// part of the latency, which runs from the scheduled time; when it is
	// large, the tool or the server's reading limited the run.
	SendLagMS float64 `json:"send_lag_ms"`
	// Latency runs from each change's scheduled time to its arrival.
	Latency Latency `json:"latency"`
	// CPU is spent from the start of the schedule to the last delivery;
	// the per-unit figures are per delivery.
	CPU CPU `json:"cpu"`
}

// Fanout connects one publisher and p.Watchers watchers of it, has the
// publisher change status p.Changes times at p.Rate per second, and
// measures each delivery.
func Fanout(ctx context.Context, cfg Config, p FanoutParams) (DeliveryResult, error) {
	res := DeliveryResult{Header: newHeader("fanout")}
	if err := cfg.setDefaults(); err != nil {
		return res, err
	}
	if p.Watchers <= 0 || p.Rate <= 0 {
		return res, fmt.Errorf("fanout: watchers and rate must be positive, not %d and %g", p.Watchers, p.Rate)
	}
	pubs := max(1, p.Publishers)
	if p.Changes == 0 {
		p.Changes = max(pubs, int(10*p.Rate))
	}
	if p.Changes <= 0 || p.Changes%pubs != 0 || p.Changes/pubs > maxChanges {
		return res, fmt.Errorf("fanout: changes must be a multiple of the %d publishers, at most %d each, not %d", pubs, maxChanges, p.Changes)
	}
	// Users 0..pubs-1 publish; users pubs..pubs+Watchers-1 watch all of
	// them and nobody else.
	all := make([]int, pubs)
	for i := range all {
		all[i] = i
	}
	period := time.Duration(float64(time.Second) * float64(pubs) / p.Rate)
	m := &mesh{
		cfg: &cfg, users: p.Watchers + pubs, changes: p.Changes / pubs, period: period,
		watches: func(i int) []int {
			if i < pubs {
				return nil
			}
			return all
		},
		publishes: func(i int) bool { return i < pubs },
		phase:     func(i int) time.Duration { return time.Duration(i) * period / time.Duration(pubs) },
	}
	err := m.run(ctx, 0, p.Watchers+pubs, &res)
	res.Clients, res.Watch = p.Watchers, pubs
	return res, err
}

// Mesh runs users p.First ... p.First+p.Count-1 of a mesh of p.Users users
// that each watch p.Watch others and change status every p.Period.
func Mesh(ctx context.Context, cfg Config, p MeshParams) (DeliveryResult, error) {
	res := DeliveryResult{Header: newHeader("mesh")}
	if err := cfg.setDefaults(); err != nil {
		return res, err
	}
	if p.Count == 0 {
		p.Count = p.Users - p.First
	}
	switch {
	case p.Users <= 0 || p.Watch <= 0 || p.Period <= 0:
		return res, fmt.Errorf("mesh: users, watch and period must be positive, not %d, %d and %s", p.Users, p.Watch, p.Period)
	case p.Watch >= p.Users:
		return res, fmt.Errorf("mesh: each user can watch at most %d others, not %d", p.Users-1, p.Watch)
	case p.First < 0 || p.Count < 0 || p.First+p.Count > p.Users:
		return res, fmt.Errorf("mesh: users %d..%d are not within 0..%d", p.First, p.First+p.Count-1, p.Users-1)
	}
	if p.Changes == 0 {
		p.Changes = 12
	}
	if p.Changes < 0 || p.Changes > maxChanges {
		return res, fmt.Errorf("mesh: changes must be 1..%d, not %d", maxChanges, p.Changes)
	}
	m := &mesh{
		cfg: &cfg, users: p.Users, changes: p.Changes, period: p.Period, ready: p.Ready,
		watches: func(i int) []int {
			w := make([]int, p.Watch)
			for j := range w {
				w[j] = (i + 1 + j) % p.Users
			}
			return w
		},
		publishes: func(int) bool { return true },
		// Spread the users evenly over the period, in an order unrelated
		// to their ids, so that neighbours do not change together.
		phase: func(i int) time.Duration {
			return time.Duration((uint64(i) * 0x9E3779B97F4A7C15 >> 11) % uint64(p.Period))
		},
	}
	err := m.run(ctx, p.First, p.Count, &res)
	res.Watch = p.Watch
	return res, err
}

// mesh is the machinery shared by fanout and mesh: users that watch
// others, change on a schedule that every process can compute, and
// count what arrives. User i is Config.UserBase + i.
type mesh struct {
	cfg     *Config
	users   int // in all processes
	changes int // changes per publishing user
	period  time.Duration
	ready   func() (time.Time, error)

	watches   func(i int) []int // the users that user i watches
	publishes func(i int) bool  // whether user i changes status
	phase     func(i int) time.Duration

	// start is when the schedule begins; readers load it while run sets it.
	start atomic.Pointer[time.Time]

	errs   errorCounts
	hist   Histogram
	subs   atomic.Int64
	frames atomic.Int64
	deliv  atomic.Int64
	dups   atomic.Int64
	// superseded counts changes skipped for a later one (see
	// DeliveryResult.Superseded).
	superseded atomic.Int64
	lastAt     atomic.Int64 // wall clock ns of the latest delivery
	sendLag    atomic.Int64 // ns
	closing    atomic.Bool
}

// watcher is one socket's view: whom it watches and the latest change
// seen from each.
type watcher struct {
	user    int
	watched []int
	last    []int32
	// confirms counts down the subscriptions the server has still to
	// confirm; only the socket's reader touches it.
	confirms int
}

// scheduled is the time at which user i makes change seq (1-based).
func (m *mesh) scheduled(start time.Time, i int, seq int64) time.Time {
	return start.Add(m.phase(i) + time.Duration(seq-1)*m.period)
}

// run drives users [first, first+count) from this process.
func (m *mesh) run(ctx context.Context, first, count int, res *DeliveryResult) error {
	cfg := m.cfg
	began := time.Now()
	defer func() { res.finish(began, &m.errs) }()
	d := newDialer(cfg)
	tokens, err := d.tokens(cfg.UserBase+int64(first), count)
	if err != nil {
		return err
	}
	conns := make([]*client, count)
	watchers := make([]watcher, count)
	var readers sync.WaitGroup
	defer func() {
		m.closing.Store(true)
		closeAll(conns)
		readers.Wait()
	}()

	// Connect and subscribe; the schedule starts only after every
	// subscription has been answered, so no change precedes a watcher.
	cfg.progress("%s: connecting %d sockets", res.Scenario, count)
	d.start = time.Now()
	forEach(ctx, count, cfg.Concurrency, func(k int) {
		w := &watchers[k]
		w.user = first + k
		w.watched = m.watches(w.user)
		w.last = make([]int32, len(w.watched))
		c, err := d.dial(ctx, w.user, tokens[k])
		if err != nil {
			m.errs.add("dial_" + kindOf(err))
			return
		}
		conns[k] = c
		var msg []byte
		if len(w.watched) == 0 {
			m.subs.Add(1)
		} else {
			ids := make([]int64, len(w.watched))
			for j, v := range w.watched {
				ids[j] = cfg.UserBase + int64(v)
			}
			msg, w.confirms = cfg.proto.subscribe(ids)
		}
		// The reader starts after confirms is set, which it counts down.
		readers.Go(func() {
			err := readFrames(c.ws, func(frame []byte) { m.receive(w, c, frame) })
			if !m.closing.Load() {
				m.errs.add(kindOf(err))
			}
		})
		if msg == nil {
			return
		}
		if err := c.write(msg, cfg.WaitTimeout); err != nil {
			m.errs.add("subscribe_" + kindOf(err))
		}
	})
	if !waitFor(ctx, cfg.WaitTimeout, func() bool { return m.subs.Load() >= int64(count) }) {
		return fmt.Errorf("%s: only %d of %d sockets subscribed within %s (errors: %v)", res.Scenario, m.subs.Load(), count, cfg.WaitTimeout, m.errs.snapshot())
	}
	start := time.Now().Add(100 * time.Millisecond)
	if m.ready != nil {
		if start, err = m.ready(); err != nil {
			return err
		}
	}
	m.start.Store(&start)
	cfg.progress("%s: %d sockets subscribed; changes start at %s", res.Scenario, count, start.Format("15:04:05.000"))

	// Every process computes the same schedule, so each knows what its
	// watchers are owed without talking to the others.
	var expected int64
	for k := range watchers {
		for _, v := range watchers[k].watched {
			if m.publishes(v) {
				expected += int64(m.changes)
			}
		}
	}
	cpu := startCPU(cfg.ServerPID)
	var sent atomic.Int64
	var senders sync.WaitGroup
	groups := make([][]int, 4)
	for k := range count {
		if m.publishes(first+k) && conns[k] != nil {
			groups[k%len(groups)] = append(groups[k%len(groups)], k)
		}
	}
	for _, ks := range groups {
		senders.Go(func() { m.send(ctx, start, first, ks, conns, &sent) })
	}
	senders.Wait()
	cfg.progress("%s: %d changes sent; waiting for deliveries", res.Scenario, sent.Load())
	// Other processes' changes may still be due: wait for the end of the
	// schedule, then for stragglers.
	_ = sleep(ctx, time.Until(start.Add(time.Duration(m.changes)*m.period)))
	waitFor(ctx, cfg.WaitTimeout, func() bool { return m.deliv.Load()+m.superseded.Load() >= expected })
	res.CPU = cpu.stop(m.deliv.Load())

	publishers := 0
	for i := range m.users {
		if m.publishes(i) {
			publishers++
		}
	}
	res.Clients = count
	res.Rate = round3(float64(publishers) / m.period.Seconds())
	res.Sent = sent.Load()
	res.Expected = expected
	res.Delivered = m.deliv.Load()
	res.Superseded = m.superseded.Load()
	res.Lost = expected - res.Delivered - res.Superseded
	res.Duplicates = m.dups.Load()
	res.Frames = m.frames.Load()
	res.OfferedPerSec = round3(float64(expected) / (time.Duration(m.changes) * m.period).Seconds())
	if span := time.Unix(0, m.lastAt.Load()).Sub(start); res.Delivered > 0 && span > 0 {
		res.DeliveredPerSec = float64(int64(float64(res.Delivered) / span.Seconds()))
	}
	res.SendLagMS = float64(m.sendLag.Load()/1000) / 1000
	res.Latency = m.hist.Summary(cfg.Buckets)
	return ctx.Err()
}

// send makes the changes of users ks (indexes into conns) in time order;
// each change's wait_time is its sequence number.
func (m *mesh) send(ctx context.Context, start time.Time, first int, ks []int, conns []*client, sent *atomic.Int64) {
	// All users share one period, so one sort by phase orders every round.
	slices.SortFunc(ks, func(a, b int) int { return int(m.phase(first+a) - m.phase(first+b)) })
	buf := make([]byte, 0, 64)
	for seq := int64(1); seq <= int64(m.changes); seq++ {
		for _, k := range ks {
			at := m.scheduled(start, first+k, seq)
			if err := sleep(ctx, time.Until(at)); err != nil {
				return
			}
			storeMax(&m.sendLag, int64(time.Since(at)))
			buf = m.cfg.proto.change(buf[:0], m.cfg.UserBase+int64(first+k), seq)
			if err := conns[k].write(buf, m.cfg.WaitTimeout); err != nil {
				m.errs.add("send_" + kindOf(err))
				continue
			}
			sent.Add(1)
		}
	}
}

// receive handles one frame that reached watcher w on socket c.
func (m *mesh) receive(w *watcher, c *client, frame []byte) {
	now := time.Now()
	start := m.start.Load()
	// Shared counters are touched once per frame, not once per event:
	// thousands of readers share them.
	var delivered, dups, skipped int64
	fi := m.cfg.proto.read(frame, func(user, seq int64) {
		v := int(user - m.cfg.UserBase)
		j := slices.Index(w.watched, v)
		if j < 0 || seq < 1 || seq > int64(m.changes) {
			return // an online event, or a change from before the run
		}
		if start == nil {
			m.errs.add("change_before_start")
			return
		}
		if int32(seq) <= w.last[j] {
			dups++
			return
		}
		skipped += seq - int64(w.last[j]) - 1
		w.last[j] = int32(seq)
		delivered++
		m.hist.Record(now.Sub(m.scheduled(*start, v, seq)))
	})
	if fi.events {
		m.frames.Add(1)
		if delivered > 0 {
			m.deliv.Add(delivered)
			storeMax(&m.lastAt, now.UnixNano())
		}
		if dups > 0 {
			m.dups.Add(dups)
		}
		if skipped > 0 {
			m.superseded.Add(skipped)
		}
	}
	if fi.subscribed > 0 && w.confirms > 0 {
		if w.confirms -= fi.subscribed; w.confirms <= 0 {
			m.subs.Add(1)
		}
	}
	if fi.errors > 0 {
		m.errs.addN("reply_error: "+errorDetail(frame), int64(fi.errors))
	}
	if fi.ping {
		if err := c.write(m.cfg.proto.pong(), m.cfg.WaitTimeout); err != nil {
			m.errs.add("pong_" + kindOf(err))
		}
	}
}

// storeMax raises a to v if v is larger.
func storeMax(a *atomic.Int64, v int64) {
	for {
		old := a.Load()
		if v <= old || a.CompareAndSwap(old, v) {
			return
		}
	}
}

// MergeDeliveries combines the results of processes that ran slices of one
// mesh into the result of the whole; the latencies merge exactly when each
// process recorded its buckets (Config.Buckets).
func MergeDeliveries(parts []DeliveryResult) DeliveryResult {
	if len(parts) == 0 {
		return DeliveryResult{}
	}
	out := parts[0]
	out.Errors = nil
	out.Procs = len(parts)
	var hist Histogram
	var errs errorCounts
	for i, p := range parts {
		if i > 0 {
			out.Clients += p.Clients
			out.Sent += p.Sent
			out.Expected += p.Expected
			out.Delivered += p.Delivered
			out.Lost += p.Lost
			out.Superseded += p.Superseded
			out.Duplicates += p.Duplicates
			out.Frames += p.Frames
			out.OfferedPerSec = round3(out.OfferedPerSec + p.OfferedPerSec)
			out.DeliveredPerSec += p.DeliveredPerSec
			out.SendLagMS = max(out.SendLagMS, p.SendLagMS)
			out.Seconds = max(out.Seconds, p.Seconds)
			out.Load1End = max(out.Load1End, p.Load1End)
		}
		hist.Merge(p.Latency)
		for k, v := range p.Errors {
			errs.addN(k, v)
		}
	}
	out.Latency = hist.Summary(false)
	out.Errors = errs.snapshot()
	// Every process watched the same servers over about the same time:
	// their server figures overlap, their own CPU adds up.
	out.CPU = CPU{}
	for _, p := range parts {
		out.CPU.ServerSeconds = max(out.CPU.ServerSeconds, p.CPU.ServerSeconds)
		out.CPU.ToolSeconds = round3(out.CPU.ToolSeconds + p.CPU.ToolSeconds)
	}
	if out.Delivered > 0 {
		out.CPU.ServerPerUS = round3(out.CPU.ServerSeconds * 1e6 / float64(out.Delivered))
		out.CPU.ToolPerUS = round3(out.CPU.ToolSeconds * 1e6 / float64(out.Delivered))
	}
	return out
}

// errorDetail is the start of the first error text in a reply frame
// (presenced's detail, Centrifugo's message), so that the counts say which
// error came back.
func errorDetail(frame []byte) string {
	for _, key := range []string{`"detail":"`, `"message":"`} {
		if _, rest, ok := bytes.Cut(frame, []byte(key)); ok {
			end := bytes.IndexAny(rest, `";`)
			if end < 0 {
				end = len(rest)
			}
			return string(rest[:min(end, 60)])
		}
	}
	return "?"
}
