// Package faultproxy is a TCP proxy for tests that fails the way networks
// fail: it can stop forwarding without closing anything (a peer that
// vanished, a half-open connection), or reset every connection at once.
// It runs on loopback between a client and a server (or the hub and its
// database), so that fault tests use real sockets and real timeouts.
//
// # Concurrency
//
// Each accepted connection is served by two copying goroutines, one per
// direction; Close stops the listener and every connection and waits for
// all of them. All methods are safe for concurrent use.
package faultproxy

import (
	"net"
	"sync"
	"sync/atomic"
)

// Proxy forwards connections from its own loopback address to a target.
type Proxy struct {
	ln     net.Listener
	target string

	blackhole atomic.Bool // drop bytes both ways, close nothing

	mu     sync.Mutex
	links  map[*link]struct{}
	closed bool

	wg sync.WaitGroup // the accept loop and every copying goroutine
}

type link struct {
	client, server net.Conn
	ends           atomic.Int32 // directions that have stopped
}

// Start listens on a loopback port and forwards to target (host:port).
func Start(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, links: make(map[*link]struct{})}
	p.wg.Go(p.accept)
	return p, nil
}

// Addr is the host:port to connect to instead of the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Blackhole makes the proxy drop every byte, both ways, on existing and
// new connections, while closing nothing: each side sees its writes
// accepted and nothing arrive, as when a phone loses its network without
// a FIN or a firewall silently drops a flow.
func (p *Proxy) Blackhole() { p.blackhole.Store(true) }

// Restore forwards bytes again.
func (p *Proxy) Restore() { p.blackhole.Store(false) }

// Reset closes every open connection, both sides, with a TCP reset, as a
// crashed middlebox or a killed peer would. New connections are still
// accepted.
func (p *Proxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for l := range p.links {
		l.reset()
	}
}

// Links is the number of connections currently open through the proxy.
func (p *Proxy) Links() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.links)
}

// Close stops accepting, closes every connection and waits for the
// proxy's goroutines. It is safe to call more than once.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		_ = p.ln.Close()
		for l := range p.links {
			l.reset()
		}
	}
	p.mu.Unlock()
	p.wg.Wait()
	return nil
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		l := &link{client: c, server: s}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			l.reset()
			return
		}
		p.links[l] = struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		go p.pipe(l, s, c)
		go p.pipe(l, c, s)
	}
}

// pipe copies src to dst, dropping the bytes while blackholed. When src
// ends it closes both sides, so that the other direction ends too; while
// blackholed it closes only src, since no FIN would get through either.
func (p *Proxy) pipe(l *link, dst, src net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.blackhole.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	_ = src.Close()
	if !p.blackhole.Load() {
		_ = dst.Close()
	}
	if l.ends.Add(1) == 2 {
		p.mu.Lock()
		delete(p.links, l)
		p.mu.Unlock()
	}
}

func (l *link) reset() {
	for _, c := range []net.Conn{l.client, l.server} {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // close sends RST, not FIN
		}
		_ = c.Close()
	}
}
