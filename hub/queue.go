package hub

import (
	"errors"
	"fmt"
	"time"
)

// The store queue and its outage state machine.
//
// Every write to the store is a job. The hub goroutine appends it to
// h.jobs and pushes the same job to the writer's queue; the writer runs
// the jobs at the head of its queue (one, or a batch with a BatchStore)
// and reports back, and the hub pops as many from h.jobs as the writer
// answered. The two queues hold the same jobs in the same order
// (queueJob is the one place that adds to them): the writer answers the
// oldest first, so the head of h.jobs is always the job being answered.
// Each job has a sequence number and the writer reports by it, so that
// checkHead stops the process if the two ever part. A caller that waits on a change (Connect,
// Heartbeat, SetStatus) is answered through job.done; watchers hear of
// a change only once it is installed, so a change the store took is
// stored before anyone sees it.
//
// The hub is in one of two states, h.down false (the store is up) or
// true (it is down):
//
//   - Up: each job is answered by the store. Its record is installed
//     (and broadcast) if it is newer than the one shown.
//   - Up to down: a store call fails with ErrUnavailable, or takes longer
//     than Config.StoreTimeout. The writer reports an outage instead of
//     answers and keeps the jobs at the head of its queue; storeDown then
//     answers every queued change from memory (answerProvisionally): by
//     the store's own rule, Decide, with what this node last heard of the
//     other nodes' vouches. Callers get that answer, watchers see it, and
//     the job stays queued. The provisional record keeps the store's
//     version, so that the store's own answer, when it comes, counts as
//     newer.
//   - Down: a new change is answered from memory as soon as it is
//     queued. The queue only grows; once Config.MaxPendingWrites changes
//     wait, a caller's new change is refused with ErrUnavailable rather
//     than acknowledged and perhaps lost, and the hub's own follow-up
//     writes are skipped, except releases: those are queued regardless,
//     so that no vouch outlives its grace. Records
//     from other nodes for a user with a provisional answer are held, the
//     newest of them, instead of shown: this node's change will come back
//     from the store newer than what it was decided against.
//   - Retry: the writer tries the head again with backoff from 100ms up
//     to 5s; each try takes whatever has queued behind it, up to a batch.
//     Ops are idempotent, so a batch whose answer was lost is safe to
//     send again. Each job carries its age, so that an update replayed
//     late keeps its own time.
//   - Down to up: the first answer from the store ends the outage
//     (takeAnswer). A job answered provisionally gets no second reply; only
//     the user's latest provisional job installs the store's answer (or
//     the newer held record), and only if it is newer than what is
//     shown. queueCorrections, which kept quiet while the store was down,
//     then decides again what the store should hear: heartbeats received
//     here but lost, device heartbeats that a socket here took over.
//
// A last_seen flush is a job too, one at a time (h.flushing), and goes
// alone in its turn. It is never answered from memory: it changes
// nothing that watchers see at once, and waits for the store like the
// rest. When Run stops it gives the queue Config.StoreTimeout to drain
// and then logs what the store has not taken.

// enqueue queues op for the store. done, if not nil, gets the answer on
// the hub goroutine. With limit > 0 the op is refused (false) when that
// many writes are waiting already.
func (h *Hub) enqueue(u *user, op Op, limit int, done func(Record, error)) bool {
	if limit > 0 && len(h.jobs) >= limit {
		return false
	}
	j := &job{op: op, made: time.Now(), vouched: u.vouched, done: done}
	h.queueJob(j)
	u.pending++
	if h.down {
		h.answerProvisionally(u, j, time.Now())
	}
	return true
}

// answerProvisionally decides j from memory while the store is down, by
// the same rule the store follows, with what this node last heard of the
// other nodes. The job stays queued and reaches the store when it returns.
func (h *Hub) answerProvisionally(u *user, j *job, now time.Time) {
	j.provisional = true
	done := j.done
	j.done = nil
	vouchers := u.others
	if j.vouched {
		vouchers++
	}
	row := Row{Status: u.rec.Status, Version: u.rec.Version, HeartbeatUntil: u.storeHB, DeviceHeartbeats: u.storeDevHB}
	out, _, err := Decide(row, u.known, j.op, vouchers, now)
	if err != nil {
		if done != nil {
			done(Record{}, err)
		}
		return
	}
	rec := out.Record(now, vouchers)
	// Keep the store's version: the store's own answer, when it comes,
	// must count as newer.
	rec.Version = u.rec.Version
	u.provisional = j.seq
	h.install(u, rec, now)
	if done != nil {
		done(rec, nil)
	}
}

// queueJob gives j the next sequence number and appends it to both
// queues, the hub's and the writer's. It is the only place that adds to
// either, so that they hold the same jobs in the same order.
func (h *Hub) queueJob(j *job) {
	h.seq++
	j.seq = h.seq
	h.jobs = append(h.jobs, j)
	h.counts.pendingWrites.Add(1)
	h.w.push(j)
}

// takeReport takes what the writer says of the jobs at the head of the
// queue, the oldest numbered first: the store's answer to each of them,
// in order, or the news that the store is down.
func (h *Hub) takeReport(first uint64, answers []Applied, outage error) {
	h.checkHead(first, max(len(answers), 1))
	if outage != nil {
		h.storeDown(outage)
		return
	}
	for _, a := range answers {
		h.takeAnswer(a.Record, a.Err)
	}
}

// checkHead panics unless the writer reports on n jobs from the head of
// h.jobs, whose first is numbered first. The writer's queue and h.jobs
// must hold the same jobs in the same order; if they do not, the hub
// has a bug, not the store a fault, and from then on every answer would
// go to another job: a caller told of another user's status, watchers
// shown a change that was not made, a user's pending count wrong for
// good. Nothing here could tell which answer belongs to which job, so
// going on would serve wrong presence without a sign. Stopping the
// process is the safe failure: the store holds the truth, the vouches of
// a dead node lapse with its lease, and its clients reconnect and are
// decided anew.
func (h *Hub) checkHead(first uint64, n int) {
	if len(h.jobs) == 0 {
		panic(fmt.Sprintf("hub: the writer reports on job %d, but no job is queued", first))
	}
	if head := h.jobs[0].seq; head != first || len(h.jobs) < n {
		panic(fmt.Sprintf("hub: the writer reports on jobs %d to %d, but the queue holds jobs %d to %d",
			first, first+uint64(n)-1, head, h.jobs[len(h.jobs)-1].seq))
	}
}

// storeDown switches to answering from memory: every queued change is
// decided now and stays queued for the store's return.
func (h *Hub) storeDown(err error) {
	if h.down {
		return
	}
	h.down = true
	h.counts.storeDown.Store(true)
	h.log.Warn("store unavailable: answering from memory, writes queued", "writes", len(h.jobs), "err", err)
	now := time.Now()
	for _, q := range h.jobs {
		if q.lastSeen == nil && !q.provisional {
			h.answerProvisionally(h.users[q.op.UserID], q, now)
		}
	}
}

// takeAnswer takes the store's answer to the oldest queued job: it
// removes the job from the queue, shows the record if it is newer than
// the one shown, and replies to whoever waits for the job.
func (h *Hub) takeAnswer(rec Record, err error) {
	now := time.Now()
	if h.down {
		h.down = false
		h.counts.storeDown.Store(false)
		h.log.Info("store available again", "writes", len(h.jobs))
	}
	j := h.jobs[0]
	h.jobs[0] = nil
	h.jobs = h.jobs[1:]
	h.counts.pendingWrites.Add(-1)
	if j.lastSeen != nil {
		h.flushing = false
		if err != nil {
			h.log.Error("store last_seen", "users", len(j.lastSeen), "err", err)
		}
		return
	}
	u := h.users[j.op.UserID]
	u.pending--
	defer h.forget(u)
	switch {
	case err != nil:
		if !errors.Is(err, ErrNotFound) {
			h.log.Error("store status", "user_id", j.op.UserID, "err", err)
		}
		if j.done != nil {
			j.done(Record{}, err)
		}
		return
	case j.provisional:
		if u.provisional != j.seq {
			return // a later change of the user is shown already
		}
		u.provisional = 0
		if u.held != nil && u.held.Version > rec.Version {
			rec = *u.held
		}
		u.held = nil
		if rec.Version > u.rec.Version {
			h.install(u, rec, now)
			h.queueCorrections(u, now)
		}
	default:
		if !u.known || rec.Version > u.rec.Version {
			h.install(u, rec, now)
			h.queueCorrections(u, now)
		}
		if j.done != nil {
			j.done(rec, nil)
		}
	}
	// Nobody holds the user; only a heartbeat does, so someone must
	// look again when it runs out.
	if left := rec.AliveFor(); rec.Online && rec.Vouchers == 0 && left > 0 {
		u.refreshAt = now.Add(left)
		h.deadlines.add(u.refreshAt, u.rec.UserID)
	}
}

// flush queues the coalesced last_seen times, one batch at a time.
func (h *Hub) flush(now time.Time) {
	if h.flushing || len(h.dirty) == 0 {
		return
	}
	batch := make([]LastSeen, 0, len(h.dirty))
	for id := range h.dirty {
		u := h.users[id]
		if u == nil || !u.known {
			continue
		}
		ls := LastSeen{UserID: id, At: u.rec.LastSeen}
		u.pruneHeartbeats(now)
		for dev, until := range u.localHB {
			switch {
			case dev == "":
				ls.HeartbeatTTL = until.Sub(now)
			case u.storedHeartbeat(dev, now):
				// A device heartbeat the store does not hold went as a
				// change of its own; the flush only extends.
				if ls.DeviceHeartbeats == nil {
					ls.DeviceHeartbeats = make(map[string]time.Duration, len(u.localHB))
				}
				ls.DeviceHeartbeats[dev] = until.Sub(now)
			}
		}
		batch = append(batch, ls)
	}
	clear(h.dirty)
	if len(batch) == 0 {
		return
	}
	h.flushing = true
	h.queueJob(&job{lastSeen: batch})
}
