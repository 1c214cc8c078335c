package transport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"github.com/presenced/presenced/hub"
)

// clientMessage is any message a client sends. Fields stay raw until the
// type says which ones matter, so that each error can name its field.
type clientMessage struct {
	Type    json.RawMessage `json:"type"`
	ID      json.RawMessage `json:"id"`
	UserIDs json.RawMessage `json:"user_ids"`
	Token   json.RawMessage `json:"token"`
	statusFields
}

// DecodeClientMessage parses one client frame and returns its type. On
// error, msg.ID is still set when the frame carried a usable id, so the
// error can be answered with it.
func DecodeClientMessage(data []byte) (msg clientMessage, typ string, err error) {
	if err := json.Unmarshal(data, &msg); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field == "" {
			return clientMessage{}, "", errors.New("a message must be a JSON object")
		}
		return clientMessage{}, "", fmt.Errorf("message is not valid JSON: %v", err)
	}
	if msg.ID != nil {
		if c := msg.ID[0]; c != '"' && c != '-' && (c < '0' || c > '9') {
			msg.ID = nil
			return msg, "", errors.New("id must be a string or a number")
		}
	}
	if msg.Type == nil {
		return msg, "", errors.New(`type is required, e.g. {"type":"subscribe","user_ids":[1,2]}`)
	}
	if err := json.Unmarshal(msg.Type, &typ); err != nil {
		return msg, "", fmt.Errorf("type must be a string, not %s", describe(msg.Type))
	}
	return msg, typ, nil
}

// Server-to-client messages other than presence events.
type (
	subscribedReply struct {
		Type      string          `json:"type"`
		ID        json.RawMessage `json:"id,omitempty"`
		Presences []presenceJSON  `json:"presences"`
	}
	unsubscribedReply struct {
		Type    string          `json:"type"`
		ID      json.RawMessage `json:"id,omitempty"`
		UserIDs []int64         `json:"user_ids"`
	}
	statusReply struct {
		Type   string          `json:"type"`
		ID     json.RawMessage `json:"id,omitempty"`
		Status statusJSON      `json:"status"`
	}
	simpleReply struct {
		Type   string          `json:"type"`
		ID     json.RawMessage `json:"id,omitempty"`
		Detail string          `json:"detail,omitempty"`
	}
)

func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("transport: encode %T: %v", v, err)) // only our own types get here
	}
	return b
}

// conn is one WebSocket connection.
type conn struct {
	s    *Server
	ws   *websocket.Conn
	sess *hub.Session
	id   Identity
	log  *slog.Logger // carries conn_id, request_id and user_id

	readerDone chan struct{} // closed by the reader when it ends
	// closeCode and closeText are set by the reader before readerDone is
	// closed; the writer reads them after.
	closeCode int
	closeText string
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	token := bearerToken(r)
	if token == "" {
		// Browsers cannot set headers on a WebSocket.
		token = r.URL.Query().Get("access_token")
	}
	id, authErr := s.verify(token)
	if authErr != nil && !websocket.IsWebSocketUpgrade(r) {
		unauthorized(w)
		return
	}
	s.conns.Add(1)
	defer s.conns.Done()
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	// A browser cannot read the status of a failed handshake, so a refusal
	// is sent as a close code that says whether to try again.
	if authErr != nil {
		s.obs.TokenRejected("ws")
		s.closeNow(ws, CloseInvalidToken, "invalid or expired token")
		return
	}
	sess, err := s.hub.Connect(context.Background(), id.UserID, id.Username)
	switch {
	case errors.Is(err, hub.ErrLimit):
		s.closeNow(ws, CloseTooManyConnections, "too many connections for this user")
		return
	case err != nil:
		s.closeNow(ws, CloseGoingAway, "server is shutting down")
		return
	}
	ri := infoOf(r.Context())
	ri.userID, ri.connID = id.UserID, sess.ID
	c := &conn{s: s, ws: ws, sess: sess, id: id, readerDone: make(chan struct{}),
		log: s.log.With("conn_id", sess.ID, "request_id", ri.id, "user_id", id.UserID)}
	c.log.Debug("socket open")
	s.conns.Go(c.writeLoop)
	c.readLoop()
}

func (s *Server) closeNow(ws *websocket.Conn, code int, text string) {
	s.obs.SocketClosed(code)
	_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(s.cfg.WriteTimeout))
	_ = ws.Close()
}

// readLoop reads client messages until the socket fails or the writer
// closes it, then tells the hub and the writer.
func (c *conn) readLoop() {
	var readErr error
	defer func() {
		c.logClosed(readErr)
		close(c.readerDone)
		c.s.hub.Disconnect(c.sess)
	}()
	cfg := &c.s.cfg
	c.ws.SetReadLimit(cfg.MaxMessageBytes)
	// Any frame, pongs included, proves the peer alive until the next
	// ping has had its full deadline.
	alive := func() { _ = c.ws.SetReadDeadline(time.Now().Add(cfg.PingInterval + cfg.PongTimeout)) }
	alive()
	c.ws.SetPongHandler(func(string) error {
		alive()
		c.s.hub.Touch(c.sess)
		return nil
	})
	for {
		kind, data, err := c.ws.ReadMessage()
		if err != nil {
			readErr = err
			var netErr net.Error
			if errors.As(err, &netErr) && netErr.Timeout() {
				c.closeCode, c.closeText = ClosePongTimeout, "no pong within the deadline"
			}
			return
		}
		alive()
		if kind != websocket.TextMessage {
			c.closeCode, c.closeText = CloseUnsupportedData, "binary frames are not supported; send JSON text"
			return
		}
		// encoding/json would quietly replace bad bytes; refuse them.
		if !utf8.Valid(data) {
			c.closeCode, c.closeText = CloseInvalidPayload, "text frame is not valid UTF-8"
			return
		}
		if !c.handle(data) {
			return
		}
	}
}

// logClosed writes the socket's last line: who ended it and with which
// close code. readErr is the reader's last error; a client's own close
// frame shows there with its code.
func (c *conn) logClosed(readErr error) {
	code, by := c.closeCode, "server"
	if code == 0 {
		switch c.sess.Reason() {
		case hub.CloseSlowConsumer:
			code = CloseSlowConsumer
		case hub.CloseShutdown:
			code = CloseGoingAway
		default:
			by = "client"
			var ce *websocket.CloseError
			if errors.As(readErr, &ce) {
				code = ce.Code
			}
		}
	}
	c.log.Debug("socket closed", "by", by, "code", code, "err", readErr)
}

// handle answers one message; false ends the connection.
func (c *conn) handle(data []byte) bool {
	msg, typ, err := DecodeClientMessage(data)
	c.s.obs.MessageReceived(typ)
	if err != nil {
		return c.replyError(msg.ID, err)
	}
	ctx := context.Background()
	switch typ {
	case "ping":
		return c.send(encode(simpleReply{Type: "pong", ID: msg.ID}))
	case "subscribe":
		ids, err := parseIDArray(msg.UserIDs, c.s.cfg.MaxIDsPerRequest)
		if err != nil {
			return c.replyError(msg.ID, err)
		}
		err = c.s.hub.Subscribe(ctx, c.sess, ids, func(ps []hub.Presence) hub.Message {
			return hub.Message{Data: encode(subscribedReply{Type: "subscribed", ID: msg.ID, Presences: toPresencesJSON(ps)})}
		})
		switch {
		case errors.Is(err, hub.ErrLimit):
			return c.replyError(msg.ID, err)
		case err != nil:
			return false
		}
		return true
	case "unsubscribe":
		ids, err := parseIDArray(msg.UserIDs, c.s.cfg.MaxIDsPerRequest)
		if err != nil {
			return c.replyError(msg.ID, err)
		}
		if err := c.s.hub.Unsubscribe(ctx, c.sess, ids); err != nil {
			return false
		}
		return c.send(encode(unsubscribedReply{Type: "unsubscribed", ID: msg.ID, UserIDs: ids}))
	case "set_status":
		up, err := msg.statusFields.update()
		if err != nil {
			return c.replyError(msg.ID, err)
		}
		st, err := c.s.hub.SetStatus(ctx, c.id.UserID, c.id.Username, up, false)
		if err != nil {
			return false
		}
		return c.send(encode(statusReply{Type: "status", ID: msg.ID, Status: toStatusJSON(st)}))
	default:
		return c.replyError(msg.ID, fmt.Errorf("unknown message type %q: expected subscribe, unsubscribe, set_status or ping", truncate(typ, 32)))
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// replyError answers a bad message; the connection lives on.
func (c *conn) replyError(id json.RawMessage, err error) bool {
	return c.send(encode(simpleReply{Type: "error", ID: id, Detail: err.Error()}))
}

// send queues a reply; a full queue ends the connection as a slow consumer.
func (c *conn) send(data []byte) bool {
	if c.sess.Send(hub.Message{Data: data}) {
		return true
	}
	if c.sess.Reason() == hub.CloseNone {
		c.closeCode, c.closeText = CloseSlowConsumer, "send queue overflowed: the client reads too slowly"
	}
	return false
}

// writeLoop writes queued messages and pings until the session or the
// reader ends, then closes the socket.
func (c *conn) writeLoop() {
	defer c.ws.Close()
	cfg := &c.s.cfg
	ping := time.NewTicker(cfg.PingInterval)
	defer ping.Stop()
	var batch []hub.Message
	for {
		select {
		case <-c.sess.Ready():
			batch = c.sess.Next(batch[:0])
			err := c.write(batch)
			clear(batch) // let the shared event bytes go
			if err != nil {
				return
			}
		case <-ping.C:
			if c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(cfg.WriteTimeout)) != nil {
				return
			}
		case <-c.sess.Done():
			switch c.sess.Reason() {
			case hub.CloseSlowConsumer:
				c.closeGracefully(CloseSlowConsumer, "send queue overflowed: the client reads too slowly")
			case hub.CloseShutdown:
				c.closeGracefully(CloseGoingAway, "server is shutting down")
			default:
				// The reader ended the session; it says how to close.
				<-c.readerDone
				c.closeAfterReader()
			}
			return
		case <-c.readerDone:
			c.closeAfterReader()
			return
		}
	}
}

// closeAfterReader sends the close code the reader chose, if any.
func (c *conn) closeAfterReader() {
	if c.closeCode != 0 {
		c.s.closeNow(c.ws, c.closeCode, c.closeText)
	}
}

// closeGracefully sends a close frame and gives the client a moment to
// answer it, so that the frame is not lost to a reset.
func (c *conn) closeGracefully(code int, text string) {
	c.s.obs.SocketClosed(code)
	deadline := time.Now().Add(c.s.cfg.WriteTimeout)
	if c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), deadline) != nil {
		return
	}
	_ = c.ws.UnderlyingConn().SetReadDeadline(time.Now().Add(time.Second))
	<-c.readerDone
}

// write sends a batch; consecutive events go out as one JSON array frame.
func (c *conn) write(batch []hub.Message) error {
	_ = c.ws.SetWriteDeadline(time.Now().Add(c.s.cfg.WriteTimeout))
	for i := 0; i < len(batch); {
		j := i + 1
		if batch[i].Event {
			for j < len(batch) && batch[j].Event {
				j++
			}
		}
		if err := c.writeFrame(batch[i:j]); err != nil {
			return err
		}
		i = j
	}
	now := time.Now()
	for i := range batch {
		if batch[i].Event {
			c.s.obs.EventSent(now.Sub(batch[i].At))
		}
	}
	return nil
}

func (c *conn) writeFrame(msgs []hub.Message) error {
	if len(msgs) == 1 {
		return c.ws.WriteMessage(websocket.TextMessage, msgs[0].Data)
	}
	w, err := c.ws.NextWriter(websocket.TextMessage)
	if err != nil {
		return err
	}
	sep := byte('[')
	for _, m := range msgs {
		if _, err := w.Write([]byte{sep}); err != nil {
			return err
		}
		if _, err := w.Write(m.Data); err != nil {
			return err
		}
		sep = ','
	}
	if _, err := w.Write([]byte{']'}); err != nil {
		return err
	}
	return w.Close()
}
