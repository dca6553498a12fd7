package restic_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/repo"
	"github.com/backup-oracle/backup-oracle/repo/restic"
)

// TestFindSourceUnsupported: restic has no named sources; a PVC naming one is unknown (never
// fresh) with a reason that says what to do.
func TestFindSourceUnsupported(t *testing.T) {
	src := repo.KopiaSource{UserName: "data-volsync", Host: "media", Path: "/data"}

	f, err := (&restic.Index{}).FindSource(context.Background(), repo.PVC{Namespace: "media", Name: "data"}, src)
	require.ErrorIs(t, err, repo.ErrNamedSourceUnsupported)
	assert.Contains(t, err.Error(), "remove the annotation backup-oracle.io/restore-source from media/data")
	assert.Equal(t, "data-volsync@media:/data", f.Source)
	assert.Empty(t, f.Snapshots)
}
