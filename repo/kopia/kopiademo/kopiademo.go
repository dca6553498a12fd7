// Package kopiademo writes Kopia repositories with the kopia library: the demo repository that
// `backup-oracle --demo` serves, and the large repositories benchmarks need. It is the only code
// in backup-oracle that writes to a repository, and only to one it created itself.
package kopiademo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/fs/localfs"
	kopiarepo "github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/blob"
	"github.com/kopia/kopia/repo/blob/filesystem"
	"github.com/kopia/kopia/repo/content"
	"github.com/kopia/kopia/snapshot"
	"github.com/kopia/kopia/snapshot/policy"
	"github.com/kopia/kopia/snapshot/upload"

	"github.com/backup-oracle/backup-oracle/repo"
	"github.com/backup-oracle/backup-oracle/repo/kopia"
)

// Backup is one snapshot to write: the directory Dir uploaded as Source.
type Backup struct {
	Source repo.KopiaSource
	Dir    string
	// Incomplete marks the snapshot as a checkpoint of an interrupted backup.
	Incomplete bool
	// Time is the snapshot's start time (it ends a minute later); zero keeps the upload's times.
	Time time.Time
}

// Write creates a filesystem repository at path (or opens the one already there) and writes
// every backup in one write session. stateDir receives the writer's config file.
func Write(ctx context.Context, path, password, stateDir string, backups []Backup) error {
	st, err := filesystem.New(ctx, &filesystem.Options{Path: path}, true)
	if err != nil {
		return fmt.Errorf("kopiademo: storage %s: %w", path, err)
	}

	return WriteTo(ctx, st, password, stateDir, backups)
}

// WriteTo initialises the repository in st if needed and writes every backup in one write
// session, as one mover run would: the session's manifests land in one manifest content. Each
// distinct Dir is uploaded once per session; later backups of it reuse the first upload's root
// entry and statistics, as an unchanged volume backed up again yields the same root object. A
// fatal kopia error fails the write; it never exits the process.
func WriteTo(ctx context.Context, st blob.Storage, password, stateDir string, backups []Backup) error {
	if err := kopiarepo.Initialize(ctx, st, &kopiarepo.NewRepositoryOptions{}, password); err != nil && !errors.Is(err, kopiarepo.ErrAlreadyInitialized) {
		return fmt.Errorf("kopiademo: initialize %s: %w", st.DisplayName(), err)
	}

	cfg := filepath.Join(stateDir, "writer.config")
	defer os.Remove(cfg)

	fatal := make(chan error, 1)

	rep, err := kopia.OpenDirect(ctx, st, password, kopia.ConnectOptions{
		ConfigFile: cfg,
		Cache:      content.CachingOptions{CacheDirectory: filepath.Join(stateDir, "writer-cache")},
		Client:     kopiarepo.ClientOptions{Hostname: "kopiademo", Username: "kopiademo"},
		OnFatalError: func(err error) {
			select {
			case fatal <- err:
			default:
			}
		},
	})
	if err != nil {
		return fmt.Errorf("kopiademo: %s: %w", st.DisplayName(), err)
	}
	defer rep.Close(ctx)

	tree := policy.BuildTree(nil, policy.DefaultPolicy)
	uploaded := map[string]*snapshot.Manifest{}

	err = kopiarepo.WriteSession(ctx, rep, kopiarepo.WriteSessionOptions{Purpose: "kopiademo"},
		func(ctx context.Context, w kopiarepo.RepositoryWriter) error {
			for _, b := range backups {
				if err := writeOne(ctx, w, tree, uploaded, b); err != nil {
					return err
				}
			}

			return nil
		})
	if err == nil {
		select {
		case err = <-fatal:
		default:
		}
	}

	if err != nil {
		return fmt.Errorf("kopiademo: write %s: %w", st.DisplayName(), err)
	}

	return nil
}

func writeOne(ctx context.Context, w kopiarepo.RepositoryWriter, tree *policy.Tree, uploaded map[string]*snapshot.Manifest, b Backup) error {
	si := snapshot.SourceInfo{UserName: b.Source.UserName, Host: b.Source.Host, Path: b.Source.Path}

	first, ok := uploaded[b.Dir]
	if !ok {
		dir, err := localfs.Directory(b.Dir)
		if err != nil {
			return fmt.Errorf("read %s: %w", b.Dir, err)
		}

		if first, err = upload.NewUploader(w).Upload(ctx, dir, tree, si); err != nil {
			return fmt.Errorf("upload %s: %w", si, err)
		}

		uploaded[b.Dir] = first
	}

	man := first.Clone()
	man.ID, man.Source = "", si

	switch {
	case !b.Time.IsZero():
		man.StartTime = fs.UTCTimestamp(b.Time.UnixNano())
		man.EndTime = man.StartTime.Add(time.Minute)
	case ok: // a later backup of the same directory happens now
		man.StartTime = fs.UTCTimestamp(time.Now().UnixNano())
		man.EndTime = man.StartTime
	}

	if b.Incomplete {
		man.IncompleteReason = "checkpoint"
	}

	if _, err := snapshot.SaveSnapshot(ctx, w, man); err != nil {
		return fmt.Errorf("save snapshot of %s: %w", si, err)
	}

	return nil
}
