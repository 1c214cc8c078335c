package loadgen_test

import (
	"bytes"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/presenced/presenced/internal/loadgen"
	"github.com/presenced/presenced/internal/needs"
)

// centrifugoBinary is where bench/centrifugo.sh builds Centrifugo, or
// $PRESENCE_BENCH_CENTRIFUGO.
func centrifugoBinary(t *testing.T) string {
	if bin := os.Getenv("PRESENCE_BENCH_CENTRIFUGO"); bin != "" {
		return bin
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		needs.Missing(t, "no cache directory for Centrifugo: "+err.Error(), "bench/centrifugo.sh")
	}
	return filepath.Join(cache, "presenced-bench", "centrifugo-v6.9.1", "centrifugo")
}

// startCentrifugo runs a real Centrifugo, configured as bench/run.sh
// configures it, and returns a Config that points at it. The test's
// cleanup stops it.
func startCentrifugo(t *testing.T) loadgen.Config {
	bin := centrifugoBinary(t)
	if _, err := os.Stat(bin); err != nil {
		needs.Missing(t, "no Centrifugo v6.9.1 binary at "+bin, "bench/centrifugo.sh")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	conf, err := loadgen.CentrifugoConfig(addr, []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cmd := exec.Command(bin, "-c", path)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("centrifugo's output:\n%s", logs.String())
		}
	})
	// Its health endpoint answers once it listens; nothing else announces
	// that.
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get("http://" + addr + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("centrifugo did not answer on %s within 20 s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return loadgen.Config{
		Addrs: []string{addr}, Secret: []byte(secret), Protocol: loadgen.Centrifugo,
		Sources: 3, Concurrency: 8, WaitTimeout: 20 * time.Second, ServerPID: cmd.Process.Pid,
	}
}

func TestCentrifugoFanoutDeliversEveryChangeOnce(t *testing.T) {
	cfg := startCentrifugo(t)
	res, err := loadgen.Fanout(testContext(t), cfg, loadgen.FanoutParams{Watchers: 25, Rate: 200, Changes: 8})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 8 || res.Expected != 200 || res.Delivered != 200 || res.Lost != 0 || res.Duplicates != 0 || len(res.Errors) != 0 {
		t.Fatalf("sent %d expected %d delivered %d lost %d duplicates %d errors %v; want 8, 200, 200, 0, 0, none",
			res.Sent, res.Expected, res.Delivered, res.Lost, res.Duplicates, res.Errors)
	}
	if res.Latency.Count != 200 || res.Frames == 0 || res.CPU.ServerSeconds < 0 {
		t.Fatalf("latency %+v, frames %d, cpu %+v", res.Latency, res.Frames, res.CPU)
	}
}

func TestCentrifugoMeshDeliversEveryChange(t *testing.T) {
	cfg := startCentrifugo(t)
	res, err := loadgen.Mesh(testContext(t), cfg, loadgen.MeshParams{Users: 30, Watch: 4, Period: 100 * time.Millisecond, Changes: 3})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 90 || res.Expected != 360 || res.Delivered != 360 || res.Lost != 0 || res.Duplicates != 0 || len(res.Errors) != 0 {
		t.Fatalf("sent %d expected %d delivered %d lost %d duplicates %d errors %v; want 90, 360, 360, 0, 0, none",
			res.Sent, res.Expected, res.Delivered, res.Lost, res.Duplicates, res.Errors)
	}
}

func TestCentrifugoIdleSocketsAnswer(t *testing.T) {
	cfg := startCentrifugo(t)
	res, err := loadgen.Idle(testContext(t), cfg, loadgen.IdleParams{Sockets: 20, Steps: []int{10}, Settle: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Connected != 20 || res.Alive != 20 || len(res.Errors) != 0 || len(res.Points) != 2 || res.Points[1].RSS <= 0 {
		t.Fatalf("connected %d, alive %d, errors %v, points %+v; want 20, 20, none, two", res.Connected, res.Alive, res.Errors, res.Points)
	}
}

// A token signed with another secret is refused at the connect command,
// and no socket counts as connected.
func TestCentrifugoRefusesOtherSecret(t *testing.T) {
	cfg := startCentrifugo(t)
	cfg.Secret = []byte("not the server's secret")
	res, err := loadgen.Idle(testContext(t), cfg, loadgen.IdleParams{Sockets: 3, Settle: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var dialErrors int64
	for _, n := range res.Errors {
		dialErrors += n
	}
	if res.Connected != 0 || dialErrors != 3 {
		t.Fatalf("connected %d, errors %v; want none connected and three refusals", res.Connected, res.Errors)
	}
}

func TestCentrifugoConfigRefusesAddressesOffLoopback(t *testing.T) {
	if _, err := loadgen.CentrifugoConfig("10.0.0.1:8000", []byte("s")); err == nil {
		t.Fatal("no error")
	}
	if _, err := loadgen.CentrifugoConfig("127.0.0.1:x", []byte("s")); err == nil {
		t.Fatal("no error for a port that is not a number")
	}
}
