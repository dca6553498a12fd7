package restic_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness"

	"github.com/backup-oracle/backup-oracle/repo"
	"github.com/backup-oracle/backup-oracle/repo/restic"
)

// One repository shared by every PVC, each snapshot tagged "<namespace>/<pvc>".
func TestSharedRepository(t *testing.T) {
	st, _ := s3Storage(t)
	cli := harness.NewResticCLI(t, st.s3)

	const shared = "cluster/shared"

	cli.Init(st.url(shared), password, "2")
	cli.Backup(st.url(shared), password, "team-a/app")
	cli.Backup(st.url(shared), password, "team-a/app")
	cli.Backup(st.url(shared), password, "team-b/db", "daily")
	cli.Backup(st.url(shared), password, "web") // tagged with the bare PVC name

	opts := st.options()
	opts.Layout, opts.Prefix, opts.Password, opts.VerifyWait = restic.LayoutShared, shared, password, time.Minute

	idx, err := newRepo(t, opts).Load(context.Background())
	require.NoError(t, err)

	tests := []struct {
		pvc       repo.PVC
		snapshots int
	}{
		{pvc("team-a", "app"), 2},
		{pvc("team-b", "db"), 1},
		{pvc("team-b", "app"), 0},
		{pvc("team-c", "none"), 0},
	}

	for _, tt := range tests {
		t.Run(tt.pvc.String(), func(t *testing.T) {
			f, err := idx.Find(context.Background(), tt.pvc)
			require.NoError(t, err)
			assert.Equal(t, st.source(shared)+"#tag="+tt.pvc.String(), f.Source)
			assert.Len(t, f.Snapshots, tt.snapshots)
		})
	}

	stats := idx.Stats()
	assert.Equal(t, repo.IndexStats{Sources: 2, Snapshots: 4}, repo.IndexStats{Sources: stats.Sources, Snapshots: stats.Snapshots},
		"tags team-a/app and team-b/db (the bare tag names no PVC)")
	assert.Positive(t, stats.Bytes, "the index estimates its memory")

	var inventory []string
	for _, s := range idx.Stored() {
		inventory = append(inventory, fmt.Sprintf("%s %s %d", s.Source, s.PVC, s.Snapshots))
	}

	assert.Equal(t, []string{
		st.source(shared) + "#tag=team-a/app team-a/app 2",
		st.source(shared) + "#tag=team-b/db team-b/db 1",
	}, inventory, "one entry per PVC tag")

	// A snapshot tagged with the bare PVC name (a hand-made backup, or a tag template without the
	// namespace) may be any namespace's web: a near miss of each, never another PVC's.
	f, err := idx.Find(context.Background(), pvc("team-c", "web"))
	require.NoError(t, err)
	assert.Empty(t, f.Snapshots)

	near := idx.NearMisses(pvc("team-c", "web"))
	require.Len(t, near, 1)
	assert.Equal(t, st.source(shared)+"#tag=web", near[0].Source)
	assert.Equal(t, "snapshots tagged with the bare PVC name instead of team-c/web", near[0].Rule)
	assert.Equal(t, 1, near[0].Snapshots)
	assert.False(t, near[0].Latest.IsZero(), "dated by the snapshot")
	assert.Empty(t, idx.NearMisses(pvc("team-a", "app")), "no snapshot is tagged with the bare name app")
	assert.Empty(t, idx.NearMisses(pvc("team-c", "other")))

	// Nearby: the namespace's other tags, for operators.
	assert.Equal(t, []string{st.source(shared) + "#tag=team-a/app"}, idx.Nearby(pvc("team-a", "other")))
	assert.Equal(t, []string{st.source(shared) + "#tag=team-b/db"}, idx.Nearby(pvc("team-b", "app")))
	assert.Empty(t, idx.Nearby(pvc("team-a", "app")), "its own tag is not nearby")

	// A snapshot that cannot be verified could belong to any PVC: those without a verified
	// snapshot become unknown, those with one still have a backup.
	corrupt(t, st.fsPath(shared+"/snapshots"))

	idx, err = newRepo(t, opts).Load(context.Background())
	require.NoError(t, err)

	_, err = idx.Find(context.Background(), pvc("team-c", "none"))
	require.ErrorIs(t, err, repo.ErrUnverifiable)
}

func TestSharedLayoutNeedsPassword(t *testing.T) {
	_, err := restic.New(restic.Options{Dir: t.TempDir(), Layout: restic.LayoutShared})
	require.ErrorIs(t, err, repo.ErrInvalidConfig)
	assert.Contains(t, err.Error(), "password")
}
