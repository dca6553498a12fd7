package cache_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/cache"
	"github.com/backup-oracle/backup-oracle/repo"
)

// fakeLoader returns whatever load says.
type fakeLoader struct {
	load func(ctx context.Context) (repo.Index, error)
}

func (f *fakeLoader) Load(ctx context.Context) (repo.Index, error) { return f.load(ctx) }

// fakeIndex maps PVC names to snapshot counts; find, when set, replaces the lookup.
type fakeIndex struct {
	snaps map[string]int
	find  func(ctx context.Context, pvc repo.PVC) (repo.Finding, error)
}

func (f *fakeIndex) Find(ctx context.Context, pvc repo.PVC) (repo.Finding, error) {
	if f.find != nil {
		return f.find(ctx, pvc)
	}

	fd := repo.Finding{Source: pvc.Name + "-backup"}
	for i := range f.snaps[pvc.Name] {
		fd.Snapshots = append(fd.Snapshots, repo.Snapshot{ID: string(rune('a' + i))})
	}

	return fd, nil
}

func (f *fakeIndex) Stats() repo.IndexStats {
	return repo.IndexStats{Sources: len(f.snaps), Bytes: 100 * int64(len(f.snaps))}
}

// Nearby names every other PVC with snapshots.
func (f *fakeIndex) Nearby(pvc repo.PVC) []string {
	var out []string

	for name := range f.snaps {
		if name != pvc.Name {
			out = append(out, name+"-backup")
		}
	}

	slices.Sort(out)

	return out
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

var (
	data = repo.PVC{Namespace: "web", Name: "data"}
	none = repo.PVC{Namespace: "web", Name: "none"}
)

func newCache(t *testing.T, l cache.Loader, clk *clock, reg prometheus.Registerer) *cache.Cache {
	t.Helper()

	// AllowEmpty: several fakes answer through a find function and hold no sources.
	opts := cache.Options{Backend: "fake", Loader: l, MaxIndexAge: time.Minute, Now: clk.now, AllowEmpty: true}
	if reg != nil {
		opts.Metrics = cache.NewMetrics(reg)
	}

	c, err := cache.New(opts)
	require.NoError(t, err)

	return c
}

func TestLookupFailClosed(t *testing.T) {
	boom := errors.New("nfs gone")
	idx := &fakeIndex{snaps: map[string]int{"data": 2}}

	cases := []struct {
		name   string
		steps  func(t *testing.T, c *cache.Cache, clk *clock, fail *atomic.Bool)
		want   map[repo.PVC]repo.Decision
		reason error
	}{
		{"before the first refresh", func(*testing.T, *cache.Cache, *clock, *atomic.Bool) {},
			map[repo.PVC]repo.Decision{data: repo.Unknown, none: repo.Unknown}, repo.ErrNotLoaded},
		{"first refresh failed", func(t *testing.T, c *cache.Cache, _ *clock, fail *atomic.Bool) {
			fail.Store(true)
			require.Error(t, c.Refresh(context.Background()))
		}, map[repo.PVC]repo.Decision{data: repo.Unknown, none: repo.Unknown}, boom},
		{"loaded", func(t *testing.T, c *cache.Cache, _ *clock, _ *atomic.Bool) {
			require.NoError(t, c.Refresh(context.Background()))
		}, map[repo.PVC]repo.Decision{data: repo.Restore, none: repo.Fresh}, nil},
		{"stale", func(t *testing.T, c *cache.Cache, clk *clock, _ *atomic.Bool) {
			require.NoError(t, c.Refresh(context.Background()))
			clk.add(time.Minute + time.Millisecond)
		}, map[repo.PVC]repo.Decision{data: repo.Unknown, none: repo.Unknown}, repo.ErrStale},
		{"latest refresh failed", func(t *testing.T, c *cache.Cache, _ *clock, fail *atomic.Bool) {
			require.NoError(t, c.Refresh(context.Background()))
			fail.Store(true)
			require.Error(t, c.Refresh(context.Background()))
		}, map[repo.PVC]repo.Decision{data: repo.Unknown, none: repo.Unknown}, boom},
		{"recovered", func(t *testing.T, c *cache.Cache, _ *clock, fail *atomic.Bool) {
			fail.Store(true)
			require.Error(t, c.Refresh(context.Background()))
			fail.Store(false)
			require.NoError(t, c.Refresh(context.Background()))
		}, map[repo.PVC]repo.Decision{data: repo.Restore, none: repo.Fresh}, nil},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var fail atomic.Bool

			clk := &clock{t: time.Unix(1_000_000, 0)}
			c := newCache(t, &fakeLoader{load: func(context.Context) (repo.Index, error) {
				if fail.Load() {
					return nil, boom
				}

				return idx, nil
			}}, clk, nil)

			tc.steps(t, c, clk, &fail)

			for pvc, want := range tc.want {
				a := c.Lookup(context.Background(), pvc)
				assert.Equal(t, want, a.Decision, pvc.String())

				if tc.reason != nil {
					assert.ErrorIs(t, a.Reason, tc.reason)
					assert.ErrorIs(t, c.Ready(), tc.reason)
				} else {
					assert.NoError(t, c.Ready())
				}
			}
		})
	}
}

func TestLookupFindErrorIsUnknown(t *testing.T) {
	clk := &clock{t: time.Unix(1_000_000, 0)}
	idx := &fakeIndex{find: func(context.Context, repo.PVC) (repo.Finding, error) {
		return repo.Finding{Source: "s"}, repo.ErrUnverifiable
	}}
	c := newCache(t, &fakeLoader{load: func(context.Context) (repo.Index, error) { return idx, nil }}, clk, nil)
	require.NoError(t, c.Refresh(context.Background()))

	a := c.Lookup(context.Background(), none)
	assert.Equal(t, repo.Unknown, a.Decision)
	assert.ErrorIs(t, a.Reason, repo.ErrUnverifiable)
	assert.NoError(t, c.Ready(), "one unverifiable source does not make the whole index unready")
}

// TestLookupTransientAnswersAreNotMemoised: an answer that may change within seconds (the backend
// could not be read, or a verification is pending) is asked again; a settled one is memoised.
func TestLookupTransientAnswersAreNotMemoised(t *testing.T) {
	for _, tc := range []struct {
		err      error
		memoised bool
	}{
		{fmt.Errorf("listing timed out: %w", repo.ErrUnavailable), false},
		{fmt.Errorf("1 of 2 snapshots not verified yet: %w: %w", repo.ErrUnverifiable, repo.ErrPending), false},
		{fmt.Errorf("snapshot does not decrypt: %w", repo.ErrUnverifiable), true},
	} {
		t.Run(tc.err.Error(), func(t *testing.T) {
			clk := &clock{t: time.Unix(1_000_000, 0)}

			var finds atomic.Int32

			idx := &fakeIndex{find: func(context.Context, repo.PVC) (repo.Finding, error) {
				finds.Add(1)
				return repo.Finding{Source: "s"}, tc.err
			}}
			c := newCache(t, &fakeLoader{load: func(context.Context) (repo.Index, error) { return idx, nil }}, clk, nil)
			require.NoError(t, c.Refresh(context.Background()))

			for range 2 {
				a := c.Lookup(context.Background(), none)
				assert.Equal(t, repo.Unknown, a.Decision)
				assert.ErrorIs(t, a.Reason, tc.err)
			}

			want := int32(2)
			if tc.memoised {
				want = 1
			}

			assert.Equal(t, want, finds.Load())
		})
	}
}

func TestLookupMemoInvalidatedByRefresh(t *testing.T) {
	clk := &clock{t: time.Unix(1_000_000, 0)}
	snaps := map[string]int{}

	var finds atomic.Int32

	load := func(context.Context) (repo.Index, error) {
		copied := map[string]int{}
		for k, v := range snaps {
			copied[k] = v
		}

		ix := &fakeIndex{snaps: copied}

		return &fakeIndex{find: func(ctx context.Context, pvc repo.PVC) (repo.Finding, error) {
			finds.Add(1)
			return ix.Find(ctx, pvc)
		}, snaps: copied}, nil
	}
	c := newCache(t, &fakeLoader{load: load}, clk, nil)

	require.NoError(t, c.Refresh(context.Background()))
	assert.Equal(t, repo.Fresh, c.Lookup(context.Background(), data).Decision)
	assert.Equal(t, repo.Fresh, c.Lookup(context.Background(), data).Decision)
	assert.EqualValues(t, 1, finds.Load(), "second lookup is memoised")

	snaps["data"] = 1 // a backup ran

	require.NoError(t, c.Refresh(context.Background()))
	assert.Equal(t, repo.Restore, c.Lookup(context.Background(), data).Decision, "refresh invalidates the memo")
	assert.EqualValues(t, 2, finds.Load())
}

func TestLookupCollapsesAndSurvivesCancelledCaller(t *testing.T) {
	clk := &clock{t: time.Unix(1_000_000, 0)}
	release := make(chan struct{})

	var finds atomic.Int32

	idx := &fakeIndex{find: func(ctx context.Context, _ repo.PVC) (repo.Finding, error) {
		finds.Add(1)
		select {
		case <-release:
		case <-ctx.Done():
			return repo.Finding{}, ctx.Err()
		}

		return repo.Finding{Source: "s", Snapshots: []repo.Snapshot{{ID: "x"}}}, nil
	}}
	c := newCache(t, &fakeLoader{load: func(context.Context) (repo.Index, error) { return idx, nil }}, clk, nil)
	require.NoError(t, c.Refresh(context.Background()))

	cancelled, cancel := context.WithCancel(context.Background())

	var wg sync.WaitGroup

	answers := make([]repo.Answer, 5)
	for i := range answers {
		wg.Add(1)

		go func() {
			defer wg.Done()

			ctx := context.Background()
			if i == 0 {
				ctx = cancelled
			}

			answers[i] = c.Lookup(ctx, data)
		}()
	}

	require.Eventually(t, func() bool { return finds.Load() == 1 }, 5*time.Second, time.Millisecond)
	cancel()
	time.Sleep(20 * time.Millisecond) // the cancelled caller gives up; the others keep waiting
	close(release)
	wg.Wait()

	assert.EqualValues(t, 1, finds.Load(), "identical concurrent lookups share one Find")
	assert.Equal(t, repo.Unknown, answers[0].Decision, "the cancelled caller gets unknown")
	assert.ErrorIs(t, answers[0].Reason, context.Canceled)

	for _, a := range answers[1:] {
		assert.Equal(t, repo.Restore, a.Decision, "other callers are not failed by the cancelled one")
	}
}

func TestRunRetriesAfterFailure(t *testing.T) {
	var calls atomic.Int32

	l := &fakeLoader{load: func(context.Context) (repo.Index, error) {
		if calls.Add(1) == 1 {
			return nil, errors.New("transient")
		}

		return &fakeIndex{}, nil
	}}
	c, err := cache.New(cache.Options{Backend: "fake", Loader: l, RefreshInterval: time.Hour, AllowEmpty: true})
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})

	go func() { c.Run(ctx); close(done) }()

	require.Eventually(t, func() bool { return c.Ready() == nil }, 5*time.Second, 10*time.Millisecond,
		"a failed first refresh is retried long before the hour-long interval")
	cancel()
	<-done
}

func TestRefreshTimeout(t *testing.T) {
	l := &fakeLoader{load: func(ctx context.Context) (repo.Index, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	c, err := cache.New(cache.Options{Backend: "fake", Loader: l, RefreshTimeout: 20 * time.Millisecond})
	require.NoError(t, err)
	assert.ErrorIs(t, c.Refresh(context.Background()), context.DeadlineExceeded)
	assert.Error(t, c.Ready())
}

// TestRefreshBoundedWhenLoaderIgnoresContext: REFRESH_TIMEOUT holds even when the loader does not
// honour its context, and a stuck load is never joined by a second one.
func TestRefreshBoundedWhenLoaderIgnoresContext(t *testing.T) {
	release := make(chan struct{})

	var loads atomic.Int32

	l := &fakeLoader{load: func(context.Context) (repo.Index, error) {
		if loads.Add(1) == 1 {
			<-release // ignores its context
		}

		return &fakeIndex{snaps: map[string]int{"data": 1}}, nil
	}}
	c, err := cache.New(cache.Options{Backend: "fake", Loader: l, RefreshTimeout: 50 * time.Millisecond})
	require.NoError(t, err)

	start := time.Now()
	err = c.Refresh(context.Background())
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorIs(t, err, repo.ErrUnavailable)
	assert.Less(t, time.Since(start), 5*time.Second, "bounded by the refresh timeout, not by the loader")

	err = c.Refresh(context.Background())
	require.ErrorContains(t, err, "still running")
	assert.EqualValues(t, 1, loads.Load(), "no second load while the first is stuck")
	assert.Equal(t, repo.Unknown, c.Lookup(context.Background(), data).Decision)

	close(release)
	require.Eventually(t, func() bool { return c.Refresh(context.Background()) == nil }, 5*time.Second, 10*time.Millisecond)
	assert.EqualValues(t, 2, loads.Load(), "the stuck load's late result is not used: a new load ran")
	assert.Equal(t, repo.Restore, c.Lookup(context.Background(), data).Decision)
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	clk := &clock{t: time.Unix(1_000_000, 0)}

	var fail atomic.Bool

	c := newCache(t, &fakeLoader{load: func(context.Context) (repo.Index, error) {
		if fail.Load() {
			return nil, errors.New("down")
		}

		return &fakeIndex{snaps: map[string]int{"a": 1, "b": 2}}, nil
	}}, clk, reg)

	require.NoError(t, c.Refresh(context.Background()))
	fail.Store(true)
	require.Error(t, c.Refresh(context.Background()))

	n, err := testutil.GatherAndCount(reg, "backup_oracle_index_refresh_duration_seconds")
	require.NoError(t, err)
	assert.Equal(t, 1, n)

	sources, err := reg.Gather()
	require.NoError(t, err)

	got := map[string]float64{}
	for _, mf := range sources {
		for _, m := range mf.GetMetric() {
			switch {
			case m.GetGauge() != nil:
				got[mf.GetName()] = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				got[mf.GetName()+"/"+m.GetLabel()[1].GetValue()] = m.GetCounter().GetValue()
			}
		}
	}

	assert.Equal(t, 2.0, got["backup_oracle_index_sources"])
	assert.Equal(t, 200.0, got["backup_oracle_index_bytes"], "the index's own estimate")
	assert.Equal(t, 1_000_000.0, got["backup_oracle_index_last_success_timestamp_seconds"])
	assert.Equal(t, 1.0, got["backup_oracle_index_refreshes_total/success"])
	assert.Equal(t, 1.0, got["backup_oracle_index_refreshes_total/error"])
	assert.Equal(t, 0.0, got["backup_oracle_index_ready"], "the last refresh failed")

	fail.Store(false)
	require.NoError(t, c.Refresh(context.Background()))
	clk.add(7 * time.Second)

	assert.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP backup_oracle_index_age_seconds Age of the last successfully loaded index at scrape time; absent before the first load.
# TYPE backup_oracle_index_age_seconds gauge
backup_oracle_index_age_seconds{backend="fake"} 7
# HELP backup_oracle_index_ready 1 when the backend answers authoritatively (loaded, last refresh succeeded, fresh), else 0.
# TYPE backup_oracle_index_ready gauge
backup_oracle_index_ready{backend="fake"} 1
`), "backup_oracle_index_age_seconds", "backup_oracle_index_ready"))
}

func TestGroup(t *testing.T) {
	clk := &clock{t: time.Unix(1_000_000, 0)}
	ready := newCache(t, &fakeLoader{load: func(context.Context) (repo.Index, error) {
		return &fakeIndex{snaps: map[string]int{"data": 1}}, nil
	}}, clk, nil)
	require.NoError(t, ready.Refresh(context.Background()))

	notLoaded := newCache(t, &fakeLoader{load: func(context.Context) (repo.Index, error) {
		return &fakeIndex{snaps: map[string]int{"other": 1}}, nil
	}}, clk, nil)

	g := cache.Group{notLoaded, ready}
	assert.Equal(t, repo.Restore, g.Lookup(context.Background(), data).Decision, "restore from any authoritative backend")
	assert.Equal(t, repo.Unknown, g.Lookup(context.Background(), none).Decision, "fresh needs every backend")
	assert.ErrorIs(t, g.Ready(), repo.ErrNotLoaded)
	assert.Len(t, g.Status(), 2)

	require.NoError(t, notLoaded.Refresh(context.Background()))
	assert.Equal(t, repo.Fresh, g.Lookup(context.Background(), none).Decision)
	assert.NoError(t, g.Ready())
	assert.Error(t, cache.Group{}.Ready())
}

func TestEmptyIndexIsRefusedUnlessAllowed(t *testing.T) {
	empty := &fakeLoader{load: func(context.Context) (repo.Index, error) { return &fakeIndex{}, nil }}

	for _, allow := range []bool{false, true} {
		t.Run(fmt.Sprint("allow=", allow), func(t *testing.T) {
			c, err := cache.New(cache.Options{Backend: "fake", Loader: empty, AllowEmpty: allow})
			require.NoError(t, err)

			err = c.Refresh(context.Background())
			a := c.Lookup(context.Background(), none)

			if allow {
				require.NoError(t, err)
				assert.Equal(t, repo.Fresh, a.Decision)

				return
			}

			require.ErrorIs(t, err, cache.ErrEmptyIndex)
			assert.ErrorIs(t, err, repo.ErrUnavailable)
			assert.Equal(t, repo.Unknown, a.Decision, "an empty store is indistinguishable from a wrong prefix: never fresh by default")
			assert.Contains(t, a.Reason.Error(), "ALLOW_EMPTY_INDEX=true")
		})
	}
}

func TestExplain(t *testing.T) {
	clk := &clock{t: time.Unix(1_000_000, 0)}

	var fail atomic.Bool

	c := newCache(t, &fakeLoader{load: func(context.Context) (repo.Index, error) {
		if fail.Load() {
			return nil, errors.New("down")
		}

		return &fakeIndex{snaps: map[string]int{"data": 2, "other": 1}}, nil
	}}, clk, nil)

	e := c.Explain(context.Background(), data)
	assert.ErrorIs(t, e.Err, repo.ErrNotLoaded)
	assert.Empty(t, e.Finding.Snapshots)

	require.NoError(t, c.Refresh(context.Background()))

	e = c.Explain(context.Background(), data)
	require.NoError(t, e.Err)
	assert.Equal(t, "fake", e.Backend)
	assert.Len(t, e.Finding.Snapshots, 2)
	assert.Equal(t, []string{"other-backup"}, e.Nearby, "what is stored nearby comes from the index contract")

	fail.Store(true)
	require.Error(t, c.Refresh(context.Background()))

	e = c.Explain(context.Background(), data)
	assert.Error(t, e.Err, "not authoritative now")
	assert.Len(t, e.Finding.Snapshots, 2, "but the operator still sees what the last index held")
	assert.Len(t, cache.Group{c, c}.Explain(context.Background(), data), 2)
}
