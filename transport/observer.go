package transport

import "time"

// Observer is told what the server does, for metrics. Its methods are
// called from every connection's goroutines at once, some on the path
// that delivers events, so an implementation must be safe for concurrent
// use, return at once and not allocate.
type Observer interface {
	// MessageReceived counts one client message on a socket; kind is its
	// type as sent, or "" when it did not decode. Kinds come from clients,
	// so an implementation must bound the values it keeps.
	MessageReceived(kind string)
	// EventSent counts one presence event written to a socket, delay
	// after the hub decided the change it tells of.
	EventSent(delay time.Duration)
	// SocketClosed counts a socket the server closed with code (see the
	// Close constants): slow consumers, missed pongs, refused tokens...
	SocketClosed(code int)
	// TokenRejected counts a missing or invalid token; via is "rest" or
	// "ws".
	TokenRejected(via string)
}

// nopObserver is the Observer of a server configured without one.
type nopObserver struct{}

func (nopObserver) MessageReceived(string)  {}
func (nopObserver) EventSent(time.Duration) {}
func (nopObserver) SocketClosed(int)        {}
func (nopObserver) TokenRejected(string)    {}
