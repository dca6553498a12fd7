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

	"github.com/kopia/kopia/fs/localfs"
	kopiarepo "github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/blob/filesystem"
	"github.com/kopia/kopia/snapshot"
	"github.com/kopia/kopia/snapshot/policy"
	"github.com/kopia/kopia/snapshot/upload"

	"github.com/backup-oracle/backup-oracle/repo"
)

// Backup is one snapshot to write: the directory dir uploaded as source.
type Backup struct {
	Source repo.KopiaSource
	Dir    string
	// Incomplete marks the snapshot as a checkpoint of an interrupted backup.
	Incomplete bool
}

// Write creates a filesystem repository at path (or opens the one already there) and writes
// one snapshot per backup, in one write session. stateDir receives the writer's config file.
func Write(ctx context.Context, path, password, stateDir string, backups []Backup) error {
	st, err := filesystem.New(ctx, &filesystem.Options{Path: path}, true)
	if err != nil {
		return fmt.Errorf("kopiademo: storage %s: %w", path, err)
	}

	if err := kopiarepo.Initialize(ctx, st, &kopiarepo.NewRepositoryOptions{}, password); err != nil && !errors.Is(err, kopiarepo.ErrAlreadyInitialized) {
		return fmt.Errorf("kopiademo: initialize %s: %w", path, err)
	}

	cfg := filepath.Join(stateDir, "writer.config")
	_ = os.Remove(cfg)

	if err := kopiarepo.Connect(ctx, cfg, st, password, &kopiarepo.ConnectOptions{
		ClientOptions: kopiarepo.ClientOptions{Hostname: "kopiademo", Username: "kopiademo"},
	}); err != nil {
		return fmt.Errorf("kopiademo: connect %s: %w", path, err)
	}
	defer os.Remove(cfg)

	rep, err := kopiarepo.Open(ctx, cfg, password, &kopiarepo.Options{
		DisableRepositoryLog: true,
		OnFatalError:         func(error) {},
	})
	if err != nil {
		return fmt.Errorf("kopiademo: open %s: %w", path, err)
	}
	defer rep.Close(ctx)

	tree := policy.BuildTree(nil, policy.DefaultPolicy)

	err = kopiarepo.WriteSession(ctx, rep, kopiarepo.WriteSessionOptions{Purpose: "kopiademo"},
		func(ctx context.Context, w kopiarepo.RepositoryWriter) error {
			for _, b := range backups {
				if err := writeOne(ctx, w, tree, b); err != nil {
					return err
				}
			}

			return nil
		})
	if err != nil {
		return fmt.Errorf("kopiademo: write %s: %w", path, err)
	}

	return nil
}

func writeOne(ctx context.Context, w kopiarepo.RepositoryWriter, tree *policy.Tree, b Backup) error {
	dir, err := localfs.Directory(b.Dir)
	if err != nil {
		return fmt.Errorf("read %s: %w", b.Dir, err)
	}

	si := snapshot.SourceInfo{UserName: b.Source.UserName, Host: b.Source.Host, Path: b.Source.Path}

	man, err := upload.NewUploader(w).Upload(ctx, dir, tree, si)
	if err != nil {
		return fmt.Errorf("upload %s: %w", si, err)
	}

	if b.Incomplete {
		man.IncompleteReason = "checkpoint"
	}

	if _, err := snapshot.SaveSnapshot(ctx, w, man); err != nil {
		return fmt.Errorf("save snapshot of %s: %w", si, err)
	}

	return nil
}
