package restic

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// dirStorage reads repositories from a local or NFS-mounted directory. Safe for concurrent use.
// File system calls cannot be cancelled: ctx is checked before each call only.
type dirStorage struct {
	root string
}

// NewDirStorage returns a Storage rooted at dir. The directory must exist when listed: a missing
// root is an error (an unmounted share must not read as "no repositories").
func NewDirStorage(dir string) Storage {
	return &dirStorage{root: filepath.Clean(dir)}
}

func (d *dirStorage) path(key string) (string, error) {
	key = strings.TrimSuffix(key, "/")
	if key == "" {
		return d.root, nil
	}

	if !fs.ValidPath(key) {
		return "", fmt.Errorf("invalid key %q", key)
	}

	return filepath.Join(d.root, filepath.FromSlash(key)), nil
}

// List implements Storage.
func (d *dirStorage) List(ctx context.Context, dir string) (Listing, error) {
	if err := ctx.Err(); err != nil {
		return Listing{}, err
	}

	p, err := d.path(dir)
	if err != nil {
		return Listing{}, err
	}

	entries, err := os.ReadDir(p)
	if errors.Is(err, fs.ErrNotExist) && dir != "" {
		if _, rootErr := os.Stat(d.root); rootErr != nil {
			return Listing{}, rootErr
		}

		return Listing{}, nil
	}

	if err != nil {
		return Listing{}, err
	}

	var l Listing

	for _, e := range entries {
		switch {
		case e.IsDir():
			l.Dirs = append(l.Dirs, dir+e.Name()+"/")
		case e.Type().IsRegular():
			info, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed since ReadDir (e.g. a lock file)
			}

			if err != nil {
				return Listing{}, err
			}

			l.Objects = append(l.Objects, Object{Key: dir + e.Name(), Size: info.Size(), ModTime: info.ModTime()})
		}
	}

	return l, nil
}

// Get implements Storage.
func (d *dirStorage) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	p, err := d.path(key)
	if err != nil {
		return nil, err
	}

	f, err := os.Open(p)
	if err != nil {
		return nil, err // *fs.PathError wrapping fs.ErrNotExist on a miss
	}
	defer f.Close()

	return readLimited(f)
}

// Location implements Storage.
func (d *dirStorage) Location(key string) string {
	return filepath.ToSlash(filepath.Join(d.root, filepath.FromSlash(key)))
}

func readLimited(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxObjectSize+1))
	if err != nil {
		return nil, err
	}

	if len(b) > maxObjectSize {
		return nil, fmt.Errorf("object larger than %d bytes", maxObjectSize)
	}

	return b, nil
}
