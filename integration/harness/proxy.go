package harness

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// FaultProxy is an HTTP reverse proxy on 127.0.0.1 that can delay requests or answer them with
// an error status, to test timeouts and retries against a real server. Safe for concurrent use.
type FaultProxy struct {
	// Endpoint is "127.0.0.1:<port>"; URL is "http://" + Endpoint.
	Endpoint, URL string

	mu        sync.Mutex
	delay     time.Duration
	status    int
	failLeft  int // requests still to fail; <0: all
	requests  atomic.Int64
	injected  atomic.Int64
	forwarded atomic.Int64
}

// StartFaultProxy proxies to target (a base URL such as S3Server.URL) until the test ends.
// The Host header is kept, so signed requests (S3 SigV4) stay valid.
func StartFaultProxy(t testing.TB, target string) *FaultProxy {
	t.Helper()

	u, err := url.Parse(target)
	if err != nil {
		t.Fatalf("proxy target %q: %v", target, err)
	}

	p := &FaultProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.serve(rp, w, r)
	}))
	t.Cleanup(srv.Close)

	p.URL = srv.URL
	p.Endpoint = srv.Listener.Addr().String()

	return p
}

// SetDelay delays every following request by d before forwarding it (0: no delay).
func (p *FaultProxy) SetDelay(d time.Duration) {
	p.mu.Lock()
	p.delay = d
	p.mu.Unlock()
}

// Fail answers the next n requests (n < 0: all until Reset) with status and an S3-style body.
func (p *FaultProxy) Fail(n, status int) {
	p.mu.Lock()
	p.failLeft, p.status = n, status
	p.mu.Unlock()
}

// Reset removes delays and failures.
func (p *FaultProxy) Reset() {
	p.mu.Lock()
	p.delay, p.failLeft, p.status = 0, 0, 0
	p.mu.Unlock()
}

// Requests counts the requests received.
func (p *FaultProxy) Requests() int64 { return p.requests.Load() }

// Injected counts the requests answered with an injected failure.
func (p *FaultProxy) Injected() int64 { return p.injected.Load() }

// Forwarded counts the requests passed to the target.
func (p *FaultProxy) Forwarded() int64 { return p.forwarded.Load() }

func (p *FaultProxy) serve(rp *httputil.ReverseProxy, w http.ResponseWriter, r *http.Request) {
	p.requests.Add(1)

	p.mu.Lock()
	delay, status, fail := p.delay, p.status, p.failLeft != 0
	if p.failLeft > 0 {
		p.failLeft--
	}
	p.mu.Unlock()

	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}

	if fail {
		p.injected.Add(1)
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>injected by harness.FaultProxy</Message></Error>`))

		return
	}

	p.forwarded.Add(1)
	rp.ServeHTTP(w, r)
}
