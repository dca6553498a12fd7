package cache_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	// near maps a PVC name to the sources NearMisses reports for it.
	near map[string][]string
	// unfit: none of the sources fits the identity settings.
	unfit  bool
	stored []repo.Stored
	// named maps a named source to its snapshot count (FindSource); namedErr, when set, is
	// FindSource's error.
	named    map[repo.KopiaSource]int
	namedErr error
	// unrestorable counts snapshots the movers would not restore (IndexStats.Unrestorable).
	unrestorable int
}

func (f *fakeIndex) NearMisses(pvc repo.PVC) []repo.NearMiss {
	var out []repo.NearMiss
	for _, src := range f.near[pvc.Name] {
		out = append(out, repo.NearMiss{Source: src, Rule: "fake", Snapshots: 1})
	}

	return out
}

func (f *fakeIndex) Stored() []repo.Stored { return f.stored }

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
	st := repo.IndexStats{Sources: len(f.snaps), Fitting: len(f.snaps), Bytes: 100 * int64(len(f.snaps))}
	if f.unfit {
		st.Fitting = 0
	}

	st.Unrestorable = f.unrestorable

	return st
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

	g := cache.NewGroup([]*cache.Cache{notLoaded, ready}, cache.GroupOptions{})
	assert.Equal(t, repo.Unknown, g.Lookup(context.Background(), repo.Query{PVC: data}).Decision, "a backend not loaded could hold a newer snapshot")
	assert.Equal(t, repo.Unknown, g.Lookup(context.Background(), repo.Query{PVC: none}).Decision, "fresh needs every backend")
	assert.ErrorIs(t, g.Ready(), repo.ErrNotLoaded)
	assert.Len(t, g.Status(), 2)

	require.NoError(t, notLoaded.Refresh(context.Background()))
	assert.Equal(t, repo.Restore, g.Lookup(context.Background(), repo.Query{PVC: data}).Decision, "every backend authoritative: restore")
	assert.Equal(t, repo.Fresh, g.Lookup(context.Background(), repo.Query{PVC: none}).Decision)
	assert.NoError(t, g.Ready())
	assert.Error(t, cache.NewGroup(nil, cache.GroupOptions{}).Ready())
}

// TestGroupCanary: a canary name is Unknown even when a backend holds its snapshots (a restore)
// or none (a fresh), and whether the backends are ready or not; each lookup is reported to
// OnCanary, and no backend is asked.
func TestGroupCanary(t *testing.T) {
	clk := &clock{t: time.Unix(1_000_000, 0)}
	canary := repo.PVC{Namespace: "backup-oracle-canary", Name: repo.CanaryName("1234")}
	lookalike := repo.PVC{Namespace: "shop", Name: repo.CanaryName("not-a-nonce-we-sent")}

	var finds int

	loaded := newCache(t, &fakeLoader{load: func(context.Context) (repo.Index, error) {
		return &fakeIndex{find: func(_ context.Context, pvc repo.PVC) (repo.Finding, error) {
			finds++
			return repo.Finding{Source: pvc.Name + "-backup", Snapshots: []repo.Snapshot{{ID: "a"}}}, nil
		}}, nil
	}}, clk, nil)
	require.NoError(t, loaded.Refresh(context.Background()))

	notLoaded := newCache(t, &fakeLoader{load: func(context.Context) (repo.Index, error) { return &fakeIndex{}, nil }}, clk, nil)

	var seen []repo.PVC

	for _, caches := range [][]*cache.Cache{{loaded}, {notLoaded}, {loaded, notLoaded}} {
		g := cache.NewGroup(caches, cache.GroupOptions{OnCanary: func(p repo.PVC) { seen = append(seen, p) }})

		for _, pvc := range []repo.PVC{canary, lookalike} {
			a := g.Lookup(context.Background(), repo.Query{PVC: pvc, AcceptNearMiss: true})
			assert.Equal(t, repo.Unknown, a.Decision, "%s: a canary is never restore or fresh", pvc)
			require.ErrorIs(t, a.Reason, repo.ErrCanary)
		}
	}

	assert.Equal(t, []repo.PVC{canary, lookalike, canary, lookalike, canary, lookalike}, seen)
	assert.Zero(t, finds, "no backend is asked about a canary")
	assert.Equal(t, repo.Restore, cache.NewGroup([]*cache.Cache{loaded}, cache.GroupOptions{}).Lookup(context.Background(), repo.Query{PVC: data}).Decision,
		"the same backend answers other PVCs")
}

// TestGroupGuards: a lookup that finds nothing but near misses is unknown, accepted or warned
// per the guards, every event is counted, and the cache only looks for near misses when asked.
func TestGroupGuards(t *testing.T) {
	clk := &clock{t: time.Unix(1_000_000, 0)}
	idx := &fakeIndex{snaps: map[string]int{"other": 1}, near: map[string][]string{"none": {"none@web:/elsewhere"}}}
	loader := &fakeLoader{load: func(context.Context) (repo.Index, error) { return idx, nil }}

	reg := prometheus.NewRegistry()
	metrics := cache.NewMetrics(reg)

	c, err := cache.New(cache.Options{Backend: "fake", Loader: loader, Now: clk.now, NearMisses: true, Metrics: metrics})
	require.NoError(t, err)
	require.NoError(t, c.Refresh(context.Background()))

	deny := cache.NewGroup([]*cache.Cache{c}, cache.GroupOptions{Guards: repo.Guards{NearMiss: repo.NearMissDeny}, Metrics: metrics})
	a := deny.Lookup(context.Background(), repo.Query{PVC: none})
	assert.Equal(t, repo.Unknown, a.Decision)
	require.ErrorIs(t, a.Reason, repo.ErrNearMiss)
	require.Len(t, a.NearMisses, 1)
	assert.Equal(t, "fake", a.NearMisses[0].Backend, "the cache names the backend")

	a = deny.Lookup(context.Background(), repo.Query{PVC: none, AcceptNearMiss: true})
	assert.Equal(t, repo.Fresh, a.Decision)
	assert.Equal(t, repo.AcceptNearMiss, a.Accepted)

	warn := cache.NewGroup([]*cache.Cache{c}, cache.GroupOptions{Guards: repo.Guards{NearMiss: repo.NearMissWarn}, Metrics: metrics})
	assert.Equal(t, repo.Fresh, warn.Lookup(context.Background(), repo.Query{PVC: none}).Decision)

	assert.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP backup_oracle_guard_total Would-be fresh answers a guard acted on: guard expected-backup or near-miss; outcome denied (answered unknown), warned (NEAR_MISS=warn) or accepted (acknowledged on the PVC).
# TYPE backup_oracle_guard_total counter
backup_oracle_guard_total{guard="near-miss",outcome="accepted"} 1
backup_oracle_guard_total{guard="near-miss",outcome="denied"} 1
backup_oracle_guard_total{guard="near-miss",outcome="warned"} 1
`), "backup_oracle_guard_total"))

	off, err := cache.New(cache.Options{Backend: "fake", Loader: loader, Now: clk.now})
	require.NoError(t, err)
	require.NoError(t, off.Refresh(context.Background()))
	assert.Empty(t, off.Lookup(context.Background(), none).NearMisses, "NEAR_MISS=off: not even looked for")
	assert.Equal(t, repo.Fresh, cache.NewGroup([]*cache.Cache{off}, cache.GroupOptions{}).Lookup(context.Background(), repo.Query{PVC: none}).Decision)

	assert.Len(t, c.Explain(context.Background(), none).Finding.NearMisses, 1, "explain shows near misses whatever the mode")
}

// TestUnfitIndexIsRefusedUnlessAllowed: a repository holding backups, none of which the identity
// settings could have produced, answers fresh for every PVC: refused like an empty one.
func TestUnfitIndexIsRefusedUnlessAllowed(t *testing.T) {
	unfit := &fakeLoader{load: func(context.Context) (repo.Index, error) {
		return &fakeIndex{snaps: map[string]int{"app": 1}, unfit: true}, nil
	}}

	for _, allow := range []bool{false, true} {
		reg := prometheus.NewRegistry()
		c, err := cache.New(cache.Options{Backend: "fake", Loader: unfit, AllowEmpty: allow, Metrics: cache.NewMetrics(reg)})
		require.NoError(t, err)

		err = c.Refresh(context.Background())

		// The fake's sources carry no layout (nothing considered): the fit is whole, not 0/0.
		assert.Equal(t, 1.0, gaugeValue(t, reg, "backup_oracle_index_layout_fit_ratio"))

		if allow {
			require.NoError(t, err, "ALLOW_EMPTY_INDEX is the explicit override")
			assert.Equal(t, repo.Fresh, c.Lookup(context.Background(), none).Decision)
			assert.Nil(t, c.Status().Refused, "an index in use is not refused")

			continue
		}

		require.NotNil(t, c.Status().Refused, "/status shows what the refused load read")
		assert.Equal(t, 1, c.Status().Refused.Sources)

		require.ErrorIs(t, err, cache.ErrNoFittingSource)
		require.ErrorIs(t, err, repo.ErrUnavailable)
		assert.Contains(t, err.Error(), "holds 1 source(s), none of them one the identity settings could have produced")

		a := c.Lookup(context.Background(), none)
		assert.Equal(t, repo.Unknown, a.Decision, "settings that fit nothing would answer fresh for every PVC: never")
		assert.ErrorIs(t, c.Ready(), cache.ErrNoFittingSource)
	}
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

// TestOnlyUnrestorableIsRefusedUnlessAllowed: a backend whose snapshots the movers would all skip
// holds no backup: refused like an empty one, with a reason that says so (not "no backup at all").
func TestOnlyUnrestorableIsRefusedUnlessAllowed(t *testing.T) {
	skipped := &fakeLoader{load: func(context.Context) (repo.Index, error) { return &fakeIndex{unrestorable: 3}, nil }}

	c, err := cache.New(cache.Options{Backend: "fake", Loader: skipped})
	require.NoError(t, err)

	err = c.Refresh(context.Background())
	require.ErrorIs(t, err, cache.ErrNothingRestorable)
	require.ErrorIs(t, err, repo.ErrUnavailable)
	assert.NotErrorIs(t, err, cache.ErrEmptyIndex)
	assert.Contains(t, err.Error(), "3 snapshot(s) read")
	assert.Equal(t, repo.Unknown, c.Lookup(context.Background(), none).Decision)
	require.NotNil(t, c.Status().Refused)
	assert.Equal(t, 3, c.Status().Refused.Unrestorable)

	allowed, err := cache.New(cache.Options{Backend: "fake", Loader: skipped, AllowEmpty: true})
	require.NoError(t, err)
	require.NoError(t, allowed.Refresh(context.Background()), "ALLOW_EMPTY_INDEX is the explicit override")
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
	assert.Len(t, cache.NewGroup([]*cache.Cache{c, c}, cache.GroupOptions{}).Explain(context.Background(), data), 2)
}

// TestDecisionsAreLogged: every computed decision is logged at info with the identity looked up
// and, for fresh, the nearby sources; memoised answers are not logged again.
func TestDecisionsAreLogged(t *testing.T) {
	var logs strings.Builder

	clk := &clock{t: time.Unix(1_000_000, 0)}
	c, err := cache.New(cache.Options{Backend: "fake", Now: clk.now, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Loader: &fakeLoader{load: func(context.Context) (repo.Index, error) {
			return &fakeIndex{snaps: map[string]int{"data": 1, "other": 1}}, nil
		}}})
	require.NoError(t, err)
	require.NoError(t, c.Refresh(context.Background()))

	c.Lookup(context.Background(), data)
	c.Lookup(context.Background(), none)
	c.Lookup(context.Background(), none)

	out := logs.String()
	assert.Contains(t, out, `msg="backend decision" pvc=web/data backend=fake decision=restore source=data-backup snapshots=1`)
	assert.Contains(t, out, `msg="backend decision" pvc=web/none backend=fake decision=fresh source=none-backup snapshots=0 nearby="[data-backup other-backup]" nearbyCount=2`)
	assert.Equal(t, 1, strings.Count(out, "pvc=web/none"), "a memoised answer is not logged again")
}

// ruleAge is the rule the clock tests guard.
const ruleAge = "rule: an index is as old as the start of its load, and answers only while that is no more than MAX_INDEX_AGE ago (README: How a decision is made, step 2)"

// TestIndexAgeCountsFromLoadStart: the fake clock advances during Load, as a slow backend's
// real clock does. Dated by the end of its load, a slow index would look fresher than its data.
func TestIndexAgeCountsFromLoadStart(t *testing.T) {
	const maxAge = time.Minute // newCache's MaxIndexAge

	cases := []struct {
		name     string
		loadTime time.Duration // how far the clock moves during Load
		after    time.Duration // how far it moves after the refresh
		ready    bool
	}{
		{"load longer than MAX_INDEX_AGE is stale on arrival", maxAge + time.Millisecond, 0, false},
		{"load of exactly MAX_INDEX_AGE is still fresh on arrival", maxAge, 0, true},
		{"40 s load, 21 s later: 61 s old", 40 * time.Second, 21 * time.Second, false},
		{"40 s load, 20 s later: exactly MAX_INDEX_AGE, fresh", 40 * time.Second, 20 * time.Second, true},
		{"instant load, MAX_INDEX_AGE later: fresh", 0, maxAge, true},
		{"instant load, MAX_INDEX_AGE and 1 ns later: stale", 0, maxAge + time.Nanosecond, false},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Unix(1_000_000, 0)
			clk := &clock{t: start}
			reg := prometheus.NewRegistry()
			c := newCache(t, &fakeLoader{load: func(context.Context) (repo.Index, error) {
				clk.add(tc.loadTime)
				return &fakeIndex{snaps: map[string]int{"data": 1}}, nil
			}}, clk, reg)

			require.NoError(t, c.Refresh(context.Background()), "the load itself succeeds")
			clk.add(tc.after)

			assert.Equal(t, start, c.Status().LoadedAt, "LoadedAt is when the load started: %s", ruleAge)

			a := c.Lookup(context.Background(), data)
			assert.Equal(t, start, a.IndexTime, "an answer's index time is when its load started: %s", ruleAge)

			age := (tc.loadTime + tc.after).Seconds()
			assert.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(fmt.Sprintf(`
# HELP backup_oracle_index_age_seconds Age of the last successfully loaded index at scrape time; absent before the first load.
# TYPE backup_oracle_index_age_seconds gauge
backup_oracle_index_age_seconds{backend="fake"} %g
`, age)), "backup_oracle_index_age_seconds"), "the age metric counts from the start of the load: %s", ruleAge)

			if tc.ready {
				assert.NoError(t, c.Ready(), ruleAge)
				assert.Equal(t, repo.Restore, a.Decision, ruleAge)

				return
			}

			assert.ErrorIs(t, c.Ready(), repo.ErrStale, ruleAge)
			assert.Equal(t, repo.Unknown, a.Decision, ruleAge)
			assert.ErrorIs(t, a.Reason, repo.ErrStale, ruleAge)
			assert.Equal(t, repo.Unknown, c.Lookup(context.Background(), none).Decision, "never fresh from a stale index: %s", ruleAge)
		})
	}
}

// TestStaleDuringSlowRefresh: while a refresh is in progress (no error yet), the previous index
// ages out on its own.
func TestStaleDuringSlowRefresh(t *testing.T) {
	clk := &clock{t: time.Unix(1_000_000, 0)}
	inLoad, release := make(chan struct{}), make(chan struct{})

	var calls atomic.Int32

	c := newCache(t, &fakeLoader{load: func(context.Context) (repo.Index, error) {
		if calls.Add(1) == 2 {
			close(inLoad)
			<-release
			clk.add(time.Second)
		}

		return &fakeIndex{snaps: map[string]int{"data": 1}}, nil
	}}, clk, nil)
	require.NoError(t, c.Refresh(context.Background()))

	done := make(chan error, 1)

	go func() { done <- c.Refresh(context.Background()) }()

	<-inLoad
	clk.add(time.Minute + time.Millisecond)

	a := c.Lookup(context.Background(), data)
	assert.Equal(t, repo.Unknown, a.Decision, "a refresh in progress does not keep an old index fresh: %s", ruleAge)
	assert.ErrorIs(t, c.Ready(), repo.ErrStale, ruleAge)

	close(release)
	require.NoError(t, <-done)
	assert.ErrorIs(t, c.Ready(), repo.ErrStale, "the index that load brought started 62 s ago: stale too: %s", ruleAge)

	require.NoError(t, c.Refresh(context.Background())) // third load: instant
	assert.NoError(t, c.Ready())
	assert.Equal(t, repo.Restore, c.Lookup(context.Background(), data).Decision)
}

// TestRunBacksOff: after failures the retry delay doubles from 1 s (README: How a decision is
// made, step 1). Lower bounds on real time only: a loaded machine makes the gaps longer, never
// shorter.
func TestRunBacksOff(t *testing.T) {
	var (
		mu    sync.Mutex
		calls []time.Time
	)

	l := &fakeLoader{load: func(context.Context) (repo.Index, error) {
		mu.Lock()
		calls = append(calls, time.Now())
		mu.Unlock()

		return nil, errors.New("down")
	}}
	c, err := cache.New(cache.Options{Backend: "fake", Loader: l, RefreshInterval: time.Hour})
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})

	go func() { c.Run(ctx); close(done) }()

	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(calls) >= 3 }, 30*time.Second, 10*time.Millisecond)
	cancel()
	<-done

	mu.Lock()
	defer mu.Unlock()

	assert.GreaterOrEqual(t, calls[1].Sub(calls[0]), 950*time.Millisecond, "first retry after 1 s")
	assert.GreaterOrEqual(t, calls[2].Sub(calls[1]), 1950*time.Millisecond, "then the delay doubles")
}

// TestRefreshBookkeeping: each successful load is a new generation (memoised answers are tied to
// it); the load is logged when it is the first or follows a failure, not on every refresh.
func TestRefreshBookkeeping(t *testing.T) {
	var (
		fail atomic.Bool
		logs strings.Builder
	)

	clk := &clock{t: time.Unix(1_000_000, 0)}
	c, err := cache.New(cache.Options{Backend: "fake", Now: clk.now, AllowEmpty: true,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Loader: &fakeLoader{load: func(context.Context) (repo.Index, error) {
			if fail.Load() {
				return nil, errors.New("down")
			}

			return &fakeIndex{}, nil
		}}})
	require.NoError(t, err)

	loaded := func() int { return strings.Count(logs.String(), `msg="index loaded"`) }

	require.NoError(t, c.Refresh(context.Background()))
	assert.EqualValues(t, 1, c.Status().Generation)
	assert.Equal(t, 1, loaded(), "the first load is logged")

	require.NoError(t, c.Refresh(context.Background()))
	assert.EqualValues(t, 2, c.Status().Generation, "every successful load is a new generation")
	assert.Equal(t, 1, loaded(), "a routine refresh is not logged")

	fail.Store(true)
	require.Error(t, c.Refresh(context.Background()))
	assert.EqualValues(t, 2, c.Status().Generation, "a failed load is no generation")

	fail.Store(false)
	require.NoError(t, c.Refresh(context.Background()))
	assert.EqualValues(t, 3, c.Status().Generation)
	assert.Equal(t, 2, loaded(), "recovery after a failure is logged")
}

// TestNotReadyReasons: each way of not being ready says which it is (README: /readyz and the
// 503 body carry the reason).
func TestNotReadyReasons(t *testing.T) {
	boom := errors.New("nfs gone")

	var fail atomic.Bool

	clk := &clock{t: time.Unix(1_000_000, 0)}
	c := newCache(t, &fakeLoader{load: func(context.Context) (repo.Index, error) {
		if fail.Load() {
			return nil, boom
		}

		return &fakeIndex{snaps: map[string]int{"data": 1}}, nil
	}}, clk, nil)

	err := c.Ready()
	require.ErrorIs(t, err, repo.ErrNotLoaded)
	assert.Contains(t, err.Error(), "the first refresh of fake has not finished")

	fail.Store(true)
	require.Error(t, c.Refresh(context.Background()))
	err = c.Ready()
	require.ErrorIs(t, err, repo.ErrNotLoaded, "no index yet: not loaded")
	require.ErrorIs(t, err, boom, "and why")

	fail.Store(false)
	require.NoError(t, c.Refresh(context.Background()))
	fail.Store(true)
	require.Error(t, c.Refresh(context.Background()))
	err = c.Ready()
	require.ErrorIs(t, err, boom)
	assert.NotErrorIs(t, err, repo.ErrNotLoaded, "an index is loaded, its refresh failed")
	assert.Contains(t, err.Error(), "last refresh failed")
}

// TestRefreshRejectsNoIndex: a loader that returns neither an index nor an error (a broken
// adapter) is a failed refresh, not a panic and not an empty index.
func TestRefreshRejectsNoIndex(t *testing.T) {
	clk := &clock{t: time.Unix(1_000_000, 0)}
	c := newCache(t, &fakeLoader{load: func(context.Context) (repo.Index, error) { return nil, nil }}, clk, nil)

	err := c.Refresh(context.Background())
	require.ErrorIs(t, err, repo.ErrUnavailable)
	assert.Contains(t, err.Error(), "loader returned no index")
	assert.Equal(t, repo.Unknown, c.Lookup(context.Background(), none).Decision)
}

// gaugeValue is the value of the gauge name's only sample in reg.
func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()

	mfs, err := reg.Gather()
	require.NoError(t, err)

	for _, mf := range mfs {
		if mf.GetName() == name {
			require.Len(t, mf.GetMetric(), 1, name)

			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}

	t.Fatalf("no metric %s", name)

	return 0
}
