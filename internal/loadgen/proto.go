package loadgen

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Protocols the tool speaks, for Config.Protocol.
const (
	// Presenced is presenced's own protocol at /ws.
	Presenced = "presenced"
	// Centrifugo is Centrifugo's JSON protocol at /connection/websocket,
	// with a user's changes as publications in a channel of its own (see
	// centrifugo.go).
	Centrifugo = "centrifugo"
)

// proto is what differs between the servers the tool drives: where a
// socket connects, how it authenticates, subscribes and changes status,
// and how the server's frames read. Everything else (the schedule, the
// counting, the latency) is shared, so both servers are measured alike.
type proto interface {
	// path is the WebSocket endpoint; header the handshake's headers.
	path() string
	header(token string) http.Header
	// hello runs after the handshake and before the socket counts as
	// connected, on the dialling goroutine.
	hello(c *client, token string, timeout time.Duration) error
	// subscribe is the message that makes a socket watch users, and how
	// many confirmations the server answers it with.
	subscribe(users []int64) (msg []byte, replies int)
	// change appends to buf the message with which user makes change seq.
	change(buf []byte, user, seq int64) []byte
	// ping asks the server for an answer that read reports as pong.
	ping() []byte
	// pong answers a server ping that read reported; nil when the
	// protocol's pings are WebSocket control frames, answered by the
	// library.
	pong() []byte
	// read reports what one frame from the server holds, calling event for
	// each presence event in it.
	read(frame []byte, event func(user, seq int64)) frameInfo
}

// frameInfo is what one frame from the server held.
type frameInfo struct {
	events     bool // presence events (event was called for each)
	subscribed int  // confirmed subscriptions
	errors     int  // error replies
	pong       bool // the answer to ping
	ping       bool // a ping the tool must answer with pong
}

func protoFor(name string) (proto, error) {
	switch name {
	case "", Presenced:
		return presencedProto{}, nil
	case Centrifugo:
		return centrifugoProto{}, nil
	}
	return nil, fmt.Errorf("protocol must be %s or %s, not %q", Presenced, Centrifugo, name)
}

// client is one socket of the tool. Its writes are serialised: a
// Centrifugo socket's reader answers the server's pings, which are
// messages, while a sender may be writing a change on the same socket.
type client struct {
	ws *websocket.Conn
	mu sync.Mutex
}

// write sends msg as one text frame within timeout.
func (c *client) write(msg []byte, timeout time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(timeout))
	return c.ws.WriteMessage(websocket.TextMessage, msg)
}

// presencedProto speaks presenced's protocol.
type presencedProto struct{}

func (presencedProto) path() string { return "/ws" }

func (presencedProto) header(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

// hello has nothing to do: the token went with the handshake.
func (presencedProto) hello(*client, string, time.Duration) error { return nil }

func (presencedProto) subscribe(users []int64) ([]byte, int) {
	msg := append(make([]byte, 0, 64+12*len(users)), `{"type":"subscribe","user_ids":[`...)
	for j, v := range users {
		if j > 0 {
			msg = append(msg, ',')
		}
		msg = strconv.AppendInt(msg, v, 10)
	}
	return append(msg, "]}"...), 1
}

// change carries the sequence number as wait_time, which the event
// repeats to every watcher.
func (presencedProto) change(buf []byte, _, seq int64) []byte {
	buf = append(buf, `{"type":"set_status","is_busy":true,"wait_time":`...)
	buf = strconv.AppendInt(buf, seq, 10)
	return append(buf, '}')
}

func (presencedProto) ping() []byte { return []byte(`{"type":"ping"}`) }

func (presencedProto) pong() []byte { return nil }

func (presencedProto) read(frame []byte, event func(user, seq int64)) frameInfo {
	if scanEvents(frame, event) {
		return frameInfo{events: true}
	}
	switch replyType(frame) {
	case "subscribed":
		return frameInfo{subscribed: 1}
	case "error":
		return frameInfo{errors: 1}
	case "pong":
		return frameInfo{pong: true}
	}
	return frameInfo{}
}

// eachLine calls fn with each non-empty line of b: Centrifugo's JSON
// protocol packs several replies and pushes into one frame, one a line.
func eachLine(b []byte, fn func(line []byte)) {
	for len(b) > 0 {
		line, rest, _ := bytes.Cut(b, []byte{'\n'})
		if len(line) > 0 {
			fn(line)
		}
		b = rest
	}
}
