package hub

import (
	"container/heap"
	"time"
)

// deadline asks the hub to look at a user again at a given time: when a
// grace period or a heartbeat's lifetime runs out.
type deadline struct {
	at     time.Time
	userID int64
}

// deadlines is a min-heap by time. Entries are never removed early: when one
// comes due the hub simply recomputes the user's status, which is cheap and
// idempotent, so a stale entry costs one map lookup.
type deadlines []deadline

func (d deadlines) Len() int           { return len(d) }
func (d deadlines) Less(i, j int) bool { return d[i].at.Before(d[j].at) }
func (d deadlines) Swap(i, j int)      { d[i], d[j] = d[j], d[i] }
func (d *deadlines) Push(x any)        { *d = append(*d, x.(deadline)) }
func (d *deadlines) Pop() any {
	old := *d
	n := len(old)
	x := old[n-1]
	*d = old[:n-1]
	return x
}

func (d *deadlines) add(at time.Time, userID int64) { heap.Push(d, deadline{at, userID}) }

// due pops every entry at or before now.
func (d *deadlines) due(now time.Time, fn func(userID int64)) {
	for d.Len() > 0 && !(*d)[0].at.After(now) {
		fn(heap.Pop(d).(deadline).userID)
	}
}

// next returns the earliest pending time.
func (d deadlines) next() (time.Time, bool) {
	if len(d) == 0 {
		return time.Time{}, false
	}
	return d[0].at, true
}
