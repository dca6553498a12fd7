package server_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
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
	"github.com/backup-oracle/backup-oracle/repo/ledger"
	"github.com/backup-oracle/backup-oracle/server"
)

var update = flag.Bool("update", false, "rewrite golden files")

// fakeOracle is a server.Oracle with function fields.
type fakeOracle struct {
	lookup    func(ctx context.Context, q repo.Query) repo.Answer
	ready     func() error
	status    func() []repo.IndexStatus
	inventory func() []repo.Inventory
}

func (f fakeOracle) Explain(_ context.Context, pvc repo.PVC) []repo.Explanation {
	if !strings.HasPrefix(pvc.Name, "restore") {
		e := repo.Explanation{Backend: "kopia-fs", Finding: repo.Finding{Source: pvc.Name + "-backup@" + pvc.Namespace + ":/data"},
			Nearby: []string{"app-backup@" + pvc.Namespace + ":/data"}, IndexTime: indexTime}
		if strings.HasPrefix(pvc.Name, "other") { // unknown in lookup too
			e.Err = errors.Join(repo.ErrNotLoaded, errors.New("the first refresh of kopia-fs has not finished"))
		}

		if strings.HasPrefix(pvc.Name, "nearmiss") { // as in lookup
			e.Finding.NearMisses = []repo.NearMiss{{Backend: "kopia-fs", Source: pvc.Name + "-backup@" + pvc.Namespace + ":/var/lib/app",
				Rule: "same username and hostname, another path", Snapshots: 2, Latest: now.Add(-time.Hour)}}
		}

		return []repo.Explanation{e}
	}

	return []repo.Explanation{{Backend: "kopia-fs", IndexTime: indexTime, Finding: repo.Finding{
		Source: pvc.Name + "-backup@" + pvc.Namespace + ":/data",
		Snapshots: []repo.Snapshot{
			{ID: "old", StartTime: now.Add(-25 * time.Hour), EndTime: now.Add(-25*time.Hour + time.Minute), TotalSize: 1000, FileCount: 3},
			{ID: "k7f3a", StartTime: now.Add(-time.Hour), TotalSize: 1234, Host: "volsync", Paths: []string{"/data"}, Tags: []string{"web/restore.app"}},
		},
	}}}
}

// Lookup applies the point in time to the answer lookup gives, as the cache does.
func (f fakeOracle) Lookup(ctx context.Context, q repo.Query) repo.Answer {
	pvc, p := q.PVC, q.PointInTime

	a := f.lookup(ctx, q)
	if p.IsZero() || a.Decision == repo.Unknown {
		a.PointInTime = p
		return a
	}

	var snaps []repo.Snapshot
	for _, e := range f.Explain(ctx, pvc) {
		snaps = e.Finding.Snapshots
	}

	return repo.DecideAt(pvc, a.Backend, repo.Finding{Source: a.Source, Snapshots: snaps}, p, a.IndexTime, nil)
}

func (f fakeOracle) Inventory() []repo.Inventory {
	if f.inventory != nil {
		return f.inventory()
	}

	return []repo.Inventory{{Backend: "kopia-fs", IndexTime: indexTime, Stored: []repo.Stored{
		{Source: "app-backup@web:/data", PVC: repo.PVC{Namespace: "web", Name: "app"}, Snapshots: 3,
			Newest: &repo.Snapshot{ID: "n1", StartTime: now.Add(-2 * time.Hour), TotalSize: 2048}},
		{Source: "old-backup@shop:/data", PVC: repo.PVC{Namespace: "shop", Name: "old"}, Snapshots: 1,
			Newest: &repo.Snapshot{ID: "n2", StartTime: now.Add(-50 * time.Hour)}},
		{Source: "redis-backup@shop:/var/lib/redis", PVC: repo.PVC{Namespace: "shop"}, Snapshots: 1,
			Newest: &repo.Snapshot{ID: "n3", StartTime: now.Add(-time.Hour)}},
		{Source: "broken-backup@web:/data", PVC: repo.PVC{Namespace: "web", Name: "broken"},
			Err: errors.Join(repo.ErrUnverifiable, errors.New("only 1 incomplete snapshot(s)"))},
	}}}
}
func (f fakeOracle) Ready() error               { return f.ready() }
func (f fakeOracle) Status() []repo.IndexStatus { return f.status() }

var (
	now       = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	indexTime = now.Add(-4 * time.Second)
	snapshot  = repo.Snapshot{ID: "k7f3a", StartTime: now.Add(-time.Hour), TotalSize: 1234}
)

// oracle answers from the PVC name: restore-*, fresh-*, nearmiss-* (no snapshot, a near miss:
// the real guards decide), anything else unknown.
func oracle() fakeOracle {
	return fakeOracle{
		lookup: func(_ context.Context, q repo.Query) repo.Answer {
			pvc := q.PVC

			switch {
			case strings.HasPrefix(pvc.Name, "nearmiss"):
				a := repo.Decide(pvc, "kopia-fs", repo.Finding{Source: pvc.Name + "-backup@" + pvc.Namespace + ":/data", NearMisses: []repo.NearMiss{{
					Backend: "kopia-fs", Source: pvc.Name + "-backup@" + pvc.Namespace + ":/var/lib/app", Rule: "same username and hostname, another path",
					Snapshots: 2, Latest: now.Add(-time.Hour),
				}}}, indexTime, nil)
				a, _ = repo.Guards{NearMiss: repo.NearMissDeny}.Apply(a, q)

				return a
			case strings.HasPrefix(pvc.Name, "restore"):
				return repo.Decide(pvc, "kopia-fs", repo.Finding{Source: pvc.Name + "-backup@" + pvc.Namespace + ":/data",
					Snapshots: []repo.Snapshot{{ID: "old"}, snapshot}}, indexTime, nil)
			case strings.HasPrefix(pvc.Name, "pending"):
				return repo.Decide(pvc, "restic-s3", repo.Finding{Source: "s3:volsync/" + pvc.Namespace + "/" + pvc.Name}, indexTime,
					fmt.Errorf("restic: repository \"s3:volsync/%s\": 1 of 1 snapshots not verified yet: %w: %w", pvc, repo.ErrUnverifiable, repo.ErrPending))
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
				Stats: repo.IndexStats{Sources: 12, Snapshots: 40, Fitting: 11, RepositoryID: "4ba7ead6006303ae2de8fd4be37fa4dc4b836c9cf7f84091cd4992264836064a"}}}
		},
	}
}

func newServer(t *testing.T, o server.Oracle) (http.Handler, *prometheus.Registry) {
	t.Helper()

	reg := prometheus.NewRegistry()
	h, err := server.New(server.Options{Oracle: o, Registerer: reg, Gatherer: reg, Now: func() time.Time { return now },
		OpenAPI: []byte("openapi: 3.0.3\n"), ReplicationName: func(p repo.PVC) string { return p.Name + "-backup" }})
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

	draining := oracle()
	draining.ready = func() error { return fmt.Errorf("shutting down (%w)", server.ErrDraining) }

	incomplete := oracle()
	incomplete.inventory = func() []repo.Inventory {
		return append(oracle().Inventory(), repo.Inventory{Backend: "restic-s3", Err: fmt.Errorf("%w: the first refresh of restic-s3 has not finished", repo.ErrNotLoaded)})
	}

	layout := oracle()
	layout.status = func() []repo.IndexStatus {
		lf := repo.LayoutFit{Considered: 5, Expected: 1, Others: []repo.SchemeCount{
			{Scheme: "{pvc}-volsync", Sources: 4, Examples: []string{"data-volsync@media:/data", "radarr-volsync@media:/data"}}}}

		return []repo.IndexStatus{
			{Backend: "kopia-fs", LoadedAt: indexTime, LastAttempt: indexTime, Generation: 3, Stats: repo.IndexStats{Sources: 5, Snapshots: 5, Fitting: 1, Layout: lf}},
			{Backend: "kopia-s3", LastAttempt: indexTime, LastError: errors.New("no fitting source"), NotReady: errors.New("no fitting source"),
				Refused: &repo.IndexStats{Sources: 4, Snapshots: 4, Layout: repo.LayoutFit{Considered: 4, Others: lf.Others}}},
		}
	}

	cases := []struct {
		name   string
		oracle server.Oracle
		method string
		path   string
		code   int
		golden string
	}{
		{"pending: unknown while a verification runs, marked so", oracle(), http.MethodGet, "/exists/web/pending", http.StatusServiceUnavailable, "pending.json"},
		{"status: a minority fit and a refused load", layout, http.MethodGet, "/status", http.StatusOK, "status-layout.json"},
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
		{"draining: not ready for the kubelet", draining, http.MethodGet, "/readyz", http.StatusServiceUnavailable, "draining.json"},
		{"draining: ready for an admission that reached it", draining, http.MethodGet, "/readyz?admission=true", http.StatusOK, "draining-admission.json"},
		{"not ready is not ready for admission either", notReady, http.MethodGet, "/readyz?admission=true", http.StatusServiceUnavailable, "not-ready.json"},
		{"invalid admission parameter", oracle(), http.MethodGet, "/readyz?admission=1", http.StatusBadRequest, "readyz-bad-admission.json"},
		{"healthz while not ready", notReady, http.MethodGet, "/healthz", http.StatusOK, "healthz.json"},
		{"status", oracle(), http.MethodGet, "/status", http.StatusOK, "status.json"},
		{"explain restore", oracle(), http.MethodGet, "/explain/web/restore.app", http.StatusOK, "explain-restore.json"},
		{"explain fresh shows nearby sources", oracle(), http.MethodGet, "/explain/web/fresh", http.StatusOK, "explain-fresh.json"},
		{"explain invalid", oracle(), http.MethodGet, "/explain/web/A", http.StatusBadRequest, "explain-invalid.json"},
		{"explain bad path", oracle(), http.MethodGet, "/explain/web", http.StatusBadRequest, "bad-path.json"},
		{"near miss", oracle(), http.MethodGet, "/exists/web/nearmiss", http.StatusServiceUnavailable, "nearmiss.json"},
		{"near miss accepted", oracle(), http.MethodGet, "/exists/web/nearmiss?accept=near-miss", http.StatusOK, "nearmiss-accepted.json"},
		{"unknown acknowledgement", oracle(), http.MethodGet, "/exists/web/nearmiss?accept=everything", http.StatusBadRequest, "bad-accept.json"},
		// For callers that cannot read a non-2xx body (Kyverno's apiCall): the same unknown body
		// with 200; a 400 stays a 400, restore and fresh are unchanged.
		{"unknown as 200", oracle(), http.MethodGet, "/exists/web/other?unknownStatus=200", http.StatusOK, "unknown.json"},
		{"near miss as 200", oracle(), http.MethodGet, "/exists/web/nearmiss?unknownStatus=200", http.StatusOK, "nearmiss.json"},
		{"near miss as 200, accepted", oracle(), http.MethodGet, "/exists/web/nearmiss?unknownStatus=200&accept=near-miss", http.StatusOK, "nearmiss-accepted.json"},
		{"unknown as 503", oracle(), http.MethodGet, "/exists/web/other?unknownStatus=503", http.StatusServiceUnavailable, "unknown.json"},
		{"invalid name, unknown as 200", oracle(), http.MethodGet, "/exists/web/Bad_Name?unknownStatus=200", http.StatusBadRequest, "invalid-pvc.json"},
		{"bad unknownStatus", oracle(), http.MethodGet, "/exists/web/fresh?unknownStatus=404", http.StatusBadRequest, "bad-unknown-status.json"},
		{"explain as of", oracle(), http.MethodGet, "/explain/web/restore.app?asOf=2026-11-20T12:00:00Z", http.StatusOK, "explain-asof.json"},
		{"restore as of", oracle(), http.MethodGet, "/exists/web/restore.app?asOf=2026-11-21T10:00:00Z", http.StatusOK, "restore-asof.json"},
		{"restore previous", oracle(), http.MethodGet, "/exists/web/restore.app?previous=1", http.StatusOK, "restore-previous.json"},
		{"as of before every snapshot", oracle(), http.MethodGet, "/exists/web/restore.app?asOf=2026-11-01T00:00:00Z", http.StatusServiceUnavailable, "asof-none.json"},
		{"previous past the end", oracle(), http.MethodGet, "/exists/web/restore.app?previous=2", http.StatusServiceUnavailable, "previous-none.json"},
		{"fresh as of", oracle(), http.MethodGet, "/exists/web/fresh?asOf=2026-11-01T00:00:00Z", http.StatusOK, "fresh-asof.json"},
		{"bad asOf", oracle(), http.MethodGet, "/exists/web/restore.app?asOf=2026-11-01", http.StatusBadRequest, "bad-asof.json"},
		{"bad previous", oracle(), http.MethodGet, "/exists/web/restore.app?previous=-1", http.StatusBadRequest, "bad-previous.json"},
		{"snapshots", oracle(), http.MethodGet, "/snapshots/web/restore.app", http.StatusOK, "snapshots.json"},
		{"snapshots as of", oracle(), http.MethodGet, "/snapshots/web/restore.app?asOf=2026-11-21T10:00:00Z", http.StatusOK, "snapshots-asof.json"},
		{"snapshots previous", oracle(), http.MethodGet, "/snapshots/web/restore.app?previous=1", http.StatusOK, "snapshots-previous.json"},
		{"snapshots as of before all", oracle(), http.MethodGet, "/snapshots/web/restore.app?asOf=2026-11-01T00:00:00Z", http.StatusNotFound, "snapshots-asof-none.json"},
		{"snapshots none", oracle(), http.MethodGet, "/snapshots/web/fresh", http.StatusNotFound, "snapshots-none.json"},
		{"snapshots of a near miss name it", oracle(), http.MethodGet, "/snapshots/web/nearmiss", http.StatusNotFound, "snapshots-nearmiss.json"},
		{"snapshots unknown", oracle(), http.MethodGet, "/snapshots/web/other", http.StatusServiceUnavailable, "snapshots-unknown.json"},
		{"snapshots invalid", oracle(), http.MethodGet, "/snapshots/web/Bad_Name", http.StatusBadRequest, "snapshots-invalid.json"},
		{"snapshots bad asOf", oracle(), http.MethodGet, "/snapshots/web/x?asOf=now", http.StatusBadRequest, "snapshots-bad-asof.json"},
		{"snapshots bad path", oracle(), http.MethodGet, "/snapshots/web", http.StatusBadRequest, "bad-path.json"},
		{"identity", oracle(), http.MethodGet, "/identity/web/my.app", http.StatusOK, "identity.json"},
		{"identity invalid", oracle(), http.MethodGet, "/identity/Web/app", http.StatusBadRequest, "identity-invalid.json"},
		{"backups", oracle(), http.MethodGet, "/backups", http.StatusOK, "backups.json"},
		{"backups of a namespace", oracle(), http.MethodGet, "/backups?namespace=shop", http.StatusOK, "backups-shop.json"},
		{"stale backups", oracle(), http.MethodGet, "/backups?staleFor=26h", http.StatusOK, "backups-stale.json"},
		{"backups bad filters", oracle(), http.MethodGet, "/backups?staleFor=1d&namespace=A", http.StatusBadRequest, "backups-bad.json"},
		{"backups incomplete", incomplete, http.MethodGet, "/backups", http.StatusServiceUnavailable, "backups-incomplete.json"},
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
	o.lookup = func(ctx context.Context, q repo.Query) repo.Answer {
		<-ctx.Done()
		return repo.Decide(q.PVC, "slow", repo.Finding{}, time.Time{}, ctx.Err())
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

// TestLedgerExport: GET /backups?format=ledger is an expected-backups ledger that the ledger
// reader accepts, listing the PVCs the inventory maps back to and, as comments, the sources it
// cannot; an incomplete inventory exports nothing.
func TestLedgerExport(t *testing.T) {
	h, _ := newServer(t, oracle())
	rec := get(h, http.MethodGet, "/backups?format=ledger")

	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, "application/yaml; charset=utf-8", rec.Header().Get("Content-Type"))
	assert.Contains(t, rec.Body.String(), "#   kopia-fs: redis-backup@shop:/var/lib/redis\n", "a source without a PVC name is a comment")

	pvcs, err := ledger.Parse(rec.Body.Bytes())
	require.NoError(t, err, rec.Body.String())
	assert.Equal(t, map[repo.PVC]bool{
		{Namespace: "shop", Name: "old"}: true, {Namespace: "web", Name: "app"}: true, {Namespace: "web", Name: "broken"}: true,
	}, pvcs, "every PVC with a backup, and the one whose snapshots cannot be vouched for")

	incomplete := oracle()
	incomplete.inventory = func() []repo.Inventory {
		return []repo.Inventory{{Backend: "kopia-fs", Err: repo.ErrStale}}
	}

	h, _ = newServer(t, incomplete)
	rec = get(h, http.MethodGet, "/backups?format=ledger")
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.Contains(t, rec.Body.String(), "no ledger is exported")

	h, _ = newServer(t, oracle())
	assert.Equal(t, http.StatusBadRequest, get(h, http.MethodGet, "/backups?format=csv").Code)
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
	o.lookup = func(context.Context, repo.Query) repo.Answer { return memo }

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
