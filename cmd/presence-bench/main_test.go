package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/presenced/presenced/internal/loadgen"
	"github.com/presenced/presenced/internal/testserver"
)

// TestMain lets this test binary stand in for the command when the
// command starts copies of itself (-procs, the bare handler).
func TestMain(m *testing.M) {
	if os.Getenv("PRESENCE_BENCH_CHILD") == "1" {
		main()
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

const secret = "bench-test-secret-0123456789abcdef"

// bench runs the command with args against a fresh server and decodes its
// JSON line into out.
func bench(t *testing.T, out any, args ...string) {
	t.Helper()
	addr := testserver.Start(t, secret)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	args = append([]string{"-addr", addr, "-jwt-secret", secret, "-sources", "2", "-concurrency", "8", "-wait", "20s"}, args...)
	if err := run(ctx, args, func(string) string { return "" }, strings.NewReader(""), &stdout, &stderr); err != nil {
		t.Fatalf("presence-bench %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("want one JSON line, got %q", stdout.String())
	}
	if err := json.Unmarshal([]byte(lines[0]), out); err != nil {
		t.Fatal(err)
	}
}

func TestIdleLine(t *testing.T) {
	var res loadgen.IdleResult
	bench(t, &res, "-scenario", "idle", "-n", "12", "-steps", "6", "-settle", "1ms", "-pid", strconv.Itoa(os.Getpid()), "-label", "tiny")
	if res.Scenario != "idle" || res.Label != "tiny" || res.Connected != 12 || res.Alive != 12 || len(res.Points) != 2 || res.NoFile == 0 {
		t.Fatalf("%+v", res)
	}
}

func TestFanoutLine(t *testing.T) {
	var res loadgen.DeliveryResult
	bench(t, &res, "-scenario", "fanout", "-n", "10", "-rate", "100", "-changes", "5", "-quiet")
	if res.Clients != 10 || res.Delivered+res.Superseded != 50 || res.Lost != 0 || res.Duplicates != 0 || res.Latency.Count != uint64(res.Delivered) {
		t.Fatalf("%+v", res)
	}
}

// A mesh split over two processes, which this test binary plays.
func TestMeshOverTwoProcesses(t *testing.T) {
	var res loadgen.DeliveryResult
	bench(t, &res, "-scenario", "mesh", "-n", "20", "-watch", "5", "-period", "100ms", "-changes", "2", "-procs", "2", "-quiet")
	if res.Procs != 2 || res.Clients != 20 || res.Sent != 40 || res.Expected != 200 || res.Delivered+res.Superseded != 200 || res.Lost != 0 || res.Latency.Count != uint64(res.Delivered) {
		t.Fatalf("%+v", res)
	}
}

// The bare handler runs in a process of its own.
func TestRESTAgainstBareProcess(t *testing.T) {
	var res loadgen.RESTResult
	bench(t, &res, "-scenario", "rest", "-ids", "10", "-users", "20", "-duration", "100ms", "-rounds", "2", "-quiet")
	if res.Presence.Requests == 0 || res.Bare == nil || res.Bare.Requests == 0 || res.PresenceVsBare <= 0 || len(res.Errors) != 0 {
		t.Fatalf("%+v", res)
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-scenario", "nope", "-jwt-secret", "s"},
		{"-scenario", "idle", "-n", "1", "-jwt-secret", "s", "-addr", "192.0.2.1:80"},
		{"-scenario", "idle", "-steps", "x", "-jwt-secret", "s"},
		{"-scenario", "mesh", "-procs", "3", "-n", "2", "-jwt-secret", "s"},
		{"-scenario", "rest", "-protocol", "centrifugo", "-jwt-secret", "s"},
		{"-scenario", "http-idle", "-protocol", "centrifugo", "-jwt-secret", "s"},
		{"-scenario", "idle", "-protocol", "nope", "-n", "1", "-jwt-secret", "s"},
		{"-centrifugo-config", "x.json", "-addr", "192.0.2.1:8000", "-jwt-secret", "s"},
		{"stray"},
	} {
		var stdout, stderr bytes.Buffer
		if err := run(context.Background(), args, func(string) string { return "" }, strings.NewReader(""), &stdout, &stderr); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

// The configuration bench/run.sh starts Centrifugo with: the tool's secret
// and the address asked for.
func TestCentrifugoConfigFile(t *testing.T) {
	path := t.TempDir() + "/centrifugo.json"
	var stdout, stderr bytes.Buffer
	args := []string{"-centrifugo-config", path, "-addr", "127.0.0.1:18555", "-jwt-secret", secret}
	if err := run(context.Background(), args, func(string) string { return "" }, strings.NewReader(""), &stdout, &stderr); err != nil {
		t.Fatal(err, stderr.String())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var conf struct {
		HTTPServer struct {
			Address string `json:"address"`
			Port    int    `json:"port"`
		} `json:"http_server"`
		Client struct {
			Token struct {
				Secret string `json:"hmac_secret_key"`
			} `json:"token"`
		} `json:"client"`
	}
	if err := json.Unmarshal(b, &conf); err != nil {
		t.Fatal(err)
	}
	if conf.HTTPServer.Address != "127.0.0.1" || conf.HTTPServer.Port != 18555 || conf.Client.Token.Secret != secret || stdout.Len() != 0 {
		t.Fatalf("configuration %s, output %q", b, stdout.String())
	}
}
