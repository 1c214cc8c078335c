package postgres

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/presenced/presenced/hub"
)

// maxPayload keeps a NOTIFY payload under PostgreSQL's limit of 8000
// bytes, with room to spare.
const maxPayload = 7000

// wireRecord is a record in a NOTIFY payload. Times are Unix
// microseconds, what PostgreSQL keeps.
type wireRecord struct {
	UserID   int64  `json:"u"`
	Version  int64  `json:"v"`
	Fetch    bool   `json:"f,omitempty"` // too large to carry: read the row
	Username string `json:"n,omitempty"`
	Online   bool   `json:"o,omitempty"`
	Hidden   bool   `json:"a,omitempty"`
	Busy     bool   `json:"b,omitempty"`
	WaitTime *int   `json:"w,omitempty"`
	LastSeen int64  `json:"s,omitempty"`
	Created  int64  `json:"c,omitempty"`
	Updated  int64  `json:"t,omitempty"`
	HBLeftMs int64  `json:"h,omitempty"`
	Vouchers int    `json:"k,omitempty"`
	// Devices holds each device heartbeat's time left, in milliseconds.
	Devices   map[string]int64 `json:"d,omitempty"`
	BusySince int64            `json:"bs,omitempty"`
	HideSeen  bool             `json:"hs,omitempty"`
}

// message is one NOTIFY payload: a changed record, or last_seen times as
// [user id, Unix microseconds] pairs.
type message struct {
	Record   *wireRecord `json:"r,omitempty"`
	LastSeen [][2]int64  `json:"l,omitempty"`
}

// encodeRecord carries the whole record when it fits, so that the other
// nodes need no query; otherwise only what finds the row.
func encodeRecord(r hub.Record) string {
	w := wireRecord{
		UserID: r.UserID, Version: r.Version, Username: r.Username, Online: r.Online, Hidden: r.AppearOffline,
		Busy: r.Busy, WaitTime: r.WaitTime, LastSeen: r.LastSeen.UnixMicro(), Created: r.CreatedAt.UnixMicro(),
		Updated: r.UpdatedAt.UnixMicro(), HBLeftMs: r.HeartbeatLeft.Milliseconds(), Vouchers: r.Vouchers,
	}
	if !r.BusySince.IsZero() {
		w.BusySince = r.BusySince.UnixMicro()
	}
	w.HideSeen = r.HideLastSeen
	for dev, left := range r.DeviceHeartbeats {
		if w.Devices == nil {
			w.Devices = make(map[string]int64, len(r.DeviceHeartbeats))
		}
		w.Devices[dev] = left.Milliseconds()
	}
	b, _ := json.Marshal(message{Record: &w}) // plain types only
	if len(b) > maxPayload {
		b, _ = json.Marshal(message{Record: &wireRecord{UserID: r.UserID, Version: r.Version, Fetch: true}})
	}
	return string(b)
}

// encodeLastSeen packs last_seen times into as few payloads as fit.
func encodeLastSeen(seen []hub.LastSeen) []string {
	var out []string
	buf := []byte(`{"l":[`)
	n := 0
	for _, ls := range seen {
		entry := fmt.Appendf(nil, "[%d,%d]", ls.UserID, ls.At.UnixMicro())
		if n > 0 && len(buf)+len(entry)+3 > maxPayload {
			out = append(out, string(append(buf, "]}"...)))
			buf, n = []byte(`{"l":[`), 0
		}
		if n > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, entry...)
		n++
	}
	if n > 0 {
		out = append(out, string(append(buf, "]}"...)))
	}
	return out
}

// decode reads a payload. A record marked Fetch has only its id and
// version.
func decode(payload string) (msg message, err error) {
	if err := json.Unmarshal([]byte(payload), &msg); err != nil {
		return msg, fmt.Errorf("notification %.40q: %w", payload, err)
	}
	return msg, nil
}

func (w *wireRecord) record() hub.Record {
	var devices map[string]time.Duration
	for dev, ms := range w.Devices {
		if devices == nil {
			devices = make(map[string]time.Duration, len(w.Devices))
		}
		devices[dev] = time.Duration(ms) * time.Millisecond
	}
	micro := func(us int64) time.Time {
		if us == 0 {
			return time.Time{}
		}
		return time.UnixMicro(us)
	}
	return hub.Record{
		Status: hub.Status{
			UserID: w.UserID, Username: w.Username, Online: w.Online, AppearOffline: w.Hidden, Busy: w.Busy,
			WaitTime: w.WaitTime, LastSeen: micro(w.LastSeen), CreatedAt: micro(w.Created), UpdatedAt: micro(w.Updated),
			BusySince: micro(w.BusySince), HideLastSeen: w.HideSeen,
		},
		Version:          w.Version,
		HeartbeatLeft:    time.Duration(w.HBLeftMs) * time.Millisecond,
		DeviceHeartbeats: devices,
		Vouchers:         w.Vouchers,
	}
}

func (m message) lastSeen() []hub.LastSeen {
	out := make([]hub.LastSeen, 0, len(m.LastSeen))
	for _, p := range m.LastSeen {
		out = append(out, hub.LastSeen{UserID: p[0], At: time.UnixMicro(p[1])})
	}
	return out
}
