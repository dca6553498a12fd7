package restic

import (
	"context"
	"io/fs"
	"sync/atomic"
	"time"
)

// ErrObjectNotFound is wrapped by Storage.Get when the object does not exist.
var ErrObjectNotFound = fs.ErrNotExist

// maxObjectSize caps what Get reads: restic's config, key and snapshot files are kilobytes.
const maxObjectSize = 16 << 20

// Object is one stored file.
type Object struct {
	// Key is the full key (S3) or slash-separated path relative to the root (directory).
	Key     string
	Size    int64
	ModTime time.Time
}

// Listing is the content of one "directory": the objects directly in it and the names of its
// sub-directories, each ending with "/".
type Listing struct {
	Objects []Object
	Dirs    []string
}

// Storage is what this package needs from where repositories live (S3, a local or NFS directory).
// Implementations are safe for concurrent use and apply their own per-request timeout.
type Storage interface {
	// List returns the complete listing of dir ("" for the root, else a key prefix ending with
	// "/"), delimited by "/": it never recurses. A directory that does not exist lists as empty;
	// an error means the listing is incomplete and must not be used.
	List(ctx context.Context, dir string) (Listing, error)
	// Get returns an object's content, at most 16 MiB. A missing object returns an error wrapping
	// ErrObjectNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Location names key for humans, e.g. "s3:bucket/key" or "/mnt/restic/key". It holds no secret.
	Location(key string) string
}

// RequestCounts counts the requests a Repo sent to its storage since it was created.
type RequestCounts struct {
	Lists int64
	Gets  int64
}

// countingStorage counts requests, for the benchmark and for logs. Safe for concurrent use.
type countingStorage struct {
	Storage
	lists, gets atomic.Int64
}

func (c *countingStorage) List(ctx context.Context, dir string) (Listing, error) {
	c.lists.Add(1)
	return c.Storage.List(ctx, dir)
}

func (c *countingStorage) Get(ctx context.Context, key string) ([]byte, error) {
	c.gets.Add(1)
	return c.Storage.Get(ctx, key)
}

func (c *countingStorage) counts() RequestCounts {
	return RequestCounts{Lists: c.lists.Load(), Gets: c.gets.Load()}
}
