package transport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

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

// set fills the member called name; names match exactly, and a known one
// given twice is refused. Other names are ignored.
func (m *clientMessage) set(name string, value json.RawMessage) error {
	switch name {
	case "type":
		return setOnce(&m.Type, name, value)
	case "id":
		return setOnce(&m.ID, name, value)
	case "user_ids":
		return setOnce(&m.UserIDs, name, value)
	case "token":
		return setOnce(&m.Token, name, value)
	}
	_, err := m.statusFields.set(name, value)
	return err
}

// DecodeClientMessage parses one client frame and returns its type. On
// error, msg.ID is still set when the frame carried a usable id, so the
// error can be answered with it.
func DecodeClientMessage(data []byte) (msg clientMessage, typ string, err error) {
	if err := decodeObject(data, msg.set); err != nil {
		if errors.Is(err, errNotObject) {
			return clientMessage{}, "", errors.New("a message must be a JSON object")
		}
		id := msg.ID
		if id != nil && id[0] != '"' && id[0] != '-' && (id[0] < '0' || id[0] > '9') {
			id = nil
		}
		return clientMessage{ID: id}, "", fmt.Errorf("message is %v", err)
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
	refreshedReply struct {
		Type      string          `json:"type"`
		ID        json.RawMessage `json:"id,omitempty"`
		ExpiresAt *time.Time      `json:"expires_at"`
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
	// writer is the state of the writer goroutine (writerIdle, ...). One
	// runs at a time, and the fields below are its own: each writer takes
	// them over from the one before through writer.
	writer     atomic.Int32
	pingDue    atomic.Bool   // set by the ping timer
	pingSent   atomic.Bool   // a ping went out and its pong has not come
	ping       *time.Timer   // the next ping; an AfterFunc that wakes the session
	expired    *time.Timer   // the token's end (validUntil); the same
	validUntil time.Time     // the token's end, as the writer knows it
	batch      []hub.Message // reused between writes while the writer runs
	wrote      bool          // something was written in this ping interval

	// reqID is the request id of the upgrade, for the socket's own log
	// lines. They are at debug level: a logger carrying the socket's
	// attributes, made for every socket, cost an idle one about 200 bytes.
	reqID string

	readerDone chan struct{} // closed by the reader when it ends, which then wakes the writer
	// expiry carries a refreshed token's end from the reader to the
	// writer, which owns the timer. Capacity 1; the reader replaces an
	// unread value and wakes the writer.
	expiry chan time.Time

	status statusQueue // set_status messages on their way to the hub
	watch  watchState  // what the watch policy granted

	// ctx ends with the socket (the reader or the writer ending), so that
	// a watch policy asked meanwhile stops waiting for its backend.
	ctx    context.Context
	cancel context.CancelFunc

	// Owned by the reader.
	msgLimit *rate.Limiter // nil: no limit
	strikes  int           // messages over the rate since overSince
	badRun   int           // invalid messages since the last valid one
	// overSince is when the current run of messages over the rate began;
	// zero when none has come for a rate warning window.
	overSince time.Time

	// closeCode and closeText are set by the reader before readerDone is
	// closed; the writer reads them after.
	closeCode int
	closeText string
	final     []hub.Message // replies queued when the reader chose to close
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	// Limits come before the token check, which is the costly part.
	now := time.Now()
	if ok, wait := s.socketIPLimit.allow(clientAddr(r, s.cfg.ClientIPHeader), now); !ok {
		tooMany(w, http.StatusTooManyRequests, wait, fmt.Sprintf(
			"Too many new connections from this address: at most %g per second; retry after the time in Retry-After", s.cfg.SocketsPerSecondPerIP))
		return
	}
	if s.socketAllLimit != nil && !s.socketAllLimit.AllowN(now, 1) {
		tooMany(w, http.StatusServiceUnavailable, retryDelay(s.socketAllLimit, now),
			"The server is admitting connections at a steady pace; retry after the time in Retry-After, with jitter")
		return
	}
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
	device, deviceErr := deviceOf(r, true)
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
		reason := "invalid or expired token"
		var claim claimError
		if errors.As(authErr, &claim) {
			reason = truncate(claim.Error(), 120) // a close reason holds at most 123 bytes
		}
		s.closeNow(ws, CloseInvalidToken, reason)
		return
	}
	if id.Service != "" {
		// A service acts for users over REST; a socket would make it a
		// user of its own, with a status and a device.
		s.closeNow(ws, CloseUserMismatch, "a service token cannot open a socket: sockets are users'")
		return
	}
	if deviceErr != nil {
		s.closeNow(ws, CloseBadRequest, deviceErr.Error())
		return
	}
	sess, err := s.hub.Connect(context.Background(), hub.Client{UserID: id.UserID, Username: id.Username, Device: device})
	switch {
	case errors.Is(err, hub.ErrLimit):
		s.closeNow(ws, CloseTooManyConnections, "too many connections for this user")
		return
	case errors.Is(err, hub.ErrUnavailable):
		s.closeNow(ws, CloseTryAgainLater, "storage is unavailable; try again later")
		return
	case errors.Is(err, hub.ErrClosed):
		s.closeNow(ws, CloseGoingAway, "server is shutting down")
		return
	case err != nil:
		// The store refused this user's connect for a reason of its own
		// (not an outage, which is ErrUnavailable): the server is at
		// fault, and saying it shuts down would send the client to
		// another node for nothing.
		s.log.Error("socket refused: the store did not take the connect", "user_id", id.UserID, "err", err)
		s.closeNow(ws, CloseInternalError, "internal error: the server could not record this connection; try again later")
		return
	}
	ri := infoOf(r.Context())
	ri.userID, ri.connID = id.UserID, sess.ID
	c := &conn{s: s, ws: ws, sess: sess, id: id, readerDone: make(chan struct{}), expiry: make(chan time.Time, 1), reqID: ri.id,
		validUntil: id.ValidUntil}
	c.watch.who = id
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if s.cfg.MessagesPerSecond > 0 {
		c.msgLimit = rate.NewLimiter(rate.Limit(s.cfg.MessagesPerSecond), s.cfg.MessageBurst)
	}
	c.logDebug("socket open")
	// The reader gets a goroutine of its own so that this handler returns:
	// net/http then lets go of the request, its 4 KiB read and write
	// buffers and a deep stack, which would otherwise stay with every idle
	// socket for its whole life.
	// The writer runs only while there is something to write: every Wake
	// of the session starts it when none runs. It runs once now, for
	// anything queued or any end that came before the hook was set.
	c.ping = time.AfterFunc(s.cfg.PingInterval, func() { c.pingDue.Store(true); c.sess.Wake() })
	c.expired = time.AfterFunc(untilExpiry(c.validUntil), c.sess.Wake)
	sess.OnWake(c.startWriter)
	c.writer.Store(writerIdle)
	c.startWriter()
	s.conns.Go(c.readLoop)
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
		c.stopStatuses()
		c.stopWatches()
		c.logClosed(readErr)
		if c.closeCode != 0 {
			// Replies still queued (a rate-limit warning, say) go out
			// before the close frame that they explain.
			c.final = c.sess.Next(nil)
		}
		close(c.readerDone)
		c.sess.Wake()
		c.s.hub.Disconnect(c.sess)
	}()
	cfg := &c.s.cfg
	c.ws.SetReadLimit(cfg.MaxMessageBytes)
	// Any frame, pongs included, proves the peer alive until the next
	// ping has had its full deadline.
	alive := func() { _ = c.ws.SetReadDeadline(time.Now().Add(cfg.PingInterval + cfg.PongTimeout)) }
	alive()
	// Control frames count against the message rate like any message:
	// each ping asks for a pong to be written and each pong for a
	// request to the hub. One over the rate goes unanswered (a ping) or
	// proves nothing to the hub (a pong); staying over the rate closes
	// with 4429, as for messages. The pong that answers the server's own
	// ping is not the client's doing and costs nothing, so that a client
	// that sends at the rate is not pushed over it by the heartbeat.
	c.ws.SetPongHandler(func(string) error {
		alive()
		if !c.pingSent.Swap(false) && !c.underRate() {
			return c.controlOverRate()
		}
		c.s.hub.Touch(c.sess)
		return nil
	})
	c.ws.SetPingHandler(func(data string) error {
		alive()
		if !c.underRate() {
			return c.controlOverRate()
		}
		err := c.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(cfg.WriteTimeout))
		if err != nil && !errors.Is(err, websocket.ErrCloseSent) {
			var netErr net.Error
			if !errors.As(err, &netErr) || !netErr.Timeout() {
				return err
			}
		}
		return nil
	})
	// A client that closes hears the answer to its close frame only once
	// the hub has let go of the socket. A REST request it sends next (a
	// phone going to the background keeps its device alive so) then comes
	// after the socket's end, which would otherwise end that request's
	// liveness as well.
	c.ws.SetCloseHandler(func(code int, _ string) error {
		c.stopStatuses()
		c.s.hub.Disconnect(c.sess)
		if code == websocket.CloseNoStatusReceived {
			code = websocket.CloseNormalClosure
		}
		_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, ""), time.Now().Add(cfg.WriteTimeout))
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
		msg, typ, err := DecodeClientMessage(data)
		c.s.obs.MessageReceived(typ)
		bad := c.badRun
		if over := !c.underRate(); over {
			if !c.strike() {
				return
			}
			if err == nil && typ == "set_status" {
				if !c.handle(msg, typ, nil, true) {
					return
				}
			} else if !c.send(encode(simpleReply{Type: "error", ID: msg.ID, Detail: c.rateDetail()})) {
				return
			}
			continue
		}
		if !c.handle(msg, typ, err, false) {
			return
		}
		if c.badRun == bad {
			c.badRun = 0
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
	c.logDebug("socket closed", "by", by, "code", code, "err", readErr)
}

// logDebug writes one of the socket's lines, with conn_id, request_id and
// user_id, when the log takes debug lines.
func (c *conn) logDebug(msg string, args ...any) {
	if c.s.log.Enabled(context.Background(), slog.LevelDebug) {
		c.s.log.Debug(msg, append([]any{"conn_id", c.sess.ID, "request_id", c.reqID, "user_id", c.id.UserID}, args...)...)
	}
}

// underRate takes a token from the socket's message rate, and reports
// whether there was one.
func (c *conn) underRate() bool {
	return c.msgLimit == nil || c.msgLimit.AllowN(time.Now(), 1)
}

// strike counts a message over the rate. A set_status over it is
// merged with the updates still waiting, any other message is dropped
// and answered with an error; a client that stays over the rate, with
// more than a warning window's worth of messages (ten seconds at the
// rate, and at least two bursts) over it within that window, is closed
// with 4429. strike reports false then.
func (c *conn) strike() bool {
	now := time.Now()
	if c.overSince.IsZero() || now.Sub(c.overSince) > rateWarningWindow {
		c.overSince, c.strikes = now, 0
	}
	c.strikes++
	cfg := &c.s.cfg
	if c.strikes > max(2*cfg.MessageBurst, int(cfg.MessagesPerSecond*rateWarningWindow.Seconds())) {
		c.closeCode, c.closeText = CloseRateLimited, "too many messages: the client stayed over the rate limit"
		return false
	}
	return true
}

// controlOverRate handles a ping or pong over the message rate: it is
// dropped, and the error that ends the read loop is returned once the
// socket has stayed over the rate (strike has then set 4429).
func (c *conn) controlOverRate() error {
	if !c.strike() {
		return errControlFlood
	}
	return nil
}

var errControlFlood = errors.New("control frames over the message rate")

func (c *conn) rateDetail() string {
	cfg := &c.s.cfg
	return fmt.Sprintf("rate limit: at most %g messages per second (bursts of %d); this message was dropped",
		cfg.MessagesPerSecond, cfg.MessageBurst)
}

// rateWarningWindow is the span over which messages over the rate are
// counted towards a close; a quiet spell as long starts the count again.
const rateWarningWindow = 10 * time.Second

// handle answers one decoded message (or the error that decoding it
// gave); over says it came over the message rate. false ends the
// connection.
func (c *conn) handle(msg clientMessage, typ string, err error, over bool) bool {
	if err != nil {
		return c.replyError(msg.ID, err)
	}
	switch typ {
	case "ping":
		return c.send(encode(simpleReply{Type: "pong", ID: msg.ID}))
	case "subscribe":
		ids, err := parseIDArray(msg.UserIDs, c.s.cfg.MaxIDsPerRequest)
		if err != nil {
			return c.replyError(msg.ID, err)
		}
		return c.subscribe(ids, msg.ID)
	case "unsubscribe":
		ids, err := parseIDArray(msg.UserIDs, c.s.cfg.MaxIDsPerRequest)
		if err != nil {
			return c.replyError(msg.ID, err)
		}
		if err := c.unsubscribe(ids); err != nil {
			return false
		}
		return c.send(encode(unsubscribedReply{Type: "unsubscribed", ID: msg.ID, UserIDs: ids}))
	case "refresh":
		return c.refresh(msg)
	case "set_status":
		up, err := msg.statusFields.update()
		if err != nil {
			return c.replyError(msg.ID, err)
		}
		c.queueStatus(up, msg.ID, over)
		return true
	default:
		return c.replyError(msg.ID, fmt.Errorf("unknown message type %q: expected subscribe, unsubscribe, set_status, refresh or ping", truncate(typ, 32)))
	}
}

// refresh replaces the socket's token with a newer one of the same user,
// so that the socket outlives the first token's exp. A bad token is an
// error and the old one stays in force; a token of another user closes
// the socket with 4403, since its subscriptions and status belong to the
// first user.
func (c *conn) refresh(msg clientMessage) bool {
	var token string
	if json.Unmarshal(msg.Token, &token) != nil || token == "" {
		return c.replyError(msg.ID, errors.New(`token is required: {"type":"refresh","token":"<new token>"}`))
	}
	id, err := c.s.verify(token)
	var claim claimError
	if errors.As(err, &claim) {
		return c.replyError(msg.ID, fmt.Errorf("%v; the connection keeps its current token until that expires", claim))
	}
	if err != nil {
		return c.replyError(msg.ID, errors.New("invalid or expired token; the connection keeps its current token until that expires"))
	}
	if id.Service != "" {
		c.closeCode, c.closeText = CloseUserMismatch, "the refreshed token is a service token: sockets are users'"
		return false
	}
	if id.UserID != c.id.UserID {
		c.closeCode, c.closeText = CloseUserMismatch, "the refreshed token belongs to another user"
		return false
	}
	c.refreshed(id)
	select { // replace any value the writer has not taken yet
	case <-c.expiry:
	default:
	}
	c.expiry <- id.ValidUntil
	c.sess.Wake()
	return c.send(encode(refreshedReply{Type: "refreshed", ID: msg.ID, ExpiresAt: wireTime(id.ValidUntil)}))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// replyError answers a bad message; the connection lives on, unless the
// client has sent nothing but bad messages for MaxBadMessages in a row:
// such a client is broken, and answering it forever only feeds its loop.
func (c *conn) replyError(id json.RawMessage, err error) bool {
	if !c.send(encode(simpleReply{Type: "error", ID: id, Detail: err.Error()})) {
		return false
	}
	c.badRun++
	if limit := c.s.cfg.MaxBadMessages; limit > 0 && c.badRun >= limit {
		c.closeCode, c.closeText = CloseBadRequest, fmt.Sprintf("%d invalid messages in a row", c.badRun)
		return false
	}
	return true
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

// The states of a socket's writer goroutine (conn.writer).
const (
	writerNotYet  int32 = iota // the socket is being set up
	writerIdle                 // nothing to write: no writer goroutine
	writerRunning              // one writer goroutine runs
	writerDone                 // the socket is closed; none starts again
)

// startWriter starts the writer goroutine unless one runs. The session
// calls it at every Wake (a message queued, the session's end, the reader's
// end, a refresh, the timers), on the goroutine that woke it.
func (c *conn) startWriter() {
	if c.writer.CompareAndSwap(writerIdle, writerRunning) {
		c.s.conns.Go(c.writeLoop)
	}
}

// writeLoop writes queued messages and pings until the session or the
// reader ends, then closes the socket. It runs only while the socket has
// something to write: after a ping interval in which it wrote nothing it
// ends, and the next Wake starts it again. An idle socket so holds no
// writer goroutine, whose stack was 4 KiB of the 19.8 kB an idle socket
// cost (BENCHMARKS.md, "Changes, each measured before and after").
//
// It waits on the session's Ready alone, which everything that needs the
// writer signals: a message, the session's end, and through Wake the
// reader's end, a refreshed token and the timers of the ping and of the
// token's end. It wakes once per delivery, and a select over a channel for
// each of those reasons (six) cost about a fifth of the server's CPU in
// fan-out, locking and queueing on every channel at every wake.
func (c *conn) writeLoop() {
	if !c.writeUntilIdle() {
		return
	}
	c.writer.Store(writerDone)
	c.ping.Stop()
	c.expired.Stop()
	c.cancel()
	_ = c.ws.Close()
}

// writeUntilIdle is the writer's work; it reports true once the socket is
// to be closed, false when it ends for want of anything to write.
func (c *conn) writeUntilIdle() (closing bool) {
	cfg := &c.s.cfg
	for {
		// One-case selects: each a check without a lock.
		select {
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
			return true
		default:
		}
		select {
		case <-c.readerDone:
			c.closeAfterReader()
			return true
		default:
		}
		select {
		case at := <-c.expiry:
			c.validUntil = at
			c.expired.Reset(untilExpiry(at))
		default:
		}
		if !c.validUntil.IsZero() && !time.Now().Before(c.validUntil) {
			c.closeGracefully(CloseTokenExpired, "token expired: reconnect with a fresh token, or send refresh before it expires")
			return true
		}
		c.batch = c.sess.Next(c.batch[:0])
		if len(c.batch) > 0 {
			err := c.write(c.batch)
			clear(c.batch) // let the shared event bytes go
			if err != nil {
				return true
			}
			c.wrote = true
		}
		if c.pingDue.Swap(false) {
			// Marked before it goes: its pong may be read before the
			// write returns.
			c.pingSent.Store(true)
			if c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(cfg.WriteTimeout)) != nil {
				return true
			}
			c.ping.Reset(cfg.PingInterval)
			c.wrote = false // a new interval
		}
		if !c.wrote {
			// Nothing written in this ping interval: end, unless a Wake
			// came meanwhile, which found this goroutine still running.
			c.batch = nil
			c.writer.Store(writerIdle)
			select {
			case <-c.sess.Ready():
				if !c.writer.CompareAndSwap(writerIdle, writerRunning) {
					c.sess.Wake() // for the writer that started meanwhile
					return false
				}
				continue
			default:
				return false
			}
		}
		<-c.sess.Ready()
	}
}

// closeAfterReader sends the replies the reader left and the close code
// it chose, if any.
func (c *conn) closeAfterReader() {
	if c.closeCode != 0 {
		if c.write(c.final) != nil {
			return
		}
		c.s.closeNow(c.ws, c.closeCode, c.closeText)
	}
}

// untilExpiry is the time left before a token's end; a token without one
// (which the verifier never accepts) is treated as lasting.
func untilExpiry(at time.Time) time.Duration {
	if at.IsZero() {
		return math.MaxInt64
	}
	return time.Until(at)
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
	sep := arrayOpen
	for _, m := range msgs {
		if _, err := w.Write(sep); err != nil {
			return err
		}
		if _, err := w.Write(m.Data); err != nil {
			return err
		}
		sep = arrayComma
	}
	if _, err := w.Write(arrayClose); err != nil {
		return err
	}
	return w.Close()
}

// The punctuation of a packed frame, shared so that writing it allocates
// nothing: a one-byte slice literal passed to Write escapes to the heap,
// once per event.
var (
	arrayOpen  = []byte{'['}
	arrayComma = []byte{','}
	arrayClose = []byte{']'}
)
