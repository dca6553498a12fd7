package kopia

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kopia/kopia/repo/blob"
	"github.com/kopia/kopia/repo/blob/filesystem"
	"github.com/kopia/kopia/repo/format"
)

// Filesystem is a repository in a local or NFS-mounted directory.
type Filesystem struct {
	Path string
}

// String names the storage.
func (f Filesystem) String() string { return "filesystem:" + f.Path }

// ReadFormat reads the repository's format blob with plain file I/O, so a missing directory, a
// permission problem or an uninitialised directory fails at once instead of after kopia's
// retries.
func (f Filesystem) ReadFormat(_ context.Context) ([]byte, error) {
	if f.Path == "" {
		return nil, errors.New("repository path is empty")
	}

	info, err := os.Stat(f.Path)
	if err != nil {
		return nil, fmt.Errorf("stat repository directory: %w", err)
	}

	if !info.IsDir() {
		return nil, fmt.Errorf("repository path %s is not a directory", f.Path)
	}

	b, err := os.ReadFile(filepath.Join(f.Path, format.KopiaRepositoryBlobID+".f"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no kopia repository in %s (missing %s.f)", f.Path, format.KopiaRepositoryBlobID)
		}

		return nil, fmt.Errorf("read repository format blob: %w", err)
	}

	return b, nil
}

// Close implements Storage; a directory holds nothing open.
func (f Filesystem) Close(context.Context) error { return nil }

// Open returns kopia's filesystem storage for the directory.
func (f Filesystem) Open(ctx context.Context) (blob.Storage, error) {
	st, err := filesystem.New(ctx, &filesystem.Options{Path: f.Path}, false)
	if err != nil {
		return nil, fmt.Errorf("open filesystem storage %s: %w", f.Path, err)
	}

	return st, nil
}
