package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// WatchPolicy decides whom a signed-in user may read: whose presence
// answers, subscribe snapshots and events they get. An id they may not
// read is treated exactly as an unknown id, so that nobody learns from
// the answers whether a user exists or is online. The server asks only
// about other users: a user may always read themselves, and a service
// credential reads anyone.
type WatchPolicy interface {
	// Allowed returns the ids among ids that watcher may read, in the
	// order of ids, and until when that answer holds: the zero time
	// means for as long as the watcher's token does. An error means that
	// the policy could not answer; the server then refuses the request
	// (it never allows by default), and the error's text is shown to the
	// caller, so it must not hold secrets.
	Allowed(ctx context.Context, watcher Identity, ids []int64) (allowed []int64, until time.Time, err error)
}

// OpenPolicy lets any signed-in user read any user: the seed API's
// behaviour, and the default.
type OpenPolicy struct{}

// Allowed allows every id, for as long as the token lasts.
func (OpenPolicy) Allowed(_ context.Context, _ Identity, ids []int64) ([]int64, time.Time, error) {
	return ids, time.Time{}, nil
}

// ClaimPolicy lets a user read the users that their token's watch claim
// lists: a JSON array of user ids, written as everywhere else (numbers in
// canonical decimal, from 1 to MaxUserID). A token without the claim
// reads only its holder; a token whose claim is not such an array is
// refused where it is used (401 on REST, close 4401 at a socket's
// connect, an error for a refresh), as a token with a bad name is. The
// answer lasts as long as the token: a socket that refreshes its token
// is held to the new token's claim at once.
type ClaimPolicy struct{}

// Allowed keeps the ids that the watcher's watch claim lists.
func (ClaimPolicy) Allowed(_ context.Context, watcher Identity, ids []int64) ([]int64, time.Time, error) {
	set := watcher.watch
	if set == nil {
		var err error
		if set, err = parseWatchClaim(watcher.Watch); err != nil {
			return nil, time.Time{}, err
		}
	}
	out := make([]int64, 0, len(ids))
	for _, id := range ids {
		if _, ok := set[id]; ok {
			out = append(out, id)
		}
	}
	return out, time.Time{}, nil
}

// parseWatchClaim reads a token's watch claim: absent means nobody, and
// anything but an array of user ids is an error that says what is wrong.
func parseWatchClaim(raw json.RawMessage) (map[int64]struct{}, error) {
	set := map[int64]struct{}{}
	if raw == nil {
		return set, nil
	}
	var elems []json.RawMessage
	if raw = bytes.TrimSpace(raw); len(raw) == 0 || raw[0] != '[' || json.Unmarshal(raw, &elems) != nil {
		return nil, fmt.Errorf("the watch claim must be an array of user ids, not %s", describe(raw))
	}
	for _, e := range elems {
		id, err := parseIDElement(e)
		if err != nil {
			return nil, fmt.Errorf("the watch claim must be an array of user ids: %v", err)
		}
		set[id] = struct{}{}
	}
	return set, nil
}

// errWatchUnavailable marks a policy's failure to answer, which the
// server answers with 503 on REST and an error message on the socket.
var errWatchUnavailable = errors.New("watch authorization is unavailable")

// readable returns the ids among ids that who may read, in order, and
// until when that holds (zero: as long as the token). A service reads
// anyone and a user themselves; the policy decides the rest.
func (s *Server) readable(ctx context.Context, who Identity, ids []int64) ([]int64, time.Time, error) {
	if who.Service != "" || s.openWatch {
		return ids, time.Time{}, nil
	}
	others := make([]int64, 0, len(ids))
	for _, id := range ids {
		if id != who.UserID {
			others = append(others, id)
		}
	}
	if len(others) == 0 {
		return ids, time.Time{}, nil
	}
	allowed, until, err := s.cfg.WatchPolicy.Allowed(ctx, who, others)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("%w: %v", errWatchUnavailable, err)
	}
	if len(others) == len(ids) {
		return allowed, until, nil
	}
	ok := make(map[int64]struct{}, len(allowed))
	for _, id := range allowed {
		ok[id] = struct{}{}
	}
	out := make([]int64, 0, len(allowed)+1)
	for _, id := range ids {
		if _, yes := ok[id]; yes || id == who.UserID {
			out = append(out, id)
		}
	}
	return out, until, nil
}
