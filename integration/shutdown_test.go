package integration

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness"
)

// TestShutdown: on SIGTERM the real binary fails /readyz at once, keeps answering for the
// shutdown delay, lets a request in flight finish, then exits within delay + timeout.
func TestShutdown(t *testing.T) {
	const delay, timeout = 2 * time.Second, 3 * time.Second

	o := harness.StartOracle(t, harness.OracleOptions{Bin: oracleBin,
		Args: []string{"--demo", "--state-dir", t.TempDir(), "--shutdown-delay", delay.String(), "--shutdown-timeout", timeout.String()}})
	o.WaitReady(t, 2*time.Minute)

	// A request in flight: its headers and part of its body are sent, the rest after SIGTERM. The
	// server has read the headers (the connection is active, the handler ran) and reads the
	// body's rest before it sends the answer.
	conn, err := net.Dial("tcp", strings.TrimPrefix(o.URL, "http://"))
	require.NoError(t, err)
	defer conn.Close()

	_, err = conn.Write([]byte("GET /exists/shop/postgres HTTP/1.1\r\nHost: oracle\r\nContent-Length: 5\r\n\r\nab"))
	require.NoError(t, err)

	time.Sleep(200 * time.Millisecond)

	sent := time.Now()
	require.NoError(t, syscall.Kill(o.PID(), syscall.SIGTERM))

	// /readyz fails at once (the first probe after the signal), while /exists still answers.
	require.Eventually(t, func() bool { return o.Get(t, "/readyz").Code == http.StatusServiceUnavailable }, 500*time.Millisecond, 10*time.Millisecond)
	assert.Less(t, time.Since(sent), delay, "readiness failed within the delay, before the listener closed")

	r := o.Get(t, "/readyz")
	assert.Contains(t, r.Body["reason"], "shutting down")
	assert.Equal(t, "restore", o.Get(t, "/exists/shop/postgres").Body["decision"], "still answering during the delay")

	// The in-flight request completes after the delay, when the listener is already closed.
	time.Sleep(delay + 500*time.Millisecond)

	_, err = net.DialTimeout("tcp", strings.TrimPrefix(o.URL, "http://"), time.Second)
	assert.Error(t, err, "no new connection after the delay")

	_, err = conn.Write([]byte("cde"))
	require.NoError(t, err)

	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err, "the request in flight is answered")
	defer resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	require.Eventually(t, o.Exited, delay+timeout, 20*time.Millisecond, "exits within delay + timeout")
	t.Logf("exited %s after SIGTERM (delay %s)", time.Since(sent).Round(10*time.Millisecond), delay)
	assert.Contains(t, o.Stderr(), "shutting down")
	assert.Contains(t, o.Stderr(), "stopped")
}

// TestShutdownCutsAHangingRequest: a client that never finishes its request cannot hold the
// process beyond the shutdown timeout.
func TestShutdownCutsAHangingRequest(t *testing.T) {
	const timeout = time.Second

	o := harness.StartOracle(t, harness.OracleOptions{Bin: oracleBin,
		Args: []string{"--demo", "--state-dir", t.TempDir(), "--shutdown-timeout", timeout.String()}})
	o.WaitReady(t, 2*time.Minute)

	conn, err := net.Dial("tcp", strings.TrimPrefix(o.URL, "http://"))
	require.NoError(t, err)
	defer conn.Close()

	_, err = conn.Write([]byte("GET /exists/shop/postgres HTTP/1.1\r\n"))
	require.NoError(t, err)
	time.Sleep(200 * time.Millisecond)

	sent := time.Now()
	require.NoError(t, syscall.Kill(o.PID(), syscall.SIGTERM))
	require.Eventually(t, o.Exited, timeout+3*time.Second, 20*time.Millisecond)
	t.Logf("exited %s after SIGTERM with a request hanging (timeout %s)", time.Since(sent).Round(10*time.Millisecond), timeout)
}
