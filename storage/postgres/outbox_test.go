package postgres

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/presenced/presenced/internal/pgtest"
)

// TestOneNodeAtATimeSendsAReceiversEvents: a second node's claim waits
// while the first holds it, and gets it once the first lets go; another
// receiver's claim is free meanwhile.
func TestOneNodeAtATimeSendsAReceiversEvents(t *testing.T) {
	pgtest.URL(t)
	t.Parallel()
	url := pgtest.Schema(t)
	const hook = "http://backend.example/hook"
	a := open(t, url, Config{NodeID: "a", WebhookURLs: []string{hook}})
	b := open(t, url, Config{NodeID: "b", WebhookURLs: []string{hook}})
	ctx := context.Background()
	held, err := a.Claim(ctx, hook)
	if err != nil {
		t.Fatal(err)
	}
	wait, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	defer cancel()
	if c, err := b.Claim(wait, hook); !errors.Is(err, context.DeadlineExceeded) {
		if c != nil {
			c.Release()
		}
		t.Fatalf("a second node claimed a held receiver: %v", err)
	}
	other, err := b.Claim(ctx, "http://other.example/hook")
	if err != nil {
		t.Fatalf("another receiver's claim: %v", err)
	}
	other.Release()
	held.Release()
	got, err := b.Claim(ctx, hook)
	if err != nil {
		t.Fatalf("after the first node let go: %v", err)
	}
	got.Release()
}
