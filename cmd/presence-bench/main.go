// Command presence-bench loads a presenced server over loopback and prints
// one JSON line per run: idle sockets and their memory, fanout of one user
// to many watchers, a mesh of users watching each other, and the REST API
// against a bare net/http handler. With -protocol centrifugo it drives
// Centrifugo through the same idle, fanout and mesh scenarios, for a
// comparison on the same machine. BENCHMARKS.md shows it in use.
//
//	presence-bench -scenario idle -n 19000 -pid $(pidof presenced) -jwt-secret S
//	presence-bench -scenario fanout -n 10000 -rate 40 -jwt-secret S
//	presence-bench -scenario mesh -n 5000 -watch 20 -period 5s -jwt-secret S
//	presence-bench -scenario rest -jwt-secret S
//	presence-bench -scenario http-idle -n 10000 -hold 2m -pid $(pidof presenced) -jwt-secret S
//	presence-bench -protocol centrifugo -addr 127.0.0.1:8000 -scenario fanout -n 1000 -jwt-secret S
//
// The secret is the server's -jwt-secret (or PRESENCE_JWT_SECRET): the tool
// signs its own tokens. The tool raises its open-file limit to the hard
// limit; a mesh that needs more sockets than one process may hold is split
// over -procs processes, which this command starts and merges.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/presenced/presenced/internal/loadgen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "presence-bench:", err)
		os.Exit(1)
	}
}

// options is the parsed command line.
type options struct {
	scenario    string
	protocol    string
	addrs       string
	secret      string
	label       string
	sources     int
	concurrency int
	connectRate float64
	userBase    int64
	pid         int
	timeout     time.Duration
	wait        time.Duration
	quiet       bool

	n          int
	steps      string
	settle     time.Duration
	hold       time.Duration
	rate       float64
	changes    int
	watch      int
	publishers int
	period     time.Duration
	procs      int
	first      int
	count      int
	child      bool
	ids        int
	users      int
	duration   time.Duration
	rounds     int
	bare       string
	centConf   string
}

func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("presence-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.scenario, "scenario", "", "idle, http-idle, fanout, mesh or rest")
	fs.StringVar(&o.protocol, "protocol", loadgen.Presenced, "the server's protocol: presenced, or centrifugo for Centrifugo v6 set up as bench/run.sh does (idle, fanout and mesh)")
	fs.StringVar(&o.addrs, "addr", "127.0.0.1:8080", "server host:port on loopback; a comma-separated list spreads clients over cluster nodes")
	fs.StringVar(&o.secret, "jwt-secret", getenv("PRESENCE_JWT_SECRET"), "the server's HS256 secret (default $PRESENCE_JWT_SECRET)")
	fs.StringVar(&o.label, "label", "", "free text copied into the JSON line")
	fs.IntVar(&o.sources, "sources", 8, "loopback source addresses to spread connections over (127.0.0.2 ...)")
	fs.IntVar(&o.concurrency, "concurrency", 64, "connections opened at once; requests in flight for rest")
	fs.Float64Var(&o.connectRate, "connect-rate", 0, "new connections per second of this process (0: as fast as -concurrency allows); -procs divides it")
	fs.Int64Var(&o.userBase, "user-base", 1_000_000, "first user id of the run")
	fs.IntVar(&o.pid, "pid", 0, "server process id, to read its memory from /proc (idle)")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "bound on the whole run")
	fs.DurationVar(&o.wait, "wait", 30*time.Second, "bound on each wait for the server")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress lines on stderr")
	fs.IntVar(&o.n, "n", 1000, "sockets (idle), connections (http-idle), watchers (fanout) or users (mesh)")
	fs.StringVar(&o.steps, "steps", "", "idle: comma-separated socket counts at which to sample memory on the way up")
	fs.DurationVar(&o.settle, "settle", 2*time.Second, "idle: pause after each step before sampling")
	fs.DurationVar(&o.hold, "hold", 0, "idle: how long to hold every socket before checking each answers; http-idle: how long to wait for the server to close the idle connections")
	fs.Float64Var(&o.rate, "rate", 100, "fanout: changes per second, of all publishers together")
	fs.IntVar(&o.changes, "changes", 0, "fanout: changes in all (default ten seconds' worth); mesh: changes per user (default 12)")
	fs.IntVar(&o.watch, "watch", 20, "mesh: users each user watches")
	fs.IntVar(&o.publishers, "publishers", 1, "fanout: users that change status, taking turns; every watcher watches all of them")
	fs.DurationVar(&o.period, "period", 5*time.Second, "mesh: time between two changes of one user")
	fs.IntVar(&o.procs, "procs", 1, "mesh: tool processes to split the users over (each holds under 20,000 sockets here)")
	fs.IntVar(&o.first, "first", 0, "mesh: first user of this process (set by -procs)")
	fs.IntVar(&o.count, "count", 0, "mesh: users of this process (set by -procs)")
	fs.BoolVar(&o.child, "child", false, "mesh: run as one of -procs processes: report ready, read the start time on stdin")
	fs.IntVar(&o.ids, "ids", 100, "rest: user ids per batch presence request")
	fs.IntVar(&o.users, "users", 1000, "rest: users whose tokens the requests rotate through")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "rest: length of each phase")
	fs.IntVar(&o.rounds, "rounds", 3, "rest: rounds of batch reads alternating with the bare handler")
	fs.StringVar(&o.centConf, "centrifugo-config", "", "write to this file the configuration of a Centrifugo server on -addr that the tool can measure with -jwt-secret, and exit")
	fs.StringVar(&o.bare, "serve-bare", "", "serve the JSON in this file with a bare net/http handler on a loopback port (started by rest)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return o, nil
}

// run parses args, runs one scenario and writes its JSON line to stdout.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	if o.bare != "" {
		return serveBare(ctx, o.bare, stdin, stdout)
	}
	if o.centConf != "" {
		conf, err := loadgen.CentrifugoConfig(o.addrs, []byte(o.secret))
		if err != nil {
			return err
		}
		return os.WriteFile(o.centConf, conf, 0o600)
	}
	nofile, err := raiseFileLimit()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	cfg := loadgen.Config{
		Addrs: splitList(o.addrs), Secret: []byte(o.secret), Sources: o.sources,
		Concurrency: o.concurrency, ConnectRate: o.connectRate, UserBase: o.userBase, ServerPID: o.pid, WaitTimeout: o.wait,
		Buckets: o.child, Protocol: o.protocol,
	}
	if !o.quiet {
		cfg.Progress = stderr
	}
	if (o.scenario == "rest" || o.scenario == "http-idle") && o.protocol != loadgen.Presenced {
		return fmt.Errorf("-scenario %s measures presenced's HTTP side; it has no -protocol %s", o.scenario, o.protocol)
	}
	var res any
	switch o.scenario {
	case "idle":
		steps, perr := parseInts(o.steps)
		if perr != nil {
			return fmt.Errorf("-steps: %w", perr)
		}
		var r loadgen.IdleResult
		r, err = loadgen.Idle(ctx, cfg, loadgen.IdleParams{Sockets: o.n, Steps: steps, Settle: o.settle, Hold: o.hold})
		r.Label, r.Server, r.NoFile = o.label, o.protocol, nofile
		res = r
	case "http-idle":
		var r loadgen.HTTPIdleResult
		r, err = loadgen.HTTPIdle(ctx, cfg, loadgen.HTTPIdleParams{Conns: o.n, Wait: o.hold})
		r.Label, r.Server, r.NoFile = o.label, o.protocol, nofile
		res = r
	case "fanout":
		var r loadgen.DeliveryResult
		r, err = loadgen.Fanout(ctx, cfg, loadgen.FanoutParams{Watchers: o.n, Rate: o.rate, Changes: o.changes, Publishers: o.publishers})
		r.Label, r.Server, r.NoFile = o.label, o.protocol, nofile
		res = r
	case "mesh":
		var r loadgen.DeliveryResult
		if o.procs > 1 {
			r, err = meshProcs(ctx, o, args)
		} else {
			p := loadgen.MeshParams{Users: o.n, First: o.first, Count: o.count, Watch: o.watch, Period: o.period, Changes: o.changes}
			if o.child {
				p.Ready = readyOverPipes(stdin, stdout)
			}
			r, err = loadgen.Mesh(ctx, cfg, p)
		}
		r.Label, r.Server, r.NoFile = o.label, o.protocol, nofile
		res = r
	case "rest":
		var r loadgen.RESTResult
		r, err = loadgen.REST(ctx, cfg, loadgen.RESTParams{
			IDs: o.ids, Users: o.users, Concurrency: o.concurrency, Duration: o.duration, Rounds: o.rounds,
			Baseline: startBare,
		})
		r.Label, r.Server, r.NoFile = o.label, o.protocol, nofile
		res = r
	default:
		return fmt.Errorf("-scenario must be idle, http-idle, fanout, mesh or rest, not %q", o.scenario)
	}
	if jerr := json.NewEncoder(stdout).Encode(res); jerr != nil {
		return jerr
	}
	return err
}

// raiseFileLimit lifts the soft open-file limit to the hard one: every
// socket is a file, and the soft limit is often 1,024.
func raiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("open-file limit: %w", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, fmt.Errorf("raise open-file limit to %d: %w", lim.Max, err)
		}
	}
	return lim.Cur, nil
}

// readyOverPipes is how a -child process joins a mesh: it says "ready" on
// stdout, and the parent answers with the start time in Unix nanoseconds
// on stdin once every child is ready.
func readyOverPipes(stdin io.Reader, stdout io.Writer) func() (time.Time, error) {
	return func() (time.Time, error) {
		if _, err := fmt.Fprintln(stdout, "ready"); err != nil {
			return time.Time{}, err
		}
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil {
			return time.Time{}, fmt.Errorf("read start time: %w", err)
		}
		ns, err := strconv.ParseInt(strings.TrimSpace(line), 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("start time %q: %w", line, err)
		}
		return time.Unix(0, ns), nil
	}
}

// splitList splits a comma-separated list, dropping blanks.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, p := range splitList(s) {
		n, err := strconv.Atoi(p)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}
