package restic

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/backup-oracle/backup-oracle/repo"
)

// Repo reads restic repositories from one storage. Load is meant to be called from one goroutine
// at a time (cache.Loader); Requests and Close are safe for concurrent use.
type Repo struct {
	opts     Options
	store    *countingStorage
	layout   layout
	variants []variant // per-PVC layout: where else a PVC's repository is found (nearmiss.go)
	verifier *verifier // nil without any password
	cancel   context.CancelFunc
	lookups  chan struct{} // bounds the listings lookups send at once

	mu       sync.Mutex // guards the fleet listing
	fleet    *fleet
	fleetTop []string
	fleetAt  time.Time
}

// New validates opts and returns a Repo on the storage they name. It does not contact the
// storage: an unreachable S3 server is reported by Load, so the service can start and answer
// "unknown" meanwhile.
func New(opts Options) (*Repo, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}

	opts = opts.withDefaults()

	var store Storage
	if opts.Dir != "" {
		store = NewDirStorage(opts.Dir)
	} else {
		s, err := NewS3Storage(context.Background(), opts.S3)
		if err != nil {
			return nil, err
		}

		store = s
	}

	return NewWithStorage(opts, store)
}

// NewWithStorage is New on a caller-supplied Storage; opts.Dir and opts.S3 are ignored.
func NewWithStorage(opts Options, store Storage) (*Repo, error) {
	if err := opts.validate(false); err != nil {
		return nil, err
	}

	opts = opts.withDefaults()

	base, cancel := context.WithCancel(context.Background())
	r := &Repo{opts: opts, store: &countingStorage{Storage: store}, layout: newLayout(opts), cancel: cancel,
		lookups: make(chan struct{}, opts.LookupConcurrency)}
	if !r.layout.shared {
		r.variants = variants(r.layout.template)
	}

	if opts.Password != "" || len(opts.Passwords) > 0 {
		dec, err := newDecoder()
		if err != nil {
			cancel()
			return nil, err
		}

		if r.verifier, err = newVerifier(base, r.store, dec, opts, r.layout); err != nil {
			cancel()
			return nil, err
		}
	}

	return r, nil
}

// Load builds a complete index: it discovers every repository and lists its snapshots (requests
// proportional to the number of PVCs, at most ListConcurrency in flight, each bounded by the
// storage's request timeout), then, with a password, waits at most VerifyWait for the
// verification of snapshots it has not verified before. It returns an error wrapping
// repo.ErrUnavailable when any listing fails: never a partial index.
//
// With a FleetRefreshInterval (per-PVC layout), the fleet is listed only that often; the loads
// in between send one request (the directory the namespaces are listed from: it proves the
// storage answers, and when the namespaces it shows changed, the fleet is listed at once) and
// reuse the last fleet listing, and the index's lookups confirm each PVC with a listing of its
// own (Index.Find).
//
// Shared layout: the repository's id is read first (Options.RepositoryID, repo.Pin); another
// repository than the pinned or first seen one fails the load with repo.ErrRepositoryMismatch.
func (r *Repo) Load(ctx context.Context) (repo.Index, error) {
	var id string

	if r.layout.shared {
		var err error
		if id, err = r.checkPin(ctx); err != nil {
			return nil, err
		}
	}

	f, err := r.fleetListing(ctx)
	if err != nil {
		return nil, err
	}

	if r.verifier != nil {
		r.waitVerified(ctx, r.verifier.refresh(r.verified(f.repos)))
	}

	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("restic: load %q: %w: %w", r.store.Location(r.layout.template), repo.ErrUnavailable, err)
	}

	idx := r.newIndex(f)
	idx.stats.RepositoryID = id

	return idx, nil
}

// confirms reports whether lookups confirm their PVC with a listing of its own.
func (r *Repo) confirms() bool { return r.opts.FleetRefreshInterval > 0 && !r.layout.shared }

// fleetListing returns every repository with its snapshot objects: listed now, or, between two
// fleet listings (see Load), the last one once one request showed the storage unchanged at its
// top level.
func (r *Repo) fleetListing(ctx context.Context) (fleet, error) {
	if !r.confirms() {
		return r.discover(ctx)
	}

	r.mu.Lock()
	last, top, at := r.fleet, r.fleetTop, r.fleetAt
	r.mu.Unlock()

	now := r.opts.Now()

	if last != nil && now.Sub(at) < r.opts.FleetRefreshInterval {
		current, err := r.topLevel(ctx)
		if err != nil {
			return fleet{}, err
		}

		if slices.Equal(current, top) {
			return *last, nil
		}
	}

	f, top, err := r.discoverTop(ctx)
	if err != nil {
		return fleet{}, err
	}

	r.mu.Lock()
	r.fleet, r.fleetTop, r.fleetAt = &f, top, now
	r.mu.Unlock()

	return f, nil
}

// listSnapshots lists one repository's snapshots/ for a lookup, at most LookupConcurrency at once.
func (r *Repo) listSnapshots(ctx context.Context, dir string) ([]Object, error) {
	select {
	case r.lookups <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("restic: list %q: %w: waiting for a slot: %w", r.store.Location(dir+"snapshots/"), repo.ErrUnavailable, ctx.Err())
	}
	defer func() { <-r.lookups }()

	l, err := r.store.List(ctx, dir+"snapshots/")
	if err != nil {
		return nil, fmt.Errorf("restic: list %q: %w: %w", r.store.Location(dir+"snapshots/"), repo.ErrUnavailable, err)
	}

	return snapshotObjects(dir+"snapshots/", l), nil
}

// waitVerified waits until every channel is closed, VerifyWait elapsed or ctx is done.
func (r *Repo) waitVerified(ctx context.Context, dones []chan struct{}) {
	timer := time.NewTimer(r.opts.VerifyWait)
	defer timer.Stop()

	for _, d := range dones {
		select {
		case <-d:
		case <-timer.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// Requests counts the list and get requests sent to the storage since New.
func (r *Repo) Requests() RequestCounts { return r.store.counts() }

// Close stops background verifications. Indexes already returned stay usable.
func (r *Repo) Close(context.Context) error {
	r.cancel()
	return nil
}

// verifies reports whether the snapshots of the repository at dir are verified: a password is
// known for it (Options.Password, or its PVC's of Options.Passwords).
func (r *Repo) verifies(dir string) bool {
	return r.verifier != nil && r.verifier.hasPassword(dir)
}

// verified keeps the repositories whose snapshots are verified.
func (r *Repo) verified(repos map[string][]Object) map[string][]Object {
	if r.opts.Password != "" {
		return repos
	}

	out := make(map[string][]Object, len(repos))

	for dir, objs := range repos {
		if r.verifies(dir) {
			out[dir] = objs
		}
	}

	return out
}
