package kopia_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/repo"
)

// TestFindSource: a source a PVC names, on a repository written with the kopia library: found
// with its complete snapshots when it is of the PVC's namespace and the fork can restore it;
// refused otherwise; absent is an empty finding (the group makes that unknown, never fresh).
func TestFindSource(t *testing.T) {
	incomplete := src("half", "media", "/data")
	incomplete.Incomplete = true

	f := newFixture(t)
	f.write(
		src("data-volsync", "media", "/data"),
		src("data-volsync", "media", "/data"),
		src("app", "media.cluster-a", "/pvc/app"),
		incomplete,
		src("other-volsync", "shop", "/data"),
		src("my.app", "media", "/srv"),
	)

	idx, err := newRepo(t, f.path, password).Load(context.Background())
	require.NoError(t, err)

	media := repo.PVC{Namespace: "media", Name: "data"}

	for _, tc := range []struct {
		source    string
		snapshots int
		err       error
	}{
		{"data-volsync@media:/data", 2, nil},
		{"app@media.cluster-a:/pvc/app", 1, nil},
		{"missing@media:/data", 0, nil},
		{"half@media:/data", 0, repo.ErrUnverifiable},
		{"other-volsync@shop:/data", 0, repo.ErrForeignSource},
		{"my.app@media:/srv", 0, repo.ErrNotRestorable},
	} {
		t.Run(tc.source, func(t *testing.T) {
			s, err := repo.ParseKopiaSource(tc.source)
			require.NoError(t, err)

			found, err := idx.FindSource(context.Background(), media, s)
			assert.Equal(t, tc.source, found.Source)
			assert.Len(t, found.Snapshots, tc.snapshots)

			if tc.err == nil {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, tc.err)
			}
		})
	}
}
