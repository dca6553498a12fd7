//go:build e2e

package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
	"time"
)

// service stands in for the chart's Service and kube-proxy in front of the Deployment's
// replicas (no kubelet runs here: the replicas are processes): each request goes to one ready
// endpoint, round robin, and fails with 503 when none is ready (a Service without endpoints
// refuses connections; the policies deny either way). An endpoint is ready while its /readyz
// answers 200, probed every 100 ms, as the chart's readiness probe does every few seconds.
type service struct {
	srv *httptest.Server

	mu        sync.Mutex
	endpoints []*endpoint
	next      int
}

// endpoint is one replica behind the service.
type endpoint struct {
	url   *url.URL
	ready bool
	stop  context.CancelFunc
	done  chan struct{}
}

func startService(t *testing.T) *service {
	t.Helper()

	s := &service{}
	// The handler points the request at the endpoint; the proxy's Rewrite has nothing to add.
	proxy := &httputil.ReverseProxy{Rewrite: func(*httputil.ProxyRequest) {}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e := s.pick()
		if e == nil {
			http.Error(w, "no ready endpoint", http.StatusServiceUnavailable)
			return
		}

		r = r.Clone(r.Context())
		r.URL.Scheme, r.URL.Host, r.Host = e.url.Scheme, e.url.Host, e.url.Host
		proxy.ServeHTTP(w, r)
	}))

	t.Cleanup(func() {
		s.mu.Lock()
		eps := s.endpoints
		s.endpoints = nil
		s.mu.Unlock()

		for _, e := range eps {
			e.stop()
			<-e.done
		}

		s.srv.Close()
	})

	return s
}

// URL is what the policies call (policies.oracleURL).
func (s *service) URL() string { return s.srv.URL }

// pick returns the next ready endpoint, or nil.
func (s *service) pick() *endpoint {
	s.mu.Lock()
	defer s.mu.Unlock()

	for range s.endpoints {
		e := s.endpoints[s.next%len(s.endpoints)]
		s.next++

		if e.ready {
			return e
		}
	}

	return nil
}

// add puts the replica at rawURL behind the service and starts probing it.
func (s *service) add(t *testing.T, rawURL string) {
	t.Helper()

	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	e := &endpoint{url: u, stop: cancel, done: make(chan struct{})}

	s.mu.Lock()
	s.endpoints = append(s.endpoints, e)
	s.mu.Unlock()

	go s.probe(ctx, e)
}

// remove takes the replica at rawURL out of the service.
func (s *service) remove(rawURL string) {
	s.mu.Lock()

	var gone *endpoint

	for i, e := range s.endpoints {
		if e.url.String() == rawURL {
			gone = e
			s.endpoints = append(s.endpoints[:i], s.endpoints[i+1:]...)

			break
		}
	}
	s.mu.Unlock()

	if gone != nil {
		gone.stop()
		<-gone.done
	}
}

// readyCount returns how many endpoints are ready.
func (s *service) readyCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()

	n := 0

	for _, e := range s.endpoints {
		if e.ready {
			n++
		}
	}

	return n
}

// isReady reports whether the endpoint at rawURL is ready.
func (s *service) isReady(rawURL string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()

	for _, e := range s.endpoints {
		if e.url.String() == rawURL {
			return e.ready
		}
	}

	return false
}

func (s *service) probe(ctx context.Context, e *endpoint) {
	defer close(e.done)

	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(100 * time.Millisecond)

	defer tick.Stop()

	for {
		ready := false

		req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.url.String()+"/readyz", nil)
		if err == nil {
			if resp, err := client.Do(req); err == nil {
				ready = resp.StatusCode == http.StatusOK
				_ = resp.Body.Close()
			}
		}

		s.mu.Lock()
		e.ready = ready
		s.mu.Unlock()

		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
