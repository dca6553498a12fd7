package restic

import (
	"context"
	"fmt"
	"time"

	"github.com/backup-oracle/backup-oracle/repo"
)

// Repo reads restic repositories from one storage. Load is meant to be called from one goroutine
// at a time (cache.Loader); Requests and Close are safe for concurrent use.
type Repo struct {
	opts     Options
	store    *countingStorage
	layout   layout
	verifier *verifier // nil without a password
	cancel   context.CancelFunc
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
	r := &Repo{opts: opts, store: &countingStorage{Storage: store}, layout: newLayout(opts), cancel: cancel}

	if opts.Password != "" {
		dec, err := newDecoder()
		if err != nil {
			cancel()
			return nil, err
		}

		if r.verifier, err = newVerifier(base, r.store, dec, opts); err != nil {
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
func (r *Repo) Load(ctx context.Context) (repo.Index, error) {
	repos, err := r.discover(ctx)
	if err != nil {
		return nil, err
	}

	if r.verifier != nil {
		r.waitVerified(ctx, r.verifier.refresh(repos))
	}

	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("restic: load %q: %w: %w", r.store.Location(r.layout.template), repo.ErrUnavailable, err)
	}

	return r.newIndex(repos), nil
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
