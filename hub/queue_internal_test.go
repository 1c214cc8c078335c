package hub

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// orderStore answers each op with a record of the op's user, so that a
// test can tell which job an answer belongs to. Its first fails calls
// report an outage.
type orderStore struct {
	mu    sync.Mutex
	fails int
}

func (s *orderStore) down() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fails == 0 {
		return false
	}
	s.fails--
	return true
}

func (s *orderStore) LoadAll(context.Context) ([]Record, error) { return nil, nil }

func (s *orderStore) Apply(ctx context.Context, op Op) (Record, error) {
	a, err := s.ApplyBatch(ctx, []Op{op})
	if err != nil {
		return Record{}, err
	}
	return a[0].Record, nil
}

func (s *orderStore) ApplyBatch(_ context.Context, ops []Op) ([]Applied, error) {
	if s.down() {
		return nil, fmt.Errorf("test outage: %w", ErrUnavailable)
	}
	out := make([]Applied, len(ops))
	for i, op := range ops {
		out[i].Record = Record{Status: Status{UserID: op.UserID}, Version: 1}
	}
	return out, nil
}

func (s *orderStore) SaveLastSeen(context.Context, []LastSeen) error {
	if s.down() {
		return fmt.Errorf("test outage: %w", ErrUnavailable)
	}
	return nil
}

var _ BatchStore = (*orderStore)(nil)

// report is one call of the writer's report.
type report struct {
	first   uint64
	answers []Applied
	outage  error
}

// TestWriterReportsJobsInQueueOrder pushes changes and last_seen flushes
// while the writer runs through an outage, and checks that the writer
// reports on them by sequence number in the order pushed, each exactly
// once, each answer the answer to its own job.
func TestWriterReportsJobsInQueueOrder(t *testing.T) {
	const jobs = 60
	w := newWriter(&orderStore{fails: 3}, time.Second)
	reports := make(chan report, 4*jobs)
	w.report = func(first uint64, answers []Applied, outage error) {
		reports <- report{first, answers, outage}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	wg.Go(func() { w.run(ctx) })

	// Job n is a change of user 10n, or, every seventh, a flush.
	userOf := func(seq uint64) int64 { return int64(10 * seq) }
	for seq := uint64(1); seq <= jobs; seq++ {
		j := &job{seq: seq, op: Op{Kind: OpConnect, UserID: userOf(seq)}}
		if seq%7 == 0 {
			j = &job{seq: seq, lastSeen: []LastSeen{{UserID: 1}}}
		}
		w.push(j)
	}

	next, outages := uint64(1), 0
	limit := time.After(30 * time.Second)
	for next <= jobs {
		var r report
		select {
		case r = <-reports:
		case <-limit:
			t.Fatalf("no report on job %d", next)
		}
		if r.first != next {
			t.Fatalf("report on jobs from %d; the oldest not answered is %d", r.first, next)
		}
		if r.outage != nil {
			outages++
			continue
		}
		for i, a := range r.answers {
			seq := next + uint64(i)
			if seq%7 != 0 && a.Record.UserID != userOf(seq) {
				t.Fatalf("answer to job %d is of user %d, want %d", seq, a.Record.UserID, userOf(seq))
			}
		}
		next += uint64(len(r.answers))
	}
	if outages != 3 {
		t.Errorf("%d outages reported, want 3", outages)
	}
}

// TestReportOnAnotherJobStopsTheHub checks that the hub refuses a report
// that is not about the head of its queue, and takes one that is.
func TestReportOnAnotherJobStopsTheHub(t *testing.T) {
	h := New(&orderStore{}, Config{EncodeEvent: func(Presence) []byte { return nil }})
	for id := int64(1); id <= 2; id++ {
		h.enqueue(h.userFor(id), Op{Kind: OpConnect, UserID: id}, 0, nil)
	}
	answer := []Applied{{Record: Record{Status: Status{UserID: 1}, Version: 1}}}
	for _, tc := range []struct {
		name    string
		first   uint64
		answers []Applied
		outage  error
	}{
		{"an answer to the second job first", 2, answer, nil},
		{"an answer to a job never queued", 3, answer, nil},
		{"more answers than queued jobs", 1, make([]Applied, 3), nil},
		{"an outage from a job behind the head", 2, nil, ErrUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
				if len(h.jobs) != 2 || h.jobs[0].seq != 1 {
					t.Errorf("queue changed: %d jobs", len(h.jobs))
				}
			}()
			h.takeReport(tc.first, tc.answers, tc.outage)
		})
	}
	h.takeReport(1, answer, nil)
	if len(h.jobs) != 1 || h.jobs[0].seq != 2 {
		t.Fatalf("after the answer to job 1: %d jobs, want job 2 alone", len(h.jobs))
	}
	if u := h.users[1]; !u.known || u.pending != 0 {
		t.Errorf("user 1: known %t, pending %d; want the answer installed", u.known, u.pending)
	}
}
