package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/presenced/presenced/internal/loadgen"
)

// childEnv marks a process this command started, so that a test binary
// standing in for the command knows to behave as the command.
const childEnv = "PRESENCE_BENCH_CHILD=1"

// child is one process this command started and owns.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
}

// startChild starts this command again with args. Its stderr is this
// process's own, so its progress lines show as they come.
func startChild(args []string) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	c := &child{cmd: exec.Command(exe, args...)}
	c.cmd.Env = append(os.Environ(), childEnv)
	c.cmd.Stderr = os.Stderr
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c.stdout = bufio.NewReader(out)
	if err := c.cmd.Start(); err != nil {
		return nil, err
	}
	return c, nil
}

// stop ends the child, if it has not ended, and reaps it.
func (c *child) stop() {
	_ = c.stdin.Close()
	_ = c.cmd.Process.Kill()
	_ = c.cmd.Wait()
}

// meshProcs splits the mesh over o.procs child processes, starts them all
// at one time once each has subscribed, and merges their results.
func meshProcs(ctx context.Context, o options, args []string) (loadgen.DeliveryResult, error) {
	if o.procs > o.n {
		return loadgen.DeliveryResult{}, fmt.Errorf("-procs %d exceeds -n %d", o.procs, o.n)
	}
	children := make([]*child, 0, o.procs)
	defer func() {
		for _, c := range children {
			c.stop()
		}
	}()
	per := (o.n + o.procs - 1) / o.procs
	for p := range o.procs {
		first := p * per
		count := min(per, o.n-first)
		// The child's own flags come last and win.
		cargs := append(append([]string{}, args...), "-procs=1", "-child",
			"-first="+strconv.Itoa(first), "-count="+strconv.Itoa(count),
			"-connect-rate="+strconv.FormatFloat(o.connectRate/float64(o.procs), 'f', -1, 64))
		c, err := startChild(cargs)
		if err != nil {
			return loadgen.DeliveryResult{}, err
		}
		children = append(children, c)
	}
	lines := make([]chan string, len(children))
	for i, c := range children {
		lines[i] = make(chan string, 2)
		go func() {
			defer close(lines[i])
			for range 2 { // "ready", then the result
				line, err := c.stdout.ReadString('\n')
				if err != nil {
					return
				}
				lines[i] <- line
			}
		}()
	}
	next := func(i int) (string, error) {
		select {
		case line, ok := <-lines[i]:
			if !ok {
				return "", fmt.Errorf("mesh process %d ended early", i)
			}
			return line, nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	for i := range children {
		if line, err := next(i); err != nil || strings.TrimSpace(line) != "ready" {
			return loadgen.DeliveryResult{}, errors.Join(err, fmt.Errorf("mesh process %d: %q instead of ready", i, line))
		}
	}
	start := strconv.FormatInt(time.Now().Add(500*time.Millisecond).UnixNano(), 10) + "\n"
	for _, c := range children {
		if _, err := io.WriteString(c.stdin, start); err != nil {
			return loadgen.DeliveryResult{}, err
		}
	}
	parts := make([]loadgen.DeliveryResult, len(children))
	for i := range children {
		line, err := next(i)
		if err != nil {
			return loadgen.DeliveryResult{}, err
		}
		if err := json.Unmarshal([]byte(line), &parts[i]); err != nil {
			return loadgen.DeliveryResult{}, fmt.Errorf("mesh process %d: %w", i, err)
		}
	}
	return loadgen.MergeDeliveries(parts), nil
}

// startBare runs the bare handler in a process of its own, so that it does
// not share this one's CPU time with the load, as presenced does not.
func startBare(body []byte) (string, func(), error) {
	f, err := os.CreateTemp("", "presence-bench-body-*.json")
	if err != nil {
		return "", nil, err
	}
	path := f.Name()
	_, werr := f.Write(body)
	if err := errors.Join(werr, f.Close()); err != nil {
		os.Remove(path)
		return "", nil, err
	}
	c, err := startChild([]string{"-serve-bare", path})
	if err != nil {
		os.Remove(path)
		return "", nil, err
	}
	stop := func() { c.stop(); os.Remove(path) }
	addr, err := c.stdout.ReadString('\n')
	if err != nil {
		stop()
		return "", nil, fmt.Errorf("bare handler did not start: %w", err)
	}
	return strings.TrimSpace(addr), stop, nil
}

// serveBare serves the file's bytes on a loopback port, prints the address
// and serves until stdin closes (the parent ended) or ctx is done.
func serveBare(ctx context.Context, path string, stdin io.Reader, stdout io.Writer) error {
	body, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: loadgen.BareHandler(body), ReadHeaderTimeout: 10 * time.Second}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { _ = srv.Serve(ln) })
	defer srv.Close()
	if _, err := fmt.Fprintln(stdout, ln.Addr().String()); err != nil {
		return err
	}
	eof := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, stdin); close(eof) }()
	select {
	case <-eof:
	case <-ctx.Done():
	}
	return nil
}
