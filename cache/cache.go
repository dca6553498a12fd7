// Package cache keeps each backend's snapshot index in memory, refreshes it in the background and
// answers lookups from it, so that admission never waits on a slow backend.
//
// The index is the cache. On top of it, answers are memoised per PVC in a bounded LRU with a TTL
// (hashicorp/golang-lru/v2) and tied to the index generation they were computed from, so a refresh
// invalidates them; concurrent identical lookups are collapsed with singleflight.
//
// Fail-closed: a lookup answers from the index only when an index is loaded, the most recent
// refresh succeeded, and it finished no longer than MaxIndexAge ago. Otherwise the answer is
// Unknown with a reason, never Fresh.
package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"golang.org/x/sync/singleflight"

	"github.com/backup-oracle/backup-oracle/repo"
)

// Defaults for Options fields left zero.
const (
	DefaultRefreshInterval = 30 * time.Second
	DefaultRefreshTimeout  = 2 * time.Minute
	DefaultMaxIndexAge     = 2 * time.Minute
	DefaultMemoSize        = 10_000
	DefaultMemoTTL         = 30 * time.Second
	DefaultLookupTimeout   = 5 * time.Second
	minRetryDelay          = time.Second
)

// ErrEmptyIndex is the reason an index without any source is refused (see Options.AllowEmpty).
var ErrEmptyIndex = errors.New("the backend holds no backup at all, which is what a wrong path, prefix or bucket looks like; " +
	"for a new installation with no backup yet, set ALLOW_EMPTY_INDEX=true until the first backup exists")

// ErrNothingRestorable is the reason an index holding snapshots, none of which the movers would
// restore, is refused like an empty one (see Options.AllowEmpty): a backup the mover skips is no
// backup, and a fleet of them is what snapshots written by another tool or for another path
// look like.
var ErrNothingRestorable = errors.New("the backend holds snapshots, but none VolSync's mover would restore " +
	"(restic: its hostname, a tag or its first path must contain /data; GET /explain/<namespace>/<pvc> of one of them says why); " +
	"for a new installation with no backup of the movers' yet, set ALLOW_EMPTY_INDEX=true until the first backup exists")

// ErrNoFittingSource is the reason an index whose sources none of the identity settings could
// have produced is refused (see Options.AllowEmpty): settings that differ from the movers'
// (another source name template, path or hostname) make every PVC answer fresh.
var ErrNoFittingSource = errors.New("identity settings that fit no stored backup: compare the settings with the movers' " +
	"(/status shows the sources; KOPIA_SOURCE_NAME_TEMPLATE, KOPIA_USERNAME_TEMPLATE, KOPIA_HOSTNAME_TEMPLATE, KOPIA_PATH); " +
	"for a new installation whose repository holds only other backups, set ALLOW_EMPTY_INDEX=true until the first backup exists")

// Options configure a Cache. Backend and Loader are required.
type Options struct {
	Backend string // name reported in answers and metrics ("kopia-fs")
	Loader  Loader
	// RefreshInterval is the pause between successful refreshes; after a failure the cache
	// retries sooner (1 s, doubling up to RefreshInterval).
	RefreshInterval time.Duration
	// RefreshTimeout bounds one Load.
	RefreshTimeout time.Duration
	// MaxIndexAge is the staleness bound: older indexes answer Unknown.
	MaxIndexAge time.Duration
	// MemoSize bounds the per-PVC answer memo (entries); MemoTTL bounds an entry's life.
	MemoSize int
	MemoTTL  time.Duration
	// LookupTimeout bounds one index lookup (backends whose Find does I/O).
	LookupTimeout time.Duration
	// NearMisses: look for near misses (repo.Index.NearMisses) when a lookup finds no snapshot;
	// off with NEAR_MISS=off.
	NearMisses bool
	// AllowEmpty accepts an index with no source at all, or none the identity settings could
	// have produced. Off by default: a wrong path, prefix or bucket, an unmounted share, or
	// identity settings that differ from the movers' look exactly like "no backups anywhere" and
	// would answer fresh for every PVC. Turn it on only for a new installation with no backup yet.
	AllowEmpty bool
	Metrics    *Metrics
	Logger     *slog.Logger
	Now        func() time.Time
}

// Cache serves one backend. It is safe for concurrent use.
type Cache struct {
	opts  Options
	state atomic.Pointer[state]
	memo  *expirable.LRU[memoKey, repo.Answer]
	group singleflight.Group
	mu    sync.Mutex // serialises Refresh
	// overrun is the result channel of a load that outlived its RefreshTimeout, nil when none
	// (guarded by mu); since is when it started.
	overrun      chan loadResult
	overrunSince time.Time
}

type loadResult struct {
	idx repo.Index
	err error
}

// state is replaced whole on every refresh attempt.
type state struct {
	index       repo.Index // last successfully loaded index, nil before the first
	generation  uint64     // bumped on every successful load
	loadedAt    time.Time  // when the last successful load started: its data is at most that old
	lastAttempt time.Time
	lastErr     error // error of the last attempt, nil when it succeeded
	// refused: the counts of the index the last attempt read and a guard refused, nil otherwise
	refused *repo.IndexStats
	// layoutWarning: the last index's minority-fit warning (repo.LayoutFit.Warning), logged when
	// it changes
	layoutWarning string
}

// memoKey: an answer depends on the PVC, the index and the point in time asked. A point in time
// is keyed by the second (the selection rule compares seconds: repo.PointInTime); the memo's
// bound (MemoSize) holds whatever mix of points in time clients ask for.
type memoKey struct {
	pvc        repo.PVC
	generation uint64
	asOf       int64 // Unix seconds of PointInTime.AsOf, 0 when unset
	hasAsOf    bool
	previous   int
	source     repo.KopiaSource // the source the PVC names, zero when none
}

func newMemoKey(q repo.Query, generation uint64) memoKey {
	p := q.PointInTime

	k := memoKey{pvc: q.PVC, generation: generation, previous: p.Previous, hasAsOf: !p.AsOf.IsZero(), source: q.Source}
	if k.hasAsOf {
		k.asOf = p.AsOf.Unix()
	}

	return k
}

func (k memoKey) String() string {
	return fmt.Sprintf("%s\x00%d\x00%t%d\x00%d\x00%s", k.pvc, k.generation, k.hasAsOf, k.asOf, k.previous, k.source)
}

// New validates opts and returns a cache with no index: lookups answer Unknown until the first
// Refresh succeeds.
func New(opts Options) (*Cache, error) {
	var errs []error
	if opts.Backend == "" {
		errs = append(errs, errors.New("cache: backend name is required"))
	}

	if opts.Loader == nil {
		errs = append(errs, errors.New("cache: loader is required"))
	}

	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	setDefault(&opts.RefreshInterval, DefaultRefreshInterval)
	setDefault(&opts.RefreshTimeout, DefaultRefreshTimeout)
	setDefault(&opts.MaxIndexAge, DefaultMaxIndexAge)
	setDefault(&opts.MemoTTL, DefaultMemoTTL)
	setDefault(&opts.LookupTimeout, DefaultLookupTimeout)
	setDefault(&opts.MemoSize, DefaultMemoSize)

	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}

	if opts.Now == nil {
		opts.Now = time.Now
	}

	c := &Cache{opts: opts, memo: expirable.NewLRU[memoKey, repo.Answer](opts.MemoSize, nil, opts.MemoTTL)}
	c.state.Store(&state{lastErr: repo.ErrNotLoaded})
	opts.Metrics.watch(c)

	return c, nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Backend returns the backend's name.
func (c *Cache) Backend() string { return c.opts.Backend }

// Run refreshes the index until ctx is cancelled: at once, then every RefreshInterval, sooner
// after a failure.
func (c *Cache) Run(ctx context.Context) {
	delay := minRetryDelay

	for {
		wait := c.opts.RefreshInterval
		if err := c.Refresh(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}

			wait, delay = min(delay, c.opts.RefreshInterval), min(delay*2, c.opts.RefreshInterval)
		} else {
			delay = minRetryDelay
		}

		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// Refresh loads the index once, bounded by RefreshTimeout. On failure the previous index is kept
// for diagnostics but no longer answers (see Lookup).
//
// The bound holds even for a loader that does not honour its context (a library's retry loop, a
// hung NFS read): the load runs on its own goroutine, and past RefreshTimeout Refresh returns an
// error wrapping context.DeadlineExceeded. Until that load returns, later refreshes fail at once
// ("still running") instead of starting another: loads never pile up.
func (c *Cache) Refresh(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()

	start := c.opts.Now()
	idx, err := c.load(ctx)
	end := c.opts.Now()

	switch {
	case err == nil && idx == nil:
		err = fmt.Errorf("%s: loader returned no index: %w", c.opts.Backend, repo.ErrUnavailable)
	case err == nil && idx.Stats().Sources == 0 && idx.Stats().Unrestorable > 0 && !c.opts.AllowEmpty:
		err = fmt.Errorf("%s: %w: %w: %d snapshot(s) read", c.opts.Backend, repo.ErrUnavailable, ErrNothingRestorable, idx.Stats().Unrestorable)
	case err == nil && idx.Stats().Sources == 0 && !c.opts.AllowEmpty:
		err = fmt.Errorf("%s: %w: %w", c.opts.Backend, repo.ErrUnavailable, ErrEmptyIndex)
	case err == nil && idx.Stats().Fitting == 0 && !c.opts.AllowEmpty:
		err = fmt.Errorf("%s: %w: %w: the backend holds %d source(s), none of them one the identity settings could have produced",
			c.opts.Backend, repo.ErrUnavailable, ErrNoFittingSource, idx.Stats().Sources)
	}

	prev := c.state.Load()
	next := *prev
	next.lastAttempt, next.lastErr, next.refused = end, err, nil

	if err != nil && idx != nil { // read, then refused by a guard: /status shows what was read
		st := idx.Stats()
		next.refused = &st
	}

	if err == nil {
		next.index, next.loadedAt, next.generation = idx, start, prev.generation+1
	}

	if idx != nil {
		next.layoutWarning = idx.Stats().Layout.Warning()
	}

	c.state.Store(&next)
	c.opts.Metrics.observeRefresh(c.opts.Backend, end.Sub(start), idx, end, err)

	c.logLayout(prev, &next, idx)

	if err != nil {
		c.opts.Logger.Warn("index refresh failed", "backend", c.opts.Backend, "err", err)
		return err
	}

	if prev.generation == 0 || prev.lastErr != nil {
		st := idx.Stats()
		c.opts.Logger.Info("index loaded", "backend", c.opts.Backend,
			"sources", st.Sources, "fitting", st.Fitting, "snapshots", st.Snapshots, "duration", end.Sub(start).String())
	}

	return nil
}

// logLayout logs a minority fit of the identity settings (repo.LayoutFit) at the first load
// and whenever it changes; /status and backup_oracle_index_layout_fit_ratio show it on every
// refresh. A minority fit is a warning, not a refusal: the near-miss rule answers unknown for each
// PVC whose data is under another scheme, while the PVCs the settings fit answer right.
func (c *Cache) logLayout(prev, next *state, idx repo.Index) {
	if idx == nil || next.layoutWarning == prev.layoutWarning {
		return
	}

	if next.layoutWarning == "" {
		c.opts.Logger.Info("the identity settings fit the repository's sources again", "backend", c.opts.Backend)
		return
	}

	c.opts.Logger.Warn("identity settings fit a minority of the sources", "backend", c.opts.Backend, "warning", next.layoutWarning)
}

// load runs one Loader.Load bounded by RefreshTimeout (see Refresh). Called with mu held.
func (c *Cache) load(ctx context.Context) (repo.Index, error) {
	if c.overrun != nil {
		select {
		case <-c.overrun: // it ended at last; its result is too old to use
			c.overrun = nil
		default:
			return nil, fmt.Errorf("%s: %w: the load started %s ago is still running, past the refresh timeout (%s)",
				c.opts.Backend, repo.ErrUnavailable, c.since(c.overrunSince), c.opts.RefreshTimeout)
		}
	}

	ctx, cancel := context.WithTimeout(ctx, c.opts.RefreshTimeout)
	defer cancel()

	done := make(chan loadResult, 1)
	started := c.opts.Now()

	go func() {
		idx, err := c.opts.Loader.Load(ctx)
		done <- loadResult{idx, err}
	}()

	select {
	case r := <-done:
		return r.idx, r.err
	case <-ctx.Done():
		select {
		case r := <-done: // finished at the same moment
			return r.idx, r.err
		default:
		}

		c.overrun, c.overrunSince = done, started

		return nil, fmt.Errorf("%s: %w: refresh did not finish within %s: %w", c.opts.Backend, repo.ErrUnavailable, c.opts.RefreshTimeout, ctx.Err())
	}
}

// Ready returns nil when lookups can be answered authoritatively, else the reason they cannot.
// It does no I/O.
func (c *Cache) Ready() error {
	_, err := c.usable(c.state.Load())
	return err
}

// usable applies the fail-closed policy to a state.
func (c *Cache) usable(st *state) (repo.Index, error) {
	switch {
	case st.index == nil && errors.Is(st.lastErr, repo.ErrNotLoaded):
		return nil, fmt.Errorf("%w: the first refresh of %s has not finished", repo.ErrNotLoaded, c.opts.Backend)
	case st.index == nil:
		return nil, fmt.Errorf("%w: %w", repo.ErrNotLoaded, st.lastErr)
	case st.lastErr != nil:
		return nil, fmt.Errorf("last refresh failed (%s ago): %w", c.since(st.lastAttempt), st.lastErr)
	}

	if age := c.opts.Now().Sub(st.loadedAt); age > c.opts.MaxIndexAge {
		return nil, fmt.Errorf("%w: last successful refresh %s ago, bound is %s", repo.ErrStale, age.Round(time.Millisecond), c.opts.MaxIndexAge)
	}

	return st.index, nil
}

func (c *Cache) since(t time.Time) time.Duration { return c.opts.Now().Sub(t).Round(time.Millisecond) }

// Lookup answers for one PVC from the current index: LookupAt the newest snapshot.
func (c *Cache) Lookup(ctx context.Context, pvc repo.PVC) repo.Answer {
	return c.LookupAt(ctx, pvc, repo.PointInTime{})
}

// LookupAt answers for one PVC restored at point in time p (repo.DecideAt: a point in time that
// selects nothing while snapshots exist is Unknown). It never does backend I/O unless the
// backend's index does (then bounded by LookupTimeout). If ctx ends first, the answer is
// Unknown for this caller only: the shared lookup goes on for the others.
func (c *Cache) LookupAt(ctx context.Context, pvc repo.PVC, p repo.PointInTime) repo.Answer {
	return c.LookupQuery(ctx, repo.Query{PVC: pvc, PointInTime: p})
}

// LookupQuery is LookupAt for q's PVC and point in time, looking up the source q names
// (repo.Index.FindSource) when it names one, else the PVC's own. A named source is never
// searched for near misses: its answer is never Fresh (repo.SettleRestoreSource, in the Group).
// The acknowledgements of q are the guards' business, not the cache's.
func (c *Cache) LookupQuery(ctx context.Context, q repo.Query) repo.Answer {
	pvc, p := q.PVC, q.PointInTime
	named := q.Source != repo.KopiaSource{}
	st := c.state.Load()

	idx, err := c.usable(st)
	if err != nil {
		f := repo.Finding{}
		if named {
			f.Source = q.Source.String()
		}

		return repo.DecideAt(pvc, c.opts.Backend, f, p, st.loadedAt, err)
	}

	key := newMemoKey(q, st.generation)
	if a, ok := c.memo.Get(key); ok {
		return a
	}

	ch := c.group.DoChan(key.String(), func() (any, error) {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.LookupTimeout)
		defer cancel()

		var (
			f    repo.Finding
			ferr error
		)

		if named {
			f, ferr = idx.FindSource(lctx, pvc, q.Source)
		} else {
			f, ferr = idx.Find(lctx, pvc)
		}

		if !named && ferr == nil && len(f.Snapshots) == 0 && c.opts.NearMisses {
			f.NearMisses = idx.NearMisses(pvc)
			for i := range f.NearMisses {
				f.NearMisses[i].Backend = c.opts.Backend
			}
		}

		a := repo.DecideAt(pvc, c.opts.Backend, f, p, st.loadedAt, ferr)
		c.logDecision(idx, a)

		if !errors.Is(ferr, repo.ErrUnavailable) && !errors.Is(ferr, repo.ErrPending) { // transient: ask again next time
			c.memo.Add(key, a)
		}

		return a, nil
	})

	select {
	case r := <-ch:
		return r.Val.(repo.Answer) //nolint:forcetypeassert // the function above only returns Answers
	case <-ctx.Done():
		return repo.DecideAt(pvc, c.opts.Backend, repo.Finding{}, p, st.loadedAt,
			fmt.Errorf("%w: lookup abandoned: %w", repo.ErrUnavailable, ctx.Err()))
	}
}

// maxLoggedNearby bounds the nearby sources a fresh decision's log line names.
const maxLoggedNearby = 5

// logDecision logs a computed decision at info, with the identity looked up and, for fresh, the
// sources stored nearby (bounded): after an empty restore, this is what shows what was looked
// up. Memoised answers are not logged again (the hit path stays cheap).
func (c *Cache) logDecision(idx repo.Index, a repo.Answer) {
	attrs := []any{"pvc", a.PVC.String(), "backend", c.opts.Backend, "decision", string(a.Decision), "source", a.Source,
		"snapshots", a.SnapshotCount}

	switch {
	case a.Reason != nil:
		attrs = append(attrs, "reason", a.Reason.Error())
	case a.Decision == repo.Fresh:
		nearby := idx.Nearby(a.PVC)
		attrs = append(attrs, "nearby", nearby[:min(len(nearby), maxLoggedNearby)], "nearbyCount", len(nearby))
	}

	if len(a.NearMisses) > 0 {
		// The guards (NEAR_MISS, the ledger) decide after this backend: the answer sent is logged
		// as "unknown answer" when they refuse it.
		attrs = append(attrs, "nearMisses", len(a.NearMisses), "guards", "a near miss: NEAR_MISS decides the answer")
	}

	// This backend's decision; the answer sent also passes the other backends and the guards.
	c.opts.Logger.Info("backend decision", attrs...)
}

// Explain reports everything the current index knows of pvc, for operators: the identity, every
// snapshot, the sources stored nearby (repo.Index.Nearby) and why the backend
// is not authoritative, if it is not. It is not memoised.
func (c *Cache) Explain(ctx context.Context, pvc repo.PVC) repo.Explanation {
	st := c.state.Load()
	e := repo.Explanation{Backend: c.opts.Backend, IndexTime: st.loadedAt}

	idx, err := c.usable(st)
	if err != nil {
		e.Err = err

		if st.index == nil {
			return e
		}

		idx = st.index // still show what the last index held
	}

	ctx, cancel := context.WithTimeout(ctx, c.opts.LookupTimeout)
	defer cancel()

	f, ferr := idx.Find(ctx, pvc)
	if ferr == nil && len(f.Snapshots) == 0 {
		f.NearMisses = idx.NearMisses(pvc) // shown whatever NEAR_MISS says: this is for humans
		for i := range f.NearMisses {
			f.NearMisses[i].Backend = c.opts.Backend
		}
	}

	e.Finding = f

	if e.Err == nil {
		e.Err = ferr
	}

	e.Nearby = idx.Nearby(pvc)

	return e
}

// Inventory lists what the current index holds (repo.Index.Stored). When the backend is not
// authoritative, Stored is empty and Err says why: an inventory from a stale or failed index
// could hide a backup or show one that is gone. It does no I/O.
func (c *Cache) Inventory() repo.Inventory {
	st := c.state.Load()
	inv := repo.Inventory{Backend: c.opts.Backend, IndexTime: st.loadedAt}

	idx, err := c.usable(st)
	if err != nil {
		inv.Err = err
		return inv
	}

	inv.Stored = idx.Stored()

	return inv
}

// Status describes the cache for operators (/status) and logs. It does no I/O.
func (c *Cache) Status() repo.IndexStatus {
	st := c.state.Load()
	s := repo.IndexStatus{
		Backend: c.opts.Backend, LoadedAt: st.loadedAt, LastAttempt: st.lastAttempt,
		Generation: st.generation, LastError: st.lastErr,
	}

	if st.index != nil {
		s.Stats = st.index.Stats()
	}

	s.Refused = st.refused
	_, s.NotReady = c.usable(st)

	return s
}
