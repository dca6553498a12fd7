package server_test

import (
	"context"
	"errors"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/repo"
	"github.com/backup-oracle/backup-oracle/server"
)

var update = flag.Bool("update", false, "rewrite golden files")

// fakeOracle is a server.Oracle with function fields.
type fakeOracle struct {
	lookup func(ctx context.Context, pvc repo.PVC) repo.Answer
	ready  func() error
	status func() []repo.IndexStatus
}

func (f fakeOracle) Explain(_ context.Context, pvc repo.PVC) []repo.Explanation {
	if !strings.HasPrefix(pvc.Name, "restore") {
		return []repo.Explanation{{Backend: "kopia-fs", Finding: repo.Finding{Source: pvc.Name + "-backup@" + pvc.Namespace + ":/data"},
			Nearby: []string{"app-backup@" + pvc.Namespace + ":/data"}, IndexTime: indexTime}}
	}

	return []repo.Explanation{{Backend: "kopia-fs", IndexTime: indexTime, Finding: repo.Finding{
		Source: pvc.Name + "-backup@" + pvc.Namespace + ":/data",
		Snapshots: []repo.Snapshot{
			{ID: "old", StartTime: now.Add(-25 * time.Hour), EndTime: now.Add(-25*time.Hour + time.Minute), TotalSize: 1000, FileCount: 3},
			{ID: "k7f3a", StartTime: now.Add(-time.Hour), TotalSize: 1234, Host: "volsync", Paths: []string{"/data"}, Tags: []string{"web/restore.app"}},
		},
	}}}
}

func (f fakeOracle) Lookup(ctx context.Context, pvc repo.PVC) repo.Answer { return f.lookup(ctx, pvc) }
func (f fakeOracle) Ready() error                                         { return f.ready() }
func (f fakeOracle) Status() []repo.IndexStatus                           { return f.status() }

var (
	now       = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	indexTime = now.Add(-4 * time.Second)
	snapshot  = repo.Snapshot{ID: "k7f3a", StartTime: now.Add(-time.Hour), TotalSize: 1234}
)

// oracle answers from the PVC name: restore-*, fresh-*, anything else unknown.
func oracle() fakeOracle {
	return fakeOracle{
		lookup: func(_ context.Context, pvc repo.PVC) repo.Answer {
			switch {
			case strings.HasPrefix(pvc.Name, "restore"):
				return repo.Decide(pvc, "kopia-fs", repo.Finding{Source: pvc.Name + "-backup@" + pvc.Namespace + ":/data",
					Snapshots: []repo.Snapshot{{ID: "old"}, snapshot}}, indexTime, nil)
			case strings.HasPrefix(pvc.Name, "fresh"):
				return repo.Decide(pvc, "kopia-fs", repo.Finding{Source: pvc.Name + "-backup@" + pvc.Namespace + ":/data"}, indexTime, nil)
			default:
				return repo.Decide(pvc, "kopia-fs", repo.Finding{}, time.Time{},
					errors.Join(repo.ErrNotLoaded, errors.New("the first refresh of kopia-fs has not finished")))
			}
		},
		ready: func() error { return nil },
		status: func() []repo.IndexStatus {
			return []repo.IndexStatus{{Backend: "kopia-fs", LoadedAt: indexTime, LastAttempt: indexTime, Generation: 3,
				Stats: repo.IndexStats{Sources: 12, Snapshots: 40}}}
		},
	}
}

func newServer(t *testing.T, o server.Oracle) (http.Handler, *prometheus.Registry) {
	t.Helper()

	reg := prometheus.NewRegistry()
	h, err := server.New(server.Options{Oracle: o, Registerer: reg, Gatherer: reg, Now: func() time.Time { return now }})
	require.NoError(t, err)

	return h, reg
}

func get(h http.Handler, method, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))

	return rec
}

func TestEndpoints(t *testing.T) {
	notReady := oracle()
	notReady.ready = func() error { return repo.ErrStale }

	cases := []struct {
		name   string
		oracle server.Oracle
		method string
		path   string
		code   int
		golden string
	}{
		{"restore", oracle(), http.MethodGet, "/exists/web/restore.app", http.StatusOK, "restore.json"},
		{"fresh", oracle(), http.MethodGet, "/exists/web/fresh", http.StatusOK, "fresh.json"},
		{"unknown", oracle(), http.MethodGet, "/exists/web/other", http.StatusServiceUnavailable, "unknown.json"},
		{"invalid pvc", oracle(), http.MethodGet, "/exists/web/Bad_Name", http.StatusBadRequest, "invalid-pvc.json"},
		{"invalid namespace", oracle(), http.MethodGet, "/exists/a.b/data", http.StatusBadRequest, "invalid-namespace.json"},
		{"too long", oracle(), http.MethodGet, "/exists/web/" + strings.Repeat("a", 300), http.StatusBadRequest, "too-long.json"},
		{"missing pvc", oracle(), http.MethodGet, "/exists/web", http.StatusBadRequest, "bad-path.json"},
		{"extra segment", oracle(), http.MethodGet, "/exists/web/a/b", http.StatusBadRequest, "bad-path.json"},
		{"wrong method", oracle(), http.MethodPost, "/exists/web/fresh", http.StatusMethodNotAllowed, "method.json"},
		{"not found", oracle(), http.MethodGet, "/nope", http.StatusNotFound, "not-found.json"},
		{"ready", oracle(), http.MethodGet, "/readyz", http.StatusOK, "ready.json"},
		{"not ready", notReady, http.MethodGet, "/readyz", http.StatusServiceUnavailable, "not-ready.json"},
		{"healthz while not ready", notReady, http.MethodGet, "/healthz", http.StatusOK, "healthz.json"},
		{"status", oracle(), http.MethodGet, "/status", http.StatusOK, "status.json"},
		{"explain restore", oracle(), http.MethodGet, "/explain/web/restore.app", http.StatusOK, "explain-restore.json"},
		{"explain fresh shows nearby sources", oracle(), http.MethodGet, "/explain/web/fresh", http.StatusOK, "explain-fresh.json"},
		{"explain invalid", oracle(), http.MethodGet, "/explain/web/A", http.StatusBadRequest, "explain-invalid.json"},
		{"explain bad path", oracle(), http.MethodGet, "/explain/web", http.StatusBadRequest, "bad-path.json"},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := newServer(t, tc.oracle)
			rec := get(h, tc.method, tc.path)

			assert.Equal(t, tc.code, rec.Code)
			assert.Equal(t, "application/json; charset=utf-8", rec.Header().Get("Content-Type"))
			golden(t, tc.golden, rec.Body.Bytes())
		})
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()

	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, append(got, '\n'), 0o644))
	}

	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./server -update to create it")
	assert.JSONEq(t, string(want), string(got))
}

func TestLookupGetsRequestTimeout(t *testing.T) {
	o := oracle()
	o.lookup = func(ctx context.Context, pvc repo.PVC) repo.Answer {
		<-ctx.Done()
		return repo.Decide(pvc, "slow", repo.Finding{}, time.Time{}, ctx.Err())
	}

	reg := prometheus.NewRegistry()
	h, err := server.New(server.Options{Oracle: o, Registerer: reg, Gatherer: reg, RequestTimeout: 10 * time.Millisecond})
	require.NoError(t, err)

	rec := get(h, http.MethodGet, "/exists/web/data")
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.Contains(t, rec.Body.String(), "deadline exceeded")
}

func TestMetrics(t *testing.T) {
	h, reg := newServer(t, oracle())
	for _, p := range []string{"/exists/web/restore", "/exists/web/fresh", "/exists/web/fresh2", "/exists/web/x", "/exists/web/X", "/readyz", "/nope/1", "/nope/2"} {
		get(h, http.MethodGet, p)
	}

	assert.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP backup_oracle_decisions_total Answers of /exists by backend and decision (restore, fresh, unknown).
# TYPE backup_oracle_decisions_total counter
backup_oracle_decisions_total{backend="kopia-fs",decision="fresh"} 2
backup_oracle_decisions_total{backend="kopia-fs",decision="restore"} 1
backup_oracle_decisions_total{backend="kopia-fs",decision="unknown"} 1
# HELP backup_oracle_http_requests_total HTTP requests by route and status code.
# TYPE backup_oracle_http_requests_total counter
backup_oracle_http_requests_total{code="200",route="/exists/:namespace/:pvc"} 3
backup_oracle_http_requests_total{code="200",route="/readyz"} 1
backup_oracle_http_requests_total{code="400",route="/exists/:namespace/:pvc"} 1
backup_oracle_http_requests_total{code="404",route="unmatched"} 2
backup_oracle_http_requests_total{code="503",route="/exists/:namespace/:pvc"} 1
`), "backup_oracle_decisions_total", "backup_oracle_http_requests_total"))

	n, err := testutil.GatherAndCount(reg, "backup_oracle_http_request_duration_seconds")
	require.NoError(t, err)
	assert.Equal(t, 3, n, "one histogram per route, raw paths never become labels")

	rec := get(h, http.MethodGet, "/metrics")
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Contains(t, rec.Body.String(), "backup_oracle_decisions_total")
}

// FuzzExistsPath: whatever the path, the server answers with a known status, never panics,
// and never says fresh or restore for a name Kubernetes would reject.
func FuzzExistsPath(f *testing.F) {
	for _, s := range []string{"web/fresh", "web/restore.x", "a.b/c", "web/" + strings.Repeat("r", 260), "%2F/x", "web/..", "web/a%00b"} {
		f.Add(s)
	}

	reg := prometheus.NewRegistry()
	h, err := server.New(server.Options{Oracle: oracle(), Registerer: reg, Gatherer: reg})
	require.NoError(f, err)

	f.Fuzz(func(t *testing.T, suffix string) {
		req, err := http.NewRequest(http.MethodGet, "http://x/exists/"+suffix, nil)
		if err != nil {
			return
		}

		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)

		switch rec.Code {
		case http.StatusOK:
			parts := strings.Split(strings.TrimPrefix(req.URL.Path, "/exists/"), "/")
			require.Len(t, parts, 2, "200 only for exactly namespace/pvc")
			assert.NoError(t, repo.PVC{Namespace: parts[0], Name: parts[1]}.Validate())
		case http.StatusBadRequest, http.StatusServiceUnavailable, http.StatusNotFound, http.StatusMovedPermanently, http.StatusTemporaryRedirect:
		default:
			t.Fatalf("unexpected status %d for %q", rec.Code, suffix)
		}
	})
}

// BenchmarkExistsHandler is the handler's own cost on the hit path (no network).
func BenchmarkExistsHandler(b *testing.B) {
	h, _ := newServer(&testing.T{}, oracle())
	req := httptest.NewRequest(http.MethodGet, "/exists/web/restore.app", nil)

	b.ReportAllocs()

	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
	}
}

// discardWriter is a reusable http.ResponseWriter, so the benchmark measures the handler alone.
type discardWriter struct {
	h    http.Header
	code int
	n    int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }
func (w *discardWriter) Write(b []byte) (int, error) { w.n += len(b); return len(b), nil }

// BenchmarkExistsHit is the hit path as the service runs it: the oracle returns a memoised answer
// (no allocation of its own), the handler validates, looks up, counts and renders.
func BenchmarkExistsHit(b *testing.B) {
	memo := repo.Decide(repo.PVC{Namespace: "web", Name: "restore.app"}, "kopia-fs",
		repo.Finding{Source: "restore.app-backup@web:/data", Snapshots: []repo.Snapshot{{ID: "old"}, snapshot}}, indexTime, nil)
	o := oracle()
	o.lookup = func(context.Context, repo.PVC) repo.Answer { return memo }

	reg := prometheus.NewRegistry()
	h, err := server.New(server.Options{Oracle: o, Registerer: reg, Gatherer: reg})
	require.NoError(b, err)

	req := httptest.NewRequest(http.MethodGet, "/exists/web/restore.app", nil)
	w := &discardWriter{h: http.Header{}}

	b.ReportAllocs()

	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
	}

	require.Equal(b, http.StatusOK, w.code)
}
