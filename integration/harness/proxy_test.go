package harness

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestFaultProxy(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(r.Host))
	}))
	t.Cleanup(backend.Close)

	p := StartFaultProxy(t, backend.URL)

	get := func(timeout time.Duration) (int, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()

		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL, nil)

		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()

		return resp.StatusCode, nil
	}

	tests := []struct {
		name   string
		setup  func()
		status []int // one per request; 0: the request must time out
	}{
		{"passes through", func() {}, []int{200}},
		{"fails the next two", func() { p.Fail(2, 503) }, []int{503, 503, 200}},
		{"fails until reset", func() { p.Fail(-1, 500) }, []int{500, 500, 500}},
		{"delays", func() { p.SetDelay(time.Second) }, []int{0}},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p.Reset()
			tt.setup()

			for i, want := range tt.status {
				got, err := get(200 * time.Millisecond)
				if want == 0 {
					if err == nil {
						t.Fatalf("request %d: want a timeout, got %d", i, got)
					}

					continue
				}

				if err != nil || got != want {
					t.Fatalf("request %d: got %d, %v; want %d", i, got, err, want)
				}
			}
		})
	}
}

func TestS3ServerRestarts(t *testing.T) {
	s := StartS3(t)

	s.Stop()

	if err := waitHTTP(s.URL, "", 100*time.Millisecond); err == nil {
		t.Fatal("server still answers after Stop")
	}

	s.Start()

	if err := waitHTTP(s.URL, "", time.Second); err != nil {
		t.Fatalf("server does not answer after Start: %v", err)
	}
}
