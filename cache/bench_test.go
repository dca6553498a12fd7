package cache_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/cache"
	"github.com/backup-oracle/backup-oracle/repo"
)

// BenchmarkLookup measures the admission hot path: a memoised answer, and a miss computed from
// the index (first lookup of a PVC after a refresh).
func BenchmarkLookup(b *testing.B) {
	idx := &fakeIndex{snaps: map[string]int{}}
	for i := range 2000 {
		idx.snaps[fmt.Sprintf("pvc-%d", i)] = 3
	}

	c, err := cache.New(cache.Options{Backend: "bench", Loader: &fakeLoader{load: func(context.Context) (repo.Index, error) { return idx, nil }}})
	require.NoError(b, err)
	require.NoError(b, c.Refresh(context.Background()))

	b.Run("memoised", func(b *testing.B) {
		pvc := repo.PVC{Namespace: "web", Name: "pvc-7"}
		for b.Loop() {
			if c.Lookup(context.Background(), pvc).Decision != repo.Restore {
				b.Fatal("want restore")
			}
		}
	})

	b.Run("computed", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			// Distinct PVCs beyond the memo's reach of this loop: each is computed.
			c.Lookup(context.Background(), repo.PVC{Namespace: fmt.Sprintf("ns-%d", i), Name: "x"})
		}
	})
}
