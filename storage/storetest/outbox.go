package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/presenced/presenced/hub"
)

// OutboxStore is a store that keeps its changes' events for webhooks.
type OutboxStore interface {
	hub.Store
	hub.Outbox
}

// RunOutbox is the behaviour of hub.Outbox; newStore must return an
// empty store that keeps events for urls.
func RunOutbox(t *testing.T, newStore func(t *testing.T, urls []string) OutboxStore) {
	ctx := context.Background()
	claim := func(t *testing.T, s OutboxStore, url string) hub.OutboxClaim {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		c, err := s.Claim(cctx, url)
		if err != nil {
			t.Fatalf("claim %s: %v", url, err)
		}
		t.Cleanup(c.Release)
		return c
	}
	pending := func(t *testing.T, c hub.OutboxClaim) []hub.Event {
		t.Helper()
		events, err := c.Pending(ctx, 100)
		if err != nil {
			t.Fatal(err)
		}
		return events
	}
	kinds := func(events []hub.Event) string {
		var out []string
		for _, e := range events {
			out = append(out, fmt.Sprintf("%d:%s", e.Presence.UserID, e.Type))
		}
		return fmt.Sprint(out)
	}
	t.Run("EachChangeOthersSeeIsAnEventForEachURL", func(t *testing.T) {
		s := newStore(t, []string{"http://a.example/hook", "http://b.example/hook"})
		a, b := claim(t, s, "http://a.example/hook"), claim(t, s, "http://b.example/hook")
		apply(t, s, hub.Op{Kind: hub.OpConnect, UserID: 1, Username: "ann"})
		apply(t, s, hub.Op{Kind: hub.OpConnect, UserID: 1})                                            // nothing others see
		apply(t, s, update(1, hub.StatusUpdate{Busy: ptr(true), WaitTimeSet: true, WaitTime: ptr(5)})) // status
		apply(t, s, update(1, hub.StatusUpdate{WaitTimeSet: true, WaitTime: ptr(5)}))                  // the same again
		apply(t, s, hub.Op{Kind: hub.OpHeartbeat, UserID: 2, HeartbeatTTL: time.Hour})                 // online
		apply(t, s, hub.Op{Kind: hub.OpRelease, UserID: 1})                                            // offline
		apply(t, s, update(2, hub.StatusUpdate{Online: ptr(false), Busy: ptr(true)}))                  // invisible: offline
		apply(t, s, update(2, hub.StatusUpdate{Busy: ptr(false)}))                                     // unseen while invisible
		want := "[1:user.online 1:user.status 2:user.online 1:user.offline 2:user.offline]"
		got := pending(t, a)
		if kinds(got) != want {
			t.Fatalf("events %s, want %s", kinds(got), want)
		}
		if kinds(pending(t, b)) != want {
			t.Fatalf("the second URL has %s, want %s", kinds(pending(t, b)), want)
		}
		if p := got[1].Presence; !p.Busy || p.WaitTime == nil || *p.WaitTime != 5 || p.BusySince.IsZero() || p.Username != "ann" || got[1].At.IsZero() {
			t.Fatalf("status event %+v", got[1])
		}
		seen := map[string]bool{}
		for _, e := range got {
			if seen[e.ID] || e.ID == "" {
				t.Fatalf("event id %q not unique", e.ID)
			}
			seen[e.ID] = true
		}
		// Delivered to a: gone from a, still waiting for b.
		if err := a.Delivered(ctx, got[:2]); err != nil {
			t.Fatal(err)
		}
		if rest := pending(t, a); kinds(rest) != "[2:user.online 1:user.offline 2:user.offline]" || rest[0].ID != got[2].ID {
			t.Fatalf("after delivering two: %s", kinds(rest))
		}
		if len(pending(t, b)) != 5 {
			t.Fatal("delivering to one URL took events from the other")
		}
	})
	t.Run("TrimDropsTheOldest", func(t *testing.T) {
		s := newStore(t, []string{"http://a.example/hook"})
		c := claim(t, s, "http://a.example/hook")
		for i := range 10 {
			apply(t, s, hub.Op{Kind: hub.OpHeartbeat, UserID: int64(10 + i), HeartbeatTTL: time.Hour})
		}
		dropped, err := c.Trim(ctx, 4)
		if err != nil || dropped != 6 {
			t.Fatalf("trim to 4 of 10: dropped %d, %v", dropped, err)
		}
		if got := pending(t, c); len(got) != 4 || got[0].Presence.UserID != 16 {
			t.Fatalf("left %s, want the newest four", kinds(got))
		}
		if dropped, _ := c.Trim(ctx, 4); dropped != 0 {
			t.Fatalf("a second trim dropped %d", dropped)
		}
	})
	t.Run("AddedSaysWhenEventsCome", func(t *testing.T) {
		s := newStore(t, []string{"http://a.example/hook"})
		c := claim(t, s, "http://a.example/hook")
		select {
		case <-c.Added():
		default:
		}
		apply(t, s, hub.Op{Kind: hub.OpConnect, UserID: 30})
		select {
		case <-c.Added():
		case <-time.After(10 * time.Second):
			t.Fatal("no word of an added event")
		}
	})
	t.Run("NoURLsNoEvents", func(t *testing.T) {
		s := newStore(t, nil)
		apply(t, s, hub.Op{Kind: hub.OpConnect, UserID: 31})
		// A store may grant a claim for a URL it keeps nothing for; then
		// it must have nothing pending.
		if c, err := s.Claim(ctx, "http://a.example/hook"); err == nil {
			defer c.Release()
			if got := pending(t, c); len(got) != 0 {
				t.Fatalf("events kept for an unknown URL: %s", kinds(got))
			}
		}
	})
}
