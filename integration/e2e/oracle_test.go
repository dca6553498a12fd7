//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness"
)

const kopiaPassword = "e2e-kopia-password"

// oracle is the real backup-oracle on a fixed loopback port (the policies' URL), which the
// test can stop, replace with a server that never answers, and start again.
type oracle struct {
	bin, repository, passwordFile string
	port                          int
	proc                          *harness.Oracle
	stack                         *stack // every oracle PID joins the stack's final check
	// env, when set, is the whole configuration (the layouts' oracles, configured from the
	// chart's rendering); otherwise one kopia-fs backend on repository with passwordFile.
	env []string
	// extraEnv is added to either (the gate self-test's settings while its scenario runs).
	extraEnv []string
}

// newKopiaRepository writes a repository with the real kopia CLI holding one snapshot per
// source, as VolSync's Kopia mover writes them.
func newKopiaRepository(t testing.TB, dir string, sources []string) string {
	t.Helper()

	data := filepath.Join(dir, "data")
	require.NoError(t, os.MkdirAll(data, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(data, "db.sqlite"), []byte("precious"), 0o644))

	cli := harness.NewKopiaRepository(t, filepath.Join(dir, "repository"), kopiaPassword)
	for _, src := range sources {
		cli.Snapshot(data, src)
	}

	return cli.Path
}

// newOracle prepares the oracle binary bin on repository, on a free loopback port.
func newOracle(t *testing.T, s *stack, bin, repository string) *oracle {
	t.Helper()

	pw := filepath.Join(t.TempDir(), "password")
	require.NoError(t, os.WriteFile(pw, []byte(kopiaPassword+"\n"), 0o600))

	return &oracle{bin: bin, repository: repository, passwordFile: pw, port: freePort(t), stack: s}
}

// newOracleEnv prepares the oracle binary bin configured by env alone, on a free loopback port.
func newOracleEnv(t *testing.T, s *stack, bin string, env []string) *oracle {
	t.Helper()

	return &oracle{bin: bin, port: freePort(t), stack: s, env: env}
}

// URL is where the policies call the oracle.
func (o *oracle) URL() string { return "http://" + hostPort(o.port) }

// start runs the program on the oracle's port and waits until its index is ready.
func (o *oracle) start(t *testing.T) {
	t.Helper()

	o.run(t, o.passwordFile)
	o.proc.WaitReady(t, 60*time.Second)
}

// startUnknown runs the program with a wrong repository password: it stays up, not ready, and
// answers every /exists with 503 "unknown" and the reason, as it does when it cannot read the
// repository. It returns once /exists says so.
func (o *oracle) startUnknown(t *testing.T) {
	t.Helper()

	wrong := filepath.Join(t.TempDir(), "wrong-password")
	require.NoError(t, os.WriteFile(wrong, []byte("not-the-password\n"), 0o600))
	o.run(t, wrong)

	var last harness.Response

	_, ok := eventually(30*time.Second, 100*time.Millisecond, func() bool {
		last = o.proc.Get(t, "/exists/e2e/probe")

		return last.Code == http.StatusServiceUnavailable && last.Body["decision"] == "unknown"
	})
	require.True(t, ok, "the oracle with a wrong password does not answer unknown: %d %v", last.Code, last.Body)
}

func (o *oracle) run(t *testing.T, passwordFile string) {
	t.Helper()

	env := o.env
	if env == nil {
		env = []string{"BACKEND_TYPE=kopia-fs", "KOPIA_REPOSITORY_PATH=" + o.repository, "KOPIA_PASSWORD_FILE=" + passwordFile,
			"REFRESH_INTERVAL=5s", "MAX_INDEX_AGE=1m"}
	}

	env = append(append([]string{}, env...), o.extraEnv...)
	o.proc = harness.StartOracle(t, harness.OracleOptions{Bin: o.bin, Env: env, Args: []string{"--listen-address", hostPort(o.port)}})
	o.stack.all = append(o.stack.all, o.proc.PID())
}

func (o *oracle) stop(t *testing.T) {
	t.Helper()
	o.proc.Stop(t)
}

// calls returns how many /readyz and /exists requests the oracle has served since it started.
func (o *oracle) calls(t *testing.T) int {
	t.Helper()

	return int(o.metric(t, "backup_oracle_http_requests_total{", `route="/exists/:namespace/:pvc"`) +
		o.metric(t, "backup_oracle_http_requests_total{", `route="/readyz"`))
}

// guards returns the oracle's backup_oracle_guard_total of the near-miss guard with outcome
// (denied, warned, accepted) since it started.
func (o *oracle) guards(t *testing.T, outcome string) int {
	t.Helper()

	return int(o.metric(t, "backup_oracle_guard_total{", `guard="near-miss"`, `outcome="`+outcome+`"`))
}

// metric sums the samples of /metrics whose line starts with prefix and contains every label.
func (o *oracle) metric(t *testing.T, prefix string, labels ...string) float64 {
	t.Helper()

	r, err := http.Get(o.URL() + "/metrics") //nolint:noctx // local metrics scrape
	require.NoError(t, err)

	defer r.Body.Close()

	n := 0.0
	sc := bufio.NewScanner(r.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)

lines:
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, prefix) {
			continue
		}

		for _, l := range labels {
			if !strings.Contains(line, l) {
				continue lines
			}
		}

		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		require.NoError(t, err, line)

		n += v
	}

	return n
}

// lookup asks the oracle directly (outside any counted window) what it looks up for a PVC.
func (o *oracle) lookup(t *testing.T, ns, pvc string) harness.Response {
	t.Helper()

	return o.proc.Get(t, "/exists/"+ns+"/"+pvc)
}

// hang listens on the oracle's port and accepts connections without ever answering, until
// the returned stop is called (at the latest when the test ends).
func (o *oracle) hang(t *testing.T) (stop func()) {
	t.Helper()

	l, err := net.Listen("tcp", hostPort(o.port))
	require.NoError(t, err)

	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)

	wg.Add(1)

	go func() {
		defer wg.Done()

		for {
			c, err := l.Accept()
			if err != nil {
				return
			}

			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()

			go func() { _, _ = io.Copy(io.Discard, c) }() // read the request, never answer
		}
	}()

	var once sync.Once

	stop = func() {
		once.Do(func() {
			_ = l.Close()
			wg.Wait()

			mu.Lock()
			defer mu.Unlock()

			for _, c := range conns {
				_ = c.Close()
			}
		})
	}
	t.Cleanup(stop)

	return stop
}

// waitDown waits until nothing listens on the oracle's port.
func (o *oracle) waitDown(t *testing.T) {
	t.Helper()

	_, ok := eventually(10*time.Second, 50*time.Millisecond, func() bool {
		var d net.Dialer

		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()

		c, err := d.DialContext(ctx, "tcp", hostPort(o.port))
		if err != nil {
			return true
		}

		_ = c.Close()

		return false
	})
	require.True(t, ok, "something still listens on %d", o.port)
}
