// Package kopia indexes a Kopia repository, read-only, through the kopia Go library.
//
// The repository is the one VolSync's Kopia mover writes, shared by every PVC of a cluster. The
// adapter connects with ClientOptions{ReadOnly: true}, keeps its config and cache in a private
// directory, never writes to the repository and never runs maintenance. A Repo keeps the opened
// repository between loads so a refresh costs one index refresh, not a reconnect, and reads the
// snapshot manifests itself through the content API (manifests.go), keeping only what the index
// reports; each manifest content is read once.
//
// Upgrades: before every load the format blob (kopia.repository) is read with plain I/O. When it
// changed since the repository was opened (an upgrade lock placed, an upgrade committed or
// rolled back, a password changed), the repository is reopened; while an upgrade lock holds,
// the load fails with "repository upgrade in progress" (every answer is then unknown: the
// repository is being rewritten and kopia forbids other clients to read it). Kopia's own
// format-blob cache (15 minutes) therefore never hides a change for longer than one refresh.
// No code path reaches kopia's default fatal-error handler (os.Exit): see OpenDirect.
package kopia

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	kopiarepo "github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/blob"
	"github.com/kopia/kopia/repo/content"
	"github.com/kopia/kopia/repo/format"
	"golang.org/x/sync/errgroup"

	"github.com/backup-oracle/backup-oracle/repo"
)

// ErrUpgradeInProgress is wrapped by a load that found an upgrade lock on the repository
// (`kopia repository upgrade begin`). It is kopia's own error, so errors.Is matches both.
var ErrUpgradeInProgress = kopiarepo.ErrRepositoryUnavailableDueToUpgradeInProgress

// Storage is where a repository lives.
type Storage interface {
	// ReadFormat reads the format blob (kopia.repository) with a cheap, bounded request. It must
	// fail at once (no retry loop) when the storage is missing or unreadable, because kopia's own
	// I/O retries for ~11 s.
	ReadFormat(ctx context.Context) ([]byte, error)
	// Open returns the storage; kopia closes it with the repository.
	Open(ctx context.Context) (blob.Storage, error)
	// Close releases what ReadFormat keeps open.
	Close(ctx context.Context) error
	// String names the storage for errors and logs; it must not contain secrets.
	String() string
}

// Options configure a Repo. Storage, Password, StateDir and Identity are required.
type Options struct {
	Storage Storage
	// Password is the repository password. A rotated password is picked up by re-opening the
	// backend (repo.Reloading), not by the Repo.
	Password repo.Secret
	// StateDir holds kopia's config file and cache; it must be private and writable.
	StateDir string
	Identity repo.KopiaIdentity
	// OtherSchemes are the naming schemes of layouts the repository holds on purpose
	// (KOPIA_OTHER_SCHEMES): they count as fitting, and are near-miss schemes.
	OtherSchemes []repo.NamingScheme
	// Pin holds the repository id the storage must hold (KOPIA_REPOSITORY_ID), or the one this
	// process first saw; nil makes a new one from RepositoryID. Share one Pin between the Repos
	// that replace each other (repo.Reloading) so a changed id is noticed across reconnects.
	Pin *Pin
	// RepositoryID is the pinned id, hex (kopia repository status: uniqueIDHex); used when Pin
	// is nil.
	RepositoryID string
	Logger       *slog.Logger
	// Now is the clock upgrade locks are judged by (default time.Now).
	Now func() time.Time
}

// ignoreMalformedManifests is the environment variable with which kopia's manifest manager skips
// manifest contents it cannot read or authenticate instead of failing the listing
// (repo/manifest/committed_manifest_manager.go, v0.22.3). The adapter reads manifest contents
// itself and never skips one, but refuses to load while the variable is set: an operator who set
// it expects skipping, and any kopia code path that still honours it would drop snapshots (their
// PVCs answering fresh).
const ignoreMalformedManifests = "KOPIA_IGNORE_MALFORMED_MANIFEST_CONTENTS"

// Repo is a read-only Kopia repository. Load may not be called concurrently with itself (the
// cache calls it from one goroutine); the indexes it returns are immutable and safe to share.
type Repo struct {
	opts Options

	mu    sync.Mutex
	rep   kopiarepo.DirectRepository
	repID string // unique id of the repository rep is connected to, hex
	fatal chan error
	// format is the format blob the open repository was opened with; intent its upgrade lock
	// intent, if any (a lock announced in advance takes effect later).
	format []byte
	intent *format.UpgradeLockIntent
	// locked is the last format blob found locked for an upgrade: while the blob is unchanged
	// the lock holds (a lock intent only gets stronger with time), so no reconnect is tried.
	locked []byte

	contents map[content.ID]*manifestContent // every manifest content read, by id
	sources  interner
	last     *Index
	lastIDs  []content.ID // sorted ids of the contents last indexed
}

// New validates opts; it does no I/O.
func New(opts Options) (*Repo, error) {
	var errs []error
	if opts.Storage == nil {
		errs = append(errs, errors.New("kopia: storage is required"))
	}

	if opts.Password == "" {
		errs = append(errs, errors.New("kopia: password is required"))
	}

	if opts.StateDir == "" {
		errs = append(errs, errors.New("kopia: state directory is required"))
	}

	if err := opts.Identity.Validate(); err != nil {
		errs = append(errs, err)
	}

	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}

	if opts.Pin == nil {
		opts.Pin = NewPin(opts.RepositoryID)
	}

	if opts.Now == nil {
		opts.Now = time.Now
	}

	return &Repo{opts: opts, fatal: make(chan error, 1), contents: map[content.ID]*manifestContent{}, sources: interner{}}, nil
}

// String names the repository for logs.
func (r *Repo) String() string { return "kopia " + r.opts.Storage.String() }

// Load refreshes the repository and returns a complete index of every snapshot source.
// Any failure returns an error wrapping repo.ErrUnavailable (and ErrUpgradeInProgress during an
// upgrade) and no index; the connection is then dropped so the next load reconnects (a removed
// and restored repository comes back). Load honours ctx; the caller bounds it (REFRESH_TIMEOUT).
func (r *Repo) Load(ctx context.Context) (repo.Index, error) {
	r.mu.Lock()
	defer r.mu.Unlock()

	idx, err := r.load(ctx)
	if err != nil {
		r.closeLocked(ctx)

		return nil, fmt.Errorf("kopia: load %s: %w: %w", r.opts.Storage, repo.ErrUnavailable, err)
	}

	return idx, nil
}

// readContents reads the manifest contents among ids not read before, one per CPU at a time
// (decompressing and scanning is CPU-bound), and shares their sources' strings.
func (r *Repo) readContents(ctx context.Context, ids []content.ID) error {
	var todo []content.ID

	for _, id := range ids {
		if _, ok := r.contents[id]; !ok {
			todo = append(todo, id)
		}
	}

	read := make([]*manifestContent, len(todo))
	cr := r.rep.ContentReader()

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))

	for i, id := range todo {
		g.Go(func() error {
			c, err := loadManifestContent(gctx, cr, id)
			read[i] = c

			return err
		})
	}

	if err := g.Wait(); err != nil {
		return err
	}

	for i, c := range read {
		shared := map[*repo.KopiaSource]*repo.KopiaSource{}

		for j := range c.entries {
			e := &c.entries[j]
			if e.src == nil {
				continue
			}

			s, ok := shared[e.src]
			if !ok {
				s = r.sources.get(*e.src)
				shared[e.src] = s
			}

			e.src = s
		}

		r.contents[todo[i]] = c
	}

	return nil
}

func (r *Repo) load(ctx context.Context) (*Index, error) {
	select {
	case err := <-r.fatal:
		return nil, fmt.Errorf("repository reported a fatal error: %w", err)
	default:
	}

	// kopia reads it from the process environment, so that is what is checked.
	if os.Getenv(ignoreMalformedManifests) != "" {
		return nil, fmt.Errorf("%s is set: kopia would skip unreadable manifests and the index could miss snapshots; unset it", ignoreMalformedManifests)
	}

	fb, err := r.opts.Storage.ReadFormat(ctx)
	if err != nil {
		return nil, err
	}

	id, err := uniqueID(fb)
	if err != nil {
		return nil, err
	}

	if err := r.opts.Pin.Check(id, r.opts.Logger, r.opts.Storage.String()); err != nil {
		return nil, err
	}

	if r.repID != "" && id != r.repID {
		r.opts.Logger.Warn("kopia: the repository was re-created at the same location, reconnecting",
			"storage", r.opts.Storage.String(), "was", r.repID, "now", id)
		r.closeLocked(ctx)
		// Nothing read from the other repository is kept.
		r.contents, r.sources, r.last, r.lastIDs, r.locked = map[content.ID]*manifestContent{}, interner{}, nil, nil, nil
	}

	r.repID = id

	if r.rep != nil && !bytes.Equal(fb, r.format) {
		r.opts.Logger.Info("kopia: the repository's format blob changed (upgrade, rollback or new password): reopening", "storage", r.opts.Storage.String())
		r.closeLocked(ctx)
	}

	switch {
	case r.rep == nil && r.locked != nil && bytes.Equal(fb, r.locked):
		return nil, upgradeError(nil)
	case r.rep == nil:
		if err := r.connect(ctx, fb); err != nil {
			if errors.Is(err, ErrUpgradeInProgress) {
				r.locked = fb
				return nil, upgradeError(nil)
			}

			return nil, err
		}

		r.locked = nil
	case r.lockedNow():
		r.locked = fb
		return nil, upgradeError(r.intent)
	default:
		if err := r.rep.Refresh(ctx); err != nil {
			return nil, fmt.Errorf("refresh: %w", err)
		}
	}

	if r.lockedNow() { // announced in advance, in force now
		r.locked = fb
		return nil, upgradeError(r.intent)
	}

	return r.index(ctx)
}

func (r *Repo) lockedNow() bool {
	locked, _ := r.intent.IsLocked(r.opts.Now())
	return locked
}

// upgradeError describes an upgrade lock; intent is nil when kopia only reported the lock.
func upgradeError(intent *format.UpgradeLockIntent) error {
	detail := ""
	if intent != nil {
		detail = fmt.Sprintf(" (owner %q, placed %s, %q)", intent.OwnerID, intent.CreationTime.UTC().Format(time.RFC3339), intent.Message)
	}

	return fmt.Errorf("%w%s: every answer is unknown until the upgrade is committed or rolled back", ErrUpgradeInProgress, detail)
}

func (r *Repo) configFile() string { return filepath.Join(r.opts.StateDir, "repository.config") }

// connect opens the repository whose format blob is fb.
func (r *Repo) connect(ctx context.Context, fb []byte) error {
	if err := os.MkdirAll(r.opts.StateDir, 0o700); err != nil {
		return fmt.Errorf("create state directory: %w", err)
	}

	st, err := r.opts.Storage.Open(ctx)
	if err != nil {
		return fmt.Errorf("open storage: %w", err)
	}

	rep, err := OpenDirect(ctx, st, r.opts.Password.Reveal(), ConnectOptions{
		ConfigFile: r.configFile(),
		Cache: content.CachingOptions{
			CacheDirectory: filepath.Join(r.opts.StateDir, "cache"),
			// Only metadata (indexes, manifests) is ever read: keep the cache small.
			ContentCacheSizeBytes:  16 << 20,
			MetadataCacheSizeBytes: 64 << 20,
		},
		Client: readOnlyClient(),
		// A fatal error (a format this kopia cannot read) fails the next load instead of exiting.
		OnFatalError: func(err error) {
			select {
			case r.fatal <- err:
			default:
			}
		},
	})

	// kopia re-creates the storage from the config file: this one only provided its settings.
	_ = st.Close(ctx)

	if err != nil {
		return err
	}

	intent, err := rep.FormatManager().GetUpgradeLockIntent(ctx) // just loaded: no I/O
	if err != nil {
		_ = rep.Close(ctx)
		return fmt.Errorf("read upgrade lock intent: %w", err)
	}

	r.rep, r.format, r.intent = rep, fb, intent

	// Opening derived the format key with scrypt, a 64 MiB buffer now garbage. Returned to the OS
	// at once, it costs one collection per connect; left to Go's background scavenger, it is
	// released page by page while the allocator faults pages back in, which cost the /exists hit
	// path a quarter more CPU per request without a soft memory limit (measured; README,
	// Benchmarks).
	debug.FreeOSMemory()

	return nil
}

// closeLocked drops the connection; the next load reconnects. Parsed manifest contents are
// kept: they are immutable.
func (r *Repo) closeLocked(ctx context.Context) {
	if r.rep == nil {
		return
	}

	if err := r.rep.Close(ctx); err != nil {
		r.opts.Logger.Warn("kopia: close repository", "storage", r.opts.Storage.String(), "err", err)
	}

	r.rep, r.format, r.intent = nil, nil, nil
}

// closeWait bounds how long Close waits for a running load.
const closeWait = 5 * time.Second

// Close releases the repository. It is safe to call more than once. It waits at most 5 s for a
// running load (one stuck in kopia must not hang the process's shutdown); past that it leaves the
// repository to the exiting process and returns an error.
func (r *Repo) Close(ctx context.Context) error {
	locked := make(chan struct{})

	go func() {
		r.mu.Lock()
		close(locked)
	}()

	select {
	case <-locked:
	case <-time.After(closeWait):
		return fmt.Errorf("kopia: close %s: a load is still running after %s", r.opts.Storage, closeWait)
	}

	defer r.mu.Unlock()
	r.closeLocked(ctx)

	return r.opts.Storage.Close(ctx)
}

// index reads the manifest contents not read before and merges them into an index. When the set
// of manifest contents is the one last indexed, the last index is returned as it is.
func (r *Repo) index(ctx context.Context) (*Index, error) {
	ids, err := manifestIDs(ctx, r.rep.ContentReader())
	if err != nil {
		return nil, err
	}

	slices.SortFunc(ids, func(a, b content.ID) int { return strings.Compare(a.String(), b.String()) })

	if r.last != nil && slices.Equal(ids, r.lastIDs) {
		return r.last, nil
	}

	if err := r.readContents(ctx, ids); err != nil {
		return nil, err
	}

	contents := make([]*manifestContent, 0, len(ids))
	live := make(map[content.ID]bool, len(ids))

	for _, id := range ids {
		live[id] = true
		contents = append(contents, r.contents[id])
	}

	for id := range r.contents {
		if !live[id] {
			delete(r.contents, id) // merged away by compaction
		}
	}

	idx := newIndex(r.opts.Identity, r.opts.OtherSchemes, contents)

	idx.stats.RepositoryID = r.repID
	r.last, r.lastIDs = idx, ids
	r.sources = make(interner, len(idx.sources))

	for src := range idx.sources {
		r.sources[src] = &src // shares the strings of the entries' sources
	}

	return idx, nil
}
