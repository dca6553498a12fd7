package cache

import (
	"context"

	"github.com/backup-oracle/backup-oracle/repo"
)

// Loader builds a complete index of one backup backend. It is what the cache needs from a
// backend adapter (repo/kopia, repo/restic).
//
// Load is called from one goroutine at a time, periodically; it must honour ctx (the refresh
// timeout) and return an error wrapping repo.ErrUnavailable when the backend cannot be read.
// It must never return a partial index without an error: the cache treats a returned index as
// complete and may answer "fresh" from it.
type Loader interface {
	Load(ctx context.Context) (repo.Index, error)
}
