package hub

import (
	"context"
	"fmt"
)

// Ping reports whether the hub goroutine is running and answers within
// ctx: it fails while the stored statuses are still loading, after the hub
// has stopped, and when the hub is too busy to answer in time. Readiness
// probes use it. Unlike the other requests, Ping gives up when ctx ends
// even after it has been queued: it changes nothing, so nothing is lost.
func (h *Hub) Ping(ctx context.Context) error {
	done := make(chan struct{})
	select {
	case h.requests <- func() { close(done) }:
	case <-h.stopped:
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("hub did not answer in time: %w", ctx.Err())
	}
	select {
	case <-done:
		return nil
	case <-h.stopped:
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("hub did not answer in time: %w", ctx.Err())
	}
}
