package transport

import "slices"

// WebSocket close codes sent by presenced. Codes 4000–4099 tell a client
// to reconnect (with backoff); codes 4400–4499 tell it not to reconnect
// until something changes (a new token, fewer connections, a fixed
// client). The standard codes keep their RFC 6455 meanings.
const (
	// CloseGoingAway (1001): the server is shutting down; reconnect.
	CloseGoingAway = 1001
	// CloseUnsupportedData (1003): a binary frame; only JSON text is read.
	CloseUnsupportedData = 1003
	// CloseInvalidPayload (1007): a text frame that is not valid UTF-8.
	CloseInvalidPayload = 1007
	// ClosePolicyViolation (1008): refused by policy.
	ClosePolicyViolation = 1008
	// CloseMessageTooBig (1009): a frame over the read limit.
	CloseMessageTooBig = 1009
	// CloseInternalError (1011): the server could not take the connection
	// for a fault of its own (the store refused this user's connect);
	// reconnect with backoff.
	CloseInternalError = 1011
	// CloseTryAgainLater (1013): the storage cannot take the connection
	// now (too many changes wait for the database); reconnect with backoff.
	CloseTryAgainLater = 1013

	// CloseSlowConsumer: the client did not read fast enough and its send
	// queue overflowed; reconnect and resubscribe.
	CloseSlowConsumer = 4000
	// ClosePongTimeout: no pong arrived within the deadline after a ping.
	ClosePongTimeout = 4001
	// CloseTokenExpired: the token expired without a refresh; reconnect
	// with a fresh token.
	CloseTokenExpired = 4002

	// CloseBadRequest: the client broke the protocol; do not reconnect.
	CloseBadRequest = 4400
	// CloseInvalidToken: the token is missing, malformed, expired or
	// forged; do not reconnect without a new one.
	CloseInvalidToken = 4401
	// CloseUserMismatch: the token is not this socket's user's: a refresh
	// carried a token of another user, or a service token, which has no
	// socket, opened it or came in a refresh; do not reconnect without a
	// token of the right user.
	CloseUserMismatch = 4403
	// CloseTooManyConnections: the user already holds the most
	// connections allowed; do not reconnect.
	CloseTooManyConnections = 4409
	// CloseRateLimited: the client stayed over the message rate; back off
	// (several seconds, with jitter), then reconnect. It is the one code
	// in 4400–4499 after which reconnecting is right: the client's
	// messages, not its credentials, were the trouble.
	CloseRateLimited = 4429
)

// closeCodes are the codes above, each once.
var closeCodes = []int{
	CloseGoingAway, CloseUnsupportedData, CloseInvalidPayload, ClosePolicyViolation, CloseMessageTooBig,
	CloseInternalError, CloseTryAgainLater,
	CloseSlowConsumer, ClosePongTimeout, CloseTokenExpired,
	CloseBadRequest, CloseInvalidToken, CloseUserMismatch, CloseTooManyConnections, CloseRateLimited,
}

// CloseCodes returns every code the server closes sockets with, so that
// whoever counts them (metrics) has a series for each and none is missed
// when one is added; a test holds the list to the constants.
func CloseCodes() []int { return slices.Clone(closeCodes) }

// messageTypes are the types of the messages a client may send, each
// once: the cases of conn.handle.
var messageTypes = []string{"subscribe", "unsubscribe", "set_status", "refresh", "ping"}

// MessageTypes returns the type of every message a client may send on a
// socket, so that whoever counts them (metrics) has a series for each; a
// test holds the list to the messages the socket handles.
func MessageTypes() []string { return slices.Clone(messageTypes) }
