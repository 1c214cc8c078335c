package loadgen

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/presenced/presenced/hub"
	"github.com/presenced/presenced/transport"
)

// centrifugoProto speaks Centrifugo's JSON protocol (v6), mapped onto
// presence so that both servers do the same work for one change:
//
//   - user U watched is channel "uU"; a watcher subscribes to the channel
//     of each user it watches, all in one frame;
//   - a change of U is a publication by U's own socket into "uU" (a client
//     publish, as presenced's set_status comes over the user's socket),
//     whose data is the very bytes presenced sends its watchers for the
//     same change;
//   - Centrifugo delivers each publication to every subscriber as a push,
//     as presenced delivers the event to every watcher.
//
// The server must let clients subscribe and publish in channels without a
// namespace (bench/run.sh writes that configuration).
type centrifugoProto struct{}

// IDs of the commands whose replies the tool reads.
const (
	centrifugoConnectID = 1
	centrifugoPingID    = 2
	centrifugoFirstSub  = 3
)

func (centrifugoProto) path() string { return "/connection/websocket" }

func (centrifugoProto) header(string) http.Header { return nil }

// hello sends the connect command with the token and waits for its reply:
// until then Centrifugo has not checked the token, which presenced checks
// during the handshake.
func (centrifugoProto) hello(c *client, token string, timeout time.Duration) error {
	msg := `{"id":` + strconv.Itoa(centrifugoConnectID) + `,"connect":{"token":"` + token + `","name":"presence-bench"}}`
	if err := c.write([]byte(msg), timeout); err != nil {
		return err
	}
	_ = c.ws.SetReadDeadline(time.Now().Add(timeout))
	_, reply, err := c.ws.ReadMessage()
	if err != nil {
		return err
	}
	_ = c.ws.SetReadDeadline(time.Time{})
	if !bytes.Contains(reply, []byte(`"connect":{`)) {
		return fmt.Errorf("%w: %.200s", errConnectRefused, reply)
	}
	return nil
}

// errConnectRefused is a connect command answered with an error.
var errConnectRefused = errors.New("connect refused")

func channelOf(b []byte, user int64) []byte {
	return strconv.AppendInt(append(b, 'u'), user, 10)
}

func (centrifugoProto) subscribe(users []int64) ([]byte, int) {
	msg := make([]byte, 0, 48*len(users))
	for j, v := range users {
		if j > 0 {
			msg = append(msg, '\n')
		}
		msg = append(msg, `{"id":`...)
		msg = strconv.AppendInt(msg, int64(centrifugoFirstSub+j), 10)
		msg = append(msg, `,"subscribe":{"channel":"`...)
		msg = channelOf(msg, v)
		msg = append(msg, `"}}`...)
	}
	return msg, len(users)
}

// change publishes the event presenced would send for the same change:
// the same bytes reach every watcher of both servers.
func (centrifugoProto) change(buf []byte, user, seq int64) []byte {
	buf = append(buf, `{"id":`...)
	buf = strconv.AppendInt(buf, centrifugoFirstSub+seq, 10)
	buf = append(buf, `,"publish":{"channel":"`...)
	buf = channelOf(buf, user)
	buf = append(buf, `","data":`...)
	buf = append(buf, presenceEvent(user, seq)...)
	return append(buf, "}}"...)
}

// presenceEvent is what presenced sends the watchers of user when its
// set_status of change seq is applied.
func presenceEvent(user, seq int64) []byte {
	wait := int(seq)
	now := time.Now()
	return transport.EncodeEvent(hub.Presence{
		UserID: user, Username: "u" + strconv.FormatInt(user, 10), Online: true,
		Busy: true, BusySince: now, WaitTime: &wait, LastSeen: now,
	})
}

// ping is an RPC, which a server without an RPC proxy answers with an
// error: an answer all the same, from the socket's own command loop.
func (centrifugoProto) ping() []byte {
	return []byte(`{"id":` + strconv.Itoa(centrifugoPingID) + `,"rpc":{"method":"ping"}}`)
}

// pong answers the server's ping, an empty command; unanswered, the
// server closes the socket after its pong timeout.
func (centrifugoProto) pong() []byte { return []byte("{}") }

var (
	centrifugoPingReply = []byte(`{"id":` + strconv.Itoa(centrifugoPingID) + `,`)
	centrifugoPush      = []byte(`{"push":`)
	centrifugoPub       = []byte(`"pub":{`)
	centrifugoSubscribe = []byte(`"subscribe":{`)
	centrifugoError     = []byte(`"error":{`)
)

func (centrifugoProto) read(frame []byte, event func(user, seq int64)) frameInfo {
	var fi frameInfo
	eachLine(frame, func(line []byte) {
		switch {
		case len(line) == 2 && line[0] == '{' && line[1] == '}':
			fi.ping = true
		case bytes.HasPrefix(line, centrifugoPush):
			if !bytes.Contains(line, centrifugoPub) {
				return // a disconnect or another push without a publication
			}
			fi.events = true
			if user, rest, ok := intField(line, `"user_id":`); ok {
				if seq, _, ok := intField(rest, `"wait_time":`); ok {
					event(user, seq)
				}
			}
		case bytes.HasPrefix(line, centrifugoPingReply):
			fi.pong = true
		case bytes.Contains(line, centrifugoError):
			fi.errors++
		case bytes.Contains(line, centrifugoSubscribe):
			fi.subscribed++
		}
	})
	return fi
}

// CentrifugoConfig is the configuration of a Centrifugo v6 server that
// this tool can measure as it measures presenced: listening on addr (a
// loopback host:port), with the memory engine, connection tokens signed
// with the HS256 secret the tool signs with, clients allowed to subscribe
// to and publish in channels without a namespace, and no history,
// presence or join/leave messages (a change of status is the publication
// itself). Everything else keeps Centrifugo's defaults, as presenced keeps
// its own.
func CentrifugoConfig(addr string, secret []byte) ([]byte, error) {
	if err := checkLoopback(addr); err != nil {
		return nil, err
	}
	host, port, _ := net.SplitHostPort(addr)
	p, err := strconv.Atoi(port)
	if err != nil {
		return nil, fmt.Errorf("address %q: port %w", addr, err)
	}
	cfg := map[string]any{
		"http_server": map[string]any{"address": host, "port": p},
		"log":         map[string]any{"level": "error"},
		"engine":      map[string]any{"type": "memory"},
		"health":      map[string]any{"enabled": true},
		"client": map[string]any{
			"token":           map[string]any{"hmac_secret_key": string(secret)},
			"allowed_origins": []string{"*"},
		},
		"channel": map[string]any{
			"without_namespace": map[string]any{
				"allow_subscribe_for_client": true,
				"allow_publish_for_client":   true,
			},
		},
	}
	return json.MarshalIndent(cfg, "", "  ")
}
