//go:build e2e

package e2e

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// proc is one process the test started; its output goes to <dir>/<name>.log.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// startProc starts bin with args and env (added to a minimal environment). It is not stopped
// automatically: the stack stops its processes in a safe order (see stack.stop).
func startProc(t testing.TB, dir, name, bin string, env []string, args ...string) *proc {
	t.Helper()

	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	require.NoError(t, err)

	cmd := exec.Command(bin, args...) //nolint:gosec // pinned tools built by make e2e
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=" + dir, "TMPDIR=" + dir}, env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Dir = dir
	require.NoError(t, cmd.Start(), "start %s", name)

	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}

	go func() { _ = cmd.Wait(); _ = f.Close(); close(p.done) }()

	return p
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits up to grace for the exit, then kills. It reports whether the
// process stopped on SIGTERM.
func (p *proc) stop(grace time.Duration) bool {
	if p.exited() {
		return true
	}

	_ = p.cmd.Process.Signal(syscall.SIGTERM)

	select {
	case <-p.done:
		return true
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done

		return false
	}
}

// tail returns the last n lines of the process's log.
func (p *proc) tail(n int) string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return err.Error()
	}

	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}

	return strings.Join(lines, "\n")
}

// pidGone reports whether no process with this PID exists any more.
func pidGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)

	port := l.Addr().(*net.TCPAddr).Port //nolint:forcetypeassert // a TCP listener
	require.NoError(t, l.Close())

	return port
}

func hostPort(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// eventually polls cond every interval until it returns true or within passes; it returns how
// long it took and whether cond held.
func eventually(within, interval time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	for {
		if cond() {
			return time.Since(start), true
		}

		if time.Since(start) > within {
			return time.Since(start), false
		}

		time.Sleep(interval)
	}
}
