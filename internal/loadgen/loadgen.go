package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"github.com/presenced/presenced/auth"
)

// Config says where the server is and how to reach it. The zero value of
// each optional field means the default given beside it.
type Config struct {
	// Addrs are the host:port of the servers under test, all on loopback.
	// Client i uses Addrs[i % len(Addrs)], so several nodes of a cluster
	// share the load. Required.
	Addrs []string
	// Secret is the server's HS256 secret (-jwt-secret); the tool signs
	// one token per user with it. Required.
	Secret []byte
	// Sources is how many loopback source addresses (127.0.0.2,
	// 127.0.0.3, ...) the connections are spread over; each allows about
	// 28,000 connections to one server port. Default 8.
	Sources int
	// Concurrency is how many connections are opened at once. Default 64.
	Concurrency int
	// ConnectRate, when positive, paces new connections to this many a
	// second, for servers that must write each one to a database; zero
	// opens them as fast as Concurrency allows.
	ConnectRate float64
	// UserBase is added to every user id, so that runs against one server
	// do not share users. Default 1,000,000.
	UserBase int64
	// ServerPID, when not zero, is the server's process id; its resident
	// memory is read from /proc/PID/status and the CPU time it spends on
	// the measured phase from /proc/PID/stat.
	ServerPID int
	// WaitTimeout bounds each wait for the server: a connection, a
	// subscription, a reply, stragglers after the last change. Default 30s.
	WaitTimeout time.Duration
	// Buckets adds the raw histogram counts to each latency, for merging
	// the results of several processes.
	Buckets bool
	// Progress, when not nil, receives a line about each phase.
	Progress io.Writer
	// Protocol is the server's protocol: Presenced (the default) or
	// Centrifugo, for measuring the two servers alike.
	Protocol string

	proto proto // what Protocol names, set by setDefaults
}

func (c *Config) setDefaults() error {
	if len(c.Addrs) == 0 {
		return errors.New("no server address")
	}
	for _, a := range c.Addrs {
		if err := checkLoopback(a); err != nil {
			return err
		}
	}
	if len(c.Secret) == 0 {
		return errors.New("no JWT secret: pass the server's -jwt-secret")
	}
	if c.Sources <= 0 {
		c.Sources = 8
	}
	if c.Sources > 250 {
		return fmt.Errorf("at most 250 source addresses, not %d", c.Sources)
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 64
	}
	if c.UserBase == 0 {
		c.UserBase = 1_000_000
	}
	if c.WaitTimeout <= 0 {
		c.WaitTimeout = 30 * time.Second
	}
	var err error
	c.proto, err = protoFor(c.Protocol)
	return err
}

// checkLoopback refuses any address that is not a loopback IP: the tool
// opens thousands of connections and must never aim them elsewhere.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("address %q is not a loopback IP: the tool only dials 127.0.0.0/8 or ::1", addr)
	}
	return nil
}

// Header is the part of every result that says when and where it was
// measured.
type Header struct {
	Scenario string `json:"scenario"`
	// Label is free text from the command line, e.g. "before tuning";
	// Server the protocol of the server measured (Config.Protocol).
	Label   string    `json:"label,omitempty"`
	Server  string    `json:"server,omitempty"`
	Started time.Time `json:"started"`
	// Load1 and Load1End are the 1-minute load averages at the start and
	// the end of the run: figures taken on a busy machine say so.
	Load1    float64 `json:"load1"`
	Load1End float64 `json:"load1_end"`
	CPUs     int     `json:"cpus"`
	Go       string  `json:"go"`
	// NoFile is the tool's open-file limit; Procs how many tool processes
	// ran the scenario together.
	NoFile  uint64  `json:"nofile,omitempty"`
	Procs   int     `json:"procs,omitempty"`
	Seconds float64 `json:"seconds"`
	// Errors counts failures by kind (e.g. "dial", "close_4000").
	Errors map[string]int64 `json:"errors,omitempty"`
}

func newHeader(scenario string) Header {
	return Header{Scenario: scenario, Started: time.Now().UTC().Truncate(time.Millisecond), Load1: load1(), CPUs: runtime.NumCPU(), Go: runtime.Version()}
}

func (h *Header) finish(start time.Time, errs *errorCounts) {
	h.Seconds = round3(time.Since(start).Seconds())
	h.Load1End = load1()
	h.Errors = errs.snapshot()
}

func round3(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }

// load1 reads the 1-minute load average; 0 where /proc is missing.
func load1() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f, _ := strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	return f
}

// RSS returns the resident memory of process pid in bytes, from the VmRSS
// line of /proc/PID/status.
func RSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmRSS of %d: %w", pid, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// CPUTime returns the user and system CPU time process pid has used, from
// /proc/PID/stat. Its resolution is the kernel's clock tick (10 ms).
func CPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: count from the
	// last parenthesis. utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// clockTicks is USER_HZ, the unit of /proc times: 100 on every Linux
// architecture Go supports.
const clockTicks = 100

// cpuMeter measures the CPU time the server and this process spend on
// one phase of a run.
type cpuMeter struct {
	pid         int
	server, own time.Duration
}

func startCPU(pid int) cpuMeter {
	m := cpuMeter{pid: pid, own: ownCPU()}
	if pid != 0 {
		m.server, _ = CPUTime(pid)
	}
	return m
}

// CPU is the CPU time spent on the measured phase of a run: by the server
// (when its pid was given) and by the tool, in all and per unit of work.
// On a machine shared with other work it varies far less than rates do.
type CPU struct {
	ServerSeconds float64 `json:"server_s,omitempty"`
	ServerPerUS   float64 `json:"server_us_per,omitempty"`
	ToolSeconds   float64 `json:"tool_s"`
	ToolPerUS     float64 `json:"tool_us_per,omitempty"`
}

// stop returns the CPU time since startCPU, per unit of work done.
func (m cpuMeter) stop(units int64) CPU {
	var c CPU
	own := ownCPU() - m.own
	c.ToolSeconds = round3(own.Seconds())
	if units > 0 {
		c.ToolPerUS = round3(float64(own.Microseconds()) / float64(units))
	}
	if m.pid != 0 {
		if now, err := CPUTime(m.pid); err == nil {
			srv := now - m.server
			c.ServerSeconds = round3(srv.Seconds())
			if units > 0 {
				c.ServerPerUS = round3(float64(srv.Microseconds()) / float64(units))
			}
		}
	}
	return c
}

// ownCPU is the CPU time this process has used.
func ownCPU() time.Duration {
	t, err := CPUTime(os.Getpid())
	if err != nil {
		return 0
	}
	return t
}

// errorCounts counts failures by kind from many goroutines.
type errorCounts struct {
	mu sync.Mutex
	m  map[string]int64
}

func (e *errorCounts) add(kind string) { e.addN(kind, 1) }

func (e *errorCounts) addN(kind string, n int64) {
	e.mu.Lock()
	if e.m == nil {
		e.m = make(map[string]int64)
	}
	e.m[kind] += n
	e.mu.Unlock()
}

func (e *errorCounts) snapshot() map[string]int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.m) == 0 {
		return nil
	}
	out := make(map[string]int64, len(e.m))
	for k, v := range e.m {
		out[k] = v
	}
	return out
}

// kindOf names an error for the counts.
func kindOf(err error) string {
	var ce *websocket.CloseError
	var ne net.Error
	var errno syscall.Errno
	switch {
	case errors.As(err, &ce):
		return "close_" + strconv.Itoa(ce.Code)
	case errors.Is(err, websocket.ErrBadHandshake):
		return "handshake"
	case errors.Is(err, errConnectRefused):
		return "connect_refused"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return "eof"
	case errors.As(err, &errno):
		// e.g. EADDRNOTAVAIL when the source ports run out, EMFILE when
		// the file limit does.
		return "errno_" + strconv.Itoa(int(errno)) + "_" + strings.ReplaceAll(errno.Error(), " ", "_")
	}
	return "other"
}

// dialer opens WebSocket connections spread over source addresses.
type dialer struct {
	cfg     *Config
	issuer  *auth.Issuer
	dialers []*websocket.Dialer
	paced   atomic.Int64 // connections started under ConnectRate
	start   time.Time
}

func newDialer(cfg *Config) *dialer {
	d := &dialer{cfg: cfg, issuer: auth.NewIssuer(cfg.Secret, 24*time.Hour), start: time.Now()}
	pool := &sync.Pool{}
	for i := range cfg.Sources {
		nd := &net.Dialer{Timeout: cfg.WaitTimeout, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i))}}
		d.dialers = append(d.dialers, &websocket.Dialer{
			NetDialContext:   nd.DialContext,
			HandshakeTimeout: cfg.WaitTimeout,
			// A read buffer that takes several frames per read when the
			// tool falls behind; a small write buffer, as the tool writes
			// little.
			ReadBufferSize:  4096,
			WriteBufferSize: 512,
			WriteBufferPool: pool,
		})
	}
	return d
}

// token signs a token for user.
func (d *dialer) token(user int64) (string, error) {
	return d.issuer.Issue(user, "u"+strconv.FormatInt(user, 10))
}

// dial connects client i as user with a token signed beforehand; the
// socket counts as connected once the server has checked the token.
func (d *dialer) dial(ctx context.Context, i int, token string) (*client, error) {
	if r := d.cfg.ConnectRate; r > 0 {
		n := d.paced.Add(1) - 1
		if err := sleep(ctx, time.Until(d.start.Add(time.Duration(float64(n)/r*float64(time.Second))))); err != nil {
			return nil, err
		}
	}
	addr := d.cfg.Addrs[i%len(d.cfg.Addrs)]
	ctx, cancel := context.WithTimeout(ctx, d.cfg.WaitTimeout)
	defer cancel()
	p := d.cfg.proto
	ws, resp, err := d.dialers[i%len(d.dialers)].DialContext(ctx, "ws://"+addr+p.path(), p.header(token))
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("%w: status %d", err, resp.StatusCode)
		}
		return nil, err
	}
	c := &client{ws: ws}
	if err := p.hello(c, token, d.cfg.WaitTimeout); err != nil {
		_ = ws.Close()
		return nil, err
	}
	return c, nil
}

// tokens signs a token for each of n users starting at first; signing is
// kept out of the timed connect phase.
func (d *dialer) tokens(first int64, n int) ([]string, error) {
	out := make([]string, n)
	for i := range out {
		t, err := d.token(first + int64(i))
		if err != nil {
			return nil, err
		}
		out[i] = t
	}
	return out, nil
}

// forEach runs fn(i) for i in [0, n) on up to workers goroutines and stops
// handing out work when ctx ends.
func forEach(ctx context.Context, n, workers int, fn func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(workers, n) {
		wg.Go(func() {
			for i := range next {
				fn(i)
			}
		})
	}
	for i := 0; i < n && ctx.Err() == nil; i++ {
		select {
		case next <- i:
		case <-ctx.Done():
		}
	}
	close(next)
	wg.Wait()
}

// readFrames reads text frames from ws into a reused buffer and hands each
// to fn until the socket fails or is closed; it returns that error.
func readFrames(ws *websocket.Conn, fn func(frame []byte)) error {
	var buf bytes.Buffer
	for {
		_, r, err := ws.NextReader()
		if err != nil {
			return err
		}
		buf.Reset()
		if _, err := buf.ReadFrom(r); err != nil {
			return err
		}
		fn(buf.Bytes())
	}
}

// replyType returns the type of a reply frame, e.g. "subscribed", or ""
// for a frame that is not a single object with a leading type.
func replyType(frame []byte) string {
	rest, ok := bytes.CutPrefix(frame, []byte(`{"type":"`))
	if !ok {
		return ""
	}
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return ""
	}
	return string(rest[:end])
}

// scanEvents calls fn with the user id and wait_time of each presence event
// in frame: one event object, or an array of them. wait is -1 for null.
// It reports false for any frame that holds no events (a reply).
func scanEvents(frame []byte, fn func(user, wait int64)) bool {
	if !bytes.HasPrefix(frame, []byte("[")) && !bytes.HasPrefix(frame, []byte(`{"type":"presence"`)) {
		return false
	}
	for {
		user, rest, ok := intField(frame, `"user_id":`)
		if !ok {
			return true
		}
		wait, rest, ok := intField(rest, `"wait_time":`)
		if !ok {
			return true
		}
		fn(user, wait)
		frame = rest
	}
}

// intField finds key in b and reads the number after it (-1 for null); it
// returns what follows the number.
func intField(b []byte, key string) (v int64, rest []byte, ok bool) {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return 0, nil, false
	}
	b = b[i+len(key):]
	v, n := parseInt(b)
	return v, b[n:], true
}

// parseInt reads a non-negative decimal at the start of b; -1 when there
// is none (null).
func parseInt(b []byte) (v int64, n int) {
	v = -1
	for n < len(b) && b[n] >= '0' && b[n] <= '9' {
		if v < 0 {
			v = 0
		}
		v = v*10 + int64(b[n]-'0')
		n++
	}
	return v, n
}

// closeAll closes every socket in parallel: thousands of sequential
// closes would outlast the run.
func closeAll(conns []*client) {
	forEach(context.Background(), len(conns), 32, func(i int) {
		if conns[i] != nil {
			_ = conns[i].ws.Close()
		}
	})
}

// progress writes a line when Config.Progress is set.
func (c *Config) progress(format string, args ...any) {
	if c.Progress != nil {
		fmt.Fprintf(c.Progress, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
	}
}
