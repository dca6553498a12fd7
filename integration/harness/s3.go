package harness

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// S3Server is a real S3 server (versitygw with its posix backend) on 127.0.0.1, for tests.
// Buckets are the sub-directories of Root. It can be stopped and started again on the same port
// and data, to simulate an outage. Not safe for concurrent Stop/Start.
type S3Server struct {
	// Endpoint is "127.0.0.1:<port>"; URL is "http://" + Endpoint.
	Endpoint, URL string
	// AccessKey and SecretKey are the root credentials the server accepts.
	AccessKey, SecretKey string
	// Root is the posix backend's directory.
	Root string
	// CAFile, for a server started by StartS3TLS, is the PEM certificate to trust; URL is then
	// "https://" + Endpoint.
	CAFile string
	// Log is the file collecting the server's output (one line per request), shown when the
	// test fails.
	Log string

	t       testing.TB
	bin     string
	keyFile string
	mu      sync.Mutex
	cmd     *exec.Cmd
}

// StartS3 starts versitygw (found with Tool(t, "versitygw")) on a free port with a fresh root
// directory, over plain HTTP, waits until it answers and stops it when the test ends.
func StartS3(t testing.TB) *S3Server {
	t.Helper()

	return startS3(t, false)
}

// StartS3TLS is StartS3 over HTTPS with a self-signed certificate for 127.0.0.1 (S3Server.CAFile).
func StartS3TLS(t testing.TB) *S3Server {
	t.Helper()

	return startS3(t, true)
}

func startS3(t testing.TB, withTLS bool) *S3Server {
	t.Helper()

	bin := Tool(t, "versitygw")
	s := &S3Server{
		Endpoint: "127.0.0.1:" + freePort(t), AccessKey: "harness-access", SecretKey: "harness-secret-key",
		Root: t.TempDir(), t: t, bin: bin,
	}

	s.URL = "http://" + s.Endpoint
	if withTLS {
		s.CAFile, s.keyFile = selfSignedCert(t, t.TempDir())
		s.URL = "https://" + s.Endpoint
	}
	s.Log = filepath.Join(t.TempDir(), "versitygw.log")

	s.Start()
	t.Cleanup(func() {
		s.Stop()

		if t.Failed() {
			if b, err := os.ReadFile(s.Log); err == nil {
				t.Logf("versitygw log (last 4 KiB):\n%s", tail(b, 4096))
			}
		}
	})

	return s
}

// Start starts the server (again) and waits up to 15s until it answers HTTP.
func (s *S3Server) Start() {
	s.t.Helper()

	s.mu.Lock()
	defer s.mu.Unlock()

	if s.cmd != nil {
		return
	}

	//nolint:gosec // G204: the binary is the pinned test tool found by Tool
	args := []string{"--port", s.Endpoint, "--access", s.AccessKey, "--secret", s.SecretKey}
	if s.CAFile != "" {
		args = append(args, "--cert", s.CAFile, "--key", s.keyFile)
	}

	cmd := exec.Command(s.bin, append(args, "posix", "--nometa", s.Root)...)
	logFile, err := os.OpenFile(s.Log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		s.t.Fatalf("versitygw log: %v", err)
	}
	defer logFile.Close() // the child keeps its own descriptor

	cmd.Stdout, cmd.Stderr = logFile, logFile

	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start versitygw: %v", err)
	}

	s.cmd = cmd

	if err := waitHTTP(s.URL, s.CAFile, 15*time.Second); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		s.cmd = nil
		s.t.Fatalf("versitygw on %s: %v", s.Endpoint, err)
	}
}

// Stop kills the server and waits for it to exit; the data stays in Root.
func (s *S3Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()

	if s.cmd == nil {
		return
	}

	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// CreateBucket creates a bucket by making its directory under Root (the posix backend's
// representation) and returns its name.
func (s *S3Server) CreateBucket(name string) string {
	s.t.Helper()

	if err := os.Mkdir(filepath.Join(s.Root, name), 0o750); err != nil {
		s.t.Fatalf("create bucket %s: %v", name, err)
	}

	return name
}

func freePort(t testing.TB) string {
	t.Helper()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()

	_, port, err := net.SplitHostPort(l.Addr().String())
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}

	return port
}

// waitHTTP polls url until any HTTP response comes back or timeout elapses.
func waitHTTP(url, caFile string, timeout time.Duration) error {
	client, err := httpClient(caFile)
	if err != nil {
		return err
	}

	deadline := time.Now().Add(timeout)

	for {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
		if err != nil {
			return err
		}

		resp, err := client.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			return nil
		}

		if time.Now().After(deadline) {
			return fmt.Errorf("no answer after %s: %w", timeout, err)
		}

		time.Sleep(50 * time.Millisecond)
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}

	return b
}
