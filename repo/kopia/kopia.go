// Package kopia indexes a Kopia repository, read-only, through the kopia Go library.
//
// The repository is the one VolSync's Kopia mover writes, shared by every PVC of a cluster. The
// adapter connects with ClientOptions{ReadOnly: true}, keeps its config and cache in a private
// directory, never writes to the repository and never runs maintenance. A Repo keeps the opened
// repository between loads so a refresh costs one index refresh, not a reconnect, and loads each
// snapshot manifest once (manifests are immutable).
package kopia

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	kopiarepo "github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/blob"
	"github.com/kopia/kopia/repo/content"
	"github.com/kopia/kopia/repo/manifest"
	"github.com/kopia/kopia/snapshot"

	"github.com/backup-oracle/backup-oracle/repo"
)

// Storage opens the blob storage a repository lives in.
type Storage interface {
	// Check is a cheap, fast probe run before every load: it returns the repository's format
	// blob (kopia.repository) and must fail at once (no retry loop) when the storage is missing
	// or unreadable, because kopia's own I/O retries for ~11 s.
	Check(ctx context.Context) ([]byte, error)
	// Open returns the storage; kopia closes it with the repository.
	Open(ctx context.Context) (blob.Storage, error)
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
	// Pin holds the repository id the storage must hold (KOPIA_REPOSITORY_ID), or the one this
	// process first saw; nil makes a new one from RepositoryID. Share one Pin between the Repos
	// that replace each other (repo.Reloading) so a changed id is noticed across reconnects.
	Pin *Pin
	// RepositoryID is the pinned id, hex (kopia repository status: uniqueIDHex); used when Pin
	// is nil.
	RepositoryID string
	Logger       *slog.Logger
}

// Repo is a read-only Kopia repository. Load may not be called concurrently with itself (the
// cache calls it from one goroutine); the indexes it returns are immutable and safe to share.
type Repo struct {
	opts Options

	mu    sync.Mutex
	rep   kopiarepo.Repository
	repID string // unique id of the repository rep is connected to, hex
	fatal chan error
	seen  map[manifest.ID]manifestSummary
}

// ignoreMalformedManifests is the environment variable with which kopia skips manifest contents
// it cannot read or authenticate instead of failing the listing
// (repo/manifest/committed_manifest_manager.go, v0.22.3): the snapshots they hold then vanish
// from the index, and their PVCs would answer fresh.
const ignoreMalformedManifests = "KOPIA_IGNORE_MALFORMED_MANIFEST_CONTENTS"

// manifestSummary is what the index keeps of one snapshot manifest.
type manifestSummary struct {
	source     repo.KopiaSource
	snapshot   repo.Snapshot
	incomplete bool
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

	return &Repo{opts: opts, fatal: make(chan error, 1), seen: map[manifest.ID]manifestSummary{}}, nil
}

// String names the repository for logs.
func (r *Repo) String() string { return "kopia " + r.opts.Storage.String() }

// Load refreshes the repository and returns a complete index of every snapshot source.
// Any failure returns an error wrapping repo.ErrUnavailable and no index; the connection is then
// dropped so the next load reconnects (a removed and restored repository comes back).
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

	blob, err := r.opts.Storage.Check(ctx)
	if err != nil {
		return nil, err
	}

	id, err := uniqueID(blob)
	if err != nil {
		return nil, err
	}

	if err := r.opts.Pin.check(id, r.opts.Logger, r.opts.Storage.String()); err != nil {
		return nil, err
	}

	if r.rep != nil && id != r.repID {
		r.opts.Logger.Warn("kopia: the repository was re-created at the same location, reconnecting",
			"storage", r.opts.Storage.String(), "was", r.repID, "now", id)
		r.closeLocked(ctx)
	}

	if r.rep == nil {
		if err := r.connect(ctx, r.opts.Password.Reveal()); err != nil {
			return nil, err
		}

		r.repID = id
	} else if err := r.rep.Refresh(ctx); err != nil {
		return nil, fmt.Errorf("refresh: %w", err)
	}

	return r.index(ctx)
}

func (r *Repo) configFile() string { return filepath.Join(r.opts.StateDir, "repository.config") }

func (r *Repo) connect(ctx context.Context, password string) error {
	if err := os.MkdirAll(r.opts.StateDir, 0o700); err != nil {
		return fmt.Errorf("create state directory: %w", err)
	}

	// A config left by an earlier connection (or an earlier process) may point elsewhere.
	_ = os.Remove(r.configFile())

	st, err := r.opts.Storage.Open(ctx)
	if err != nil {
		return fmt.Errorf("open storage: %w", err)
	}

	connErr := kopiarepo.Connect(ctx, r.configFile(), st, password, &kopiarepo.ConnectOptions{
		ClientOptions: kopiarepo.ClientOptions{
			ReadOnly: true, Hostname: "backup-oracle", Username: "backup-oracle",
			Description: "backup-oracle (read-only)",
		},
		CachingOptions: content.CachingOptions{
			CacheDirectory: filepath.Join(r.opts.StateDir, "cache"),
			// Only metadata (indexes, manifests) is ever read: keep the cache small.
			ContentCacheSizeBytes:  16 << 20,
			MetadataCacheSizeBytes: 64 << 20,
		},
	})

	if cerr := st.Close(ctx); cerr != nil && connErr == nil {
		connErr = cerr
	}

	if connErr != nil {
		return fmt.Errorf("connect: %w", connErr)
	}

	rep, err := kopiarepo.Open(ctx, r.configFile(), password, &kopiarepo.Options{
		DisableRepositoryLog: true,
		DoNotWaitForUpgrade:  true,
		// Left nil, kopia calls os.Exit(1). A fatal error instead fails the next load.
		OnFatalError: func(err error) {
			select {
			case r.fatal <- err:
			default:
			}
		},
	})
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}

	r.rep = rep
	r.seen = map[manifest.ID]manifestSummary{}

	return nil
}

// closeLocked drops the connection; the next load reconnects.
func (r *Repo) closeLocked(ctx context.Context) {
	if r.rep == nil {
		return
	}

	if err := r.rep.Close(ctx); err != nil {
		r.opts.Logger.Warn("kopia: close repository", "storage", r.opts.Storage.String(), "err", err)
	}

	r.rep = nil
}

// Close releases the repository. It is safe to call more than once.
func (r *Repo) Close(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closeLocked(ctx)

	return nil
}

// index lists every snapshot manifest, loading only those not seen by an earlier load.
func (r *Repo) index(ctx context.Context) (*Index, error) {
	entries, err := r.rep.FindManifests(ctx, map[string]string{manifest.TypeLabelKey: snapshot.ManifestType})
	if err != nil {
		return nil, fmt.Errorf("list snapshot manifests: %w", err)
	}

	seen := make(map[manifest.ID]manifestSummary, len(entries))
	broken := map[repo.KopiaSource]error{}

	for _, e := range entries {
		if s, ok := r.seen[e.ID]; ok {
			seen[e.ID] = s
			continue
		}

		src := repo.KopiaSource{UserName: e.Labels[snapshot.UsernameLabel], Host: e.Labels[snapshot.HostnameLabel], Path: e.Labels[snapshot.PathLabel]}

		m, err := snapshot.LoadSnapshot(ctx, r.rep, e.ID)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("load snapshot manifest %s: %w", e.ID, err)
			}

			broken[src] = fmt.Errorf("load snapshot manifest %s: %w", e.ID, err)

			continue
		}

		seen[e.ID] = summarize(src, m)
	}

	r.seen = seen

	idx := newIndex(r.opts.Identity, seen, broken)
	idx.stats.RepositoryID = r.repID
	idx.stats.Fitting = idx.fitting()

	return idx, nil
}

func summarize(src repo.KopiaSource, m *snapshot.Manifest) manifestSummary {
	return manifestSummary{
		source: src,
		snapshot: repo.Snapshot{
			ID:        string(m.ID),
			StartTime: m.StartTime.ToTime(),
			EndTime:   m.EndTime.ToTime(),
			TotalSize: m.Stats.TotalFileSize,
			FileCount: int64(m.Stats.TotalFileCount),
		},
		incomplete: m.IncompleteReason != "",
	}
}
