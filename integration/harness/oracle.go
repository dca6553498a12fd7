package harness

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// BuildOracle builds the backup-oracle binary into dir and returns its path.
func BuildOracle(dir string) (string, error) { return Build(dir, "./cmd/backup-oracle") }

// BuildOracleRace builds the backup-oracle binary with the race detector (it needs cgo and a C
// compiler) into dir and returns its path. A process started from it with StartOracle fails its
// test when the detector reports a data race.
func BuildOracleRace(dir string) (string, error) { return BuildRace(dir, "./cmd/backup-oracle") }

// Build builds the main package pkg (relative to the module root) into dir and returns the
// binary's path.
func Build(dir, pkg string) (string, error) {
	return build(filepath.Join(dir, filepath.Base(pkg)), pkg, false)
}

// BuildRace is Build with the race detector.
func BuildRace(dir, pkg string) (string, error) {
	return build(filepath.Join(dir, filepath.Base(pkg)+"-race"), pkg, true)
}

func build(bin, pkg string, race bool) (string, error) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")

	args, cgo := []string{"build", "-o", bin}, "CGO_ENABLED=0"
	if race {
		args, cgo = append(args, "-race"), "CGO_ENABLED=1"
	}

	cmd := exec.Command("go", append(args, pkg)...) //nolint:gosec // builds this module
	cmd.Dir = root
	cmd.Env = append(os.Environ(), cgo)

	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, out)
	}

	return bin, nil
}

// Oracle is a running backup-oracle process listening on 127.0.0.1.
type Oracle struct {
	URL    string
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr strings.Builder
	done   chan struct{}
	// raceChecked: the log was searched for race reports (once, by the first Stop).
	raceChecked atomic.Bool
	client      *http.Client
	token       string
}

// OracleOptions start the real program.
type OracleOptions struct {
	Bin  string
	Env  []string // KEY=VALUE, added to a minimal environment
	Args []string
	// UID, when non-zero, runs the process as that user (requires root).
	UID uint32
	// CAFile is the CA the test's requests trust (the program serves HTTPS); Token is the
	// bearer token they send (the program authenticates callers).
	CAFile, Token string
}

// StartOracle starts the program on 127.0.0.1:0 and waits until it says where it listens.
// It is stopped (SIGTERM, then SIGKILL) when the test ends.
func StartOracle(t testing.TB, opts OracleOptions) *Oracle {
	t.Helper()

	args := append([]string{"--listen-address", "127.0.0.1:0", "--log-format", "text"}, opts.Args...)
	cmd := exec.Command(opts.Bin, args...) //nolint:gosec // the binary under test
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "TMPDIR=" + os.TempDir()}, opts.Env...)

	if opts.UID != 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: opts.UID, Gid: opts.UID}}
	}

	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}

	client, err := httpClient(opts.CAFile)
	if err != nil {
		t.Fatalf("CA %s: %v", opts.CAFile, err)
	}

	client.Timeout = 0 // the requests' contexts bound them
	o := &Oracle{cmd: cmd, done: make(chan struct{}), client: client, token: opts.Token}
	cmd.Stderr = writerFunc(func(p []byte) (int, error) {
		o.mu.Lock()
		defer o.mu.Unlock()

		return o.stderr.Write(p)
	})

	if err := cmd.Start(); err != nil {
		t.Fatalf("start backup-oracle: %v", err)
	}

	go func() { _ = cmd.Wait(); close(o.done) }()

	t.Cleanup(func() { o.Stop(t) })

	urls := make(chan string, 1)

	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if _, url, ok := strings.Cut(sc.Text(), " listening on "); ok {
				urls <- url
			}
		}
	}()

	select {
	case o.URL = <-urls:
	case <-o.done:
		t.Fatalf("backup-oracle exited before listening:\n%s", o.Stderr())
	case <-time.After(30 * time.Second):
		t.Fatalf("backup-oracle did not listen within 30s:\n%s", o.Stderr())
	}

	return o
}

// PID returns the process id.
func (o *Oracle) PID() int { return o.cmd.Process.Pid }

// Stop terminates the process and waits for it. It fails the test when the race detector (in a
// binary built by BuildOracleRace) reported a data race.
func (o *Oracle) Stop(t testing.TB) {
	defer o.checkRaces(t)

	select {
	case <-o.done:
		return
	default:
	}

	_ = o.cmd.Process.Signal(syscall.SIGTERM)

	select {
	case <-o.done:
	case <-time.After(15 * time.Second):
		_ = o.cmd.Process.Kill()
		<-o.done
		t.Errorf("backup-oracle ignored SIGTERM for 15s")
	}
}

// raceReport is how the race detector starts a report on stderr.
const raceReport = "WARNING: DATA RACE"

func (o *Oracle) checkRaces(t testing.TB) {
	if o.raceChecked.Swap(true) {
		return
	}

	if log := o.Stderr(); strings.Contains(log, raceReport) {
		i := strings.Index(log, raceReport)
		t.Errorf("the race detector reported a data race in backup-oracle:\n%s", log[i:min(len(log), i+8000)])
	}
}

// Exited reports whether the process has ended.
func (o *Oracle) Exited() bool {
	select {
	case <-o.done:
		return true
	default:
		return false
	}
}

// Stderr returns the log so far.
func (o *Oracle) Stderr() string {
	o.mu.Lock()
	defer o.mu.Unlock()

	return o.stderr.String()
}

// Response is a decoded JSON answer with its status code.
type Response struct {
	Code int
	Body map[string]any
}

// Get fetches path and decodes the JSON body.
func (o *Oracle) Get(t testing.TB, path string) Response {
	t.Helper()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}

	resp, err := o.do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()

	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}

	r := Response{Code: resp.StatusCode}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &r.Body); err != nil {
			t.Fatalf("GET %s: decode %q: %v", path, b, err)
		}
	}

	return r
}

// do sends req with the test's token, trusting the test's CA.
func (o *Oracle) do(req *http.Request) (*http.Response, error) {
	if o.token != "" {
		req.Header.Set("Authorization", "Bearer "+o.token)
	}

	return o.client.Do(req)
}

// WaitReady polls /readyz until it answers 200.
func (o *Oracle) WaitReady(t testing.TB, within time.Duration) {
	t.Helper()

	deadline := time.Now().Add(within)
	for {
		r := o.Get(t, "/readyz")
		if r.Code == http.StatusOK {
			return
		}

		if time.Now().After(deadline) {
			t.Fatalf("not ready after %s: %v\n%s", within, r.Body, o.Stderr())
		}

		time.Sleep(50 * time.Millisecond)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// Metric returns the sum of the samples of the metric called name (a full series name such as
// backup_oracle_index_refresh_duration_seconds_count) in /metrics whose labels contain every one
// of labels (e.g. `result="success"`). It fails the test when /metrics cannot be read.
func (o *Oracle) Metric(t testing.TB, name string, labels ...string) float64 {
	t.Helper()

	v, err := o.MetricValue(name, labels...)
	if err != nil {
		t.Fatal(err)
	}

	return v
}

// MetricValue is Metric returning the error, for use outside the test's goroutine.
func (o *Oracle) MetricValue(name string, labels ...string) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.URL+"/metrics", nil)
	if err != nil {
		return 0, err
	}

	resp, err := o.do(req)
	if err != nil {
		return 0, fmt.Errorf("GET /metrics: %w", err)
	}
	defer resp.Body.Close()

	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}

	var sum float64

	for _, line := range strings.Split(string(b), "\n") {
		series, value, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}

		metric, rest, _ := strings.Cut(series, "{")
		if metric != name {
			continue
		}

		match := true

		for _, l := range labels {
			if !strings.Contains(rest, l) {
				match = false
			}
		}

		if v, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err == nil && match {
			sum += v
		}
	}

	return sum, nil
}
