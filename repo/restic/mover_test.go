package restic_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness"
	"github.com/backup-oracle/backup-oracle/repo"
	"github.com/backup-oracle/backup-oracle/repo/restic"
)

// TestOnlySnapshotsTheMoverRestores: with the password, a PVC's repository answers with, counts
// and dates only the snapshots VolSync's restic mover would restore. The expectations restate
// the mover's rule (backube/volsync v0.16.0 mover-restic/entry.sh, select_restic_snapshot_to_restore:
// the rows of `restic snapshots` that contain "/data"; `restic restore <id> --host volsync`
// ignores the host for an explicit id), independently of the code: a snapshot of a directory
// whose path has no "/data" is skipped whatever its host; one of such a directory with a tag
// containing "/data" (restic prints all tags on the snapshot's row), or of a ".../data"
// directory under another host, is restored; a second path with "/data" (a row of its own,
// misread as an id) makes the repository unknown.
func TestOnlySnapshotsTheMoverRestores(t *testing.T) {
	st := dirStorage(t)
	cli := harness.NewResticCLI(t, nil) // Backup: host volsync, a path ending in /data, as the mover's

	foreign := filepath.Join(t.TempDir(), "srv", "app")
	require.NoError(t, os.MkdirAll(foreign, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(foreign, "f"), []byte("not the mover's"), 0o600))

	var (
		moverOnly    = pvc("movers", "mover-only")
		foreignOnly  = pvc("movers", "foreign-only")
		foreignLater = pvc("movers", "foreign-later")
		otherHost    = pvc("movers", "other-host")
		dataTag      = pvc("movers", "data-tag")
		secondTag    = pvc("movers", "second-tag")
		twoPaths     = pvc("movers", "two-paths")
	)

	for _, p := range []repo.PVC{moverOnly, foreignOnly, foreignLater, otherHost, dataTag, secondTag, twoPaths} {
		cli.Init(st.url(rel(p)), password, "2")
	}

	cli.Backup(st.url(rel(moverOnly)), password)
	cli.BackupFrom(st.url(rel(foreignOnly)), password, foreign, "laptop")
	cli.BackupFrom(st.url(rel(foreignOnly)), password, foreign, "volsync") // the mover's host, another path
	cli.Backup(st.url(rel(foreignLater)), password)
	cli.BackupFrom(st.url(rel(foreignLater)), password, foreign, "laptop") // newer, skipped
	cli.BackupFrom(st.url(rel(otherHost)), password, cli.Src, "laptop")
	cli.BackupFrom(st.url(rel(dataTag)), password, foreign, "laptop", "movers/database")
	cli.BackupFrom(st.url(rel(secondTag)), password, foreign, "laptop", "first", "movers/database") // restic prints the tags on one row
	// Two paths, the second with /data: restic prints it on a row of its own, which the mover
	// keeps and misreads as a snapshot id.
	cli.Run(password, "-r", st.url(rel(twoPaths)), "backup", "--host", "laptop", foreign, cli.Src)

	opts := st.options()
	opts.Prefix, opts.Password, opts.VerifyWait = prefix, password, time.Minute
	r := newRepo(t, opts)

	idx, err := r.Load(context.Background())
	require.NoError(t, err)

	stats := idx.Stats()
	assert.Equal(t, 5, stats.Sources, "foreign-only and two-paths hold no snapshot the mover restores")
	assert.Equal(t, 5, stats.Snapshots, "the foreign snapshots are not counted")
	assert.Equal(t, 4, stats.Unrestorable, "but counted apart: foreign-only's two, foreign-later's newer one, two-paths' one")
	assert.Equal(t, int64(7*restic.BytesPerRepository+5*restic.BytesPerSnapshot), stats.Bytes,
		"the memory estimate: each repository read, and each snapshot counted")

	// What each PVC's lookup finds: from the fleet listing, and (the default settings) from the
	// lookup's own listing of its repository, which a fleet refresh interval turns on.
	finds := func(t *testing.T, idx repo.Index) {
		t.Helper()

		for _, c := range []struct {
			pvc   repo.PVC
			hosts []string // of the snapshots found, oldest first
		}{
			{moverOnly, []string{"volsync"}},
			{foreignLater, []string{"volsync"}},
			{otherHost, []string{"laptop"}},
			{dataTag, []string{"laptop"}},
			{secondTag, []string{"laptop"}},
		} {
			f, err := idx.Find(context.Background(), c.pvc)
			require.NoError(t, err, c.pvc)

			var hosts []string
			for _, s := range f.Snapshots {
				hosts = append(hosts, s.Host)
			}

			assert.Equal(t, c.hosts, hosts, "%s: only the snapshots the mover restores", c.pvc)
		}

		_, err := idx.Find(context.Background(), foreignOnly)
		require.ErrorIs(t, err, repo.ErrNotSelected, "snapshots exist, the mover would restore none: neither restore nor fresh")
		assert.Contains(t, err.Error(), "holds 2 snapshot(s), none of which VolSync's restic mover would restore")

		_, misread := idx.Find(context.Background(), twoPaths)
		require.ErrorIs(t, misread, repo.ErrNotSelected, "a snapshot the mover would misread: no answer can say what it restores")
		assert.Contains(t, misread.Error(), "with several paths of which a later one contains")
	}

	finds(t, idx)

	// Nearby (for operators): the namespace's other repositories holding snapshots, the mover's
	// or not.
	nearby := idx.Nearby(moverOnly)
	assert.Len(t, nearby, 6)
	assert.Contains(t, nearby, st.source(rel(foreignOnly)))
	assert.NotContains(t, nearby, st.source(rel(moverOnly)), "not its own")
	assert.Empty(t, idx.Nearby(pvc("elsewhere", "app")), "another namespace's are not nearby")

	t.Run("lookups confirm their PVC", func(t *testing.T) {
		opts := opts
		opts.FleetRefreshInterval, opts.LookupWait = 10*time.Minute, time.Minute

		idx, err := newRepo(t, opts).Load(context.Background())
		require.NoError(t, err)
		finds(t, idx)
	})

	_, err = idx.Find(context.Background(), foreignOnly)
	a := repo.Decide(foreignOnly, "restic", repo.Finding{}, time.Now(), err)
	assert.Equal(t, repo.Unknown, a.Decision)

	// Dated and selected among the mover's snapshots only: the newer foreign snapshot is not
	// "latest", and "previous 1" finds nothing (the mover would restore nothing).
	f, err := idx.Find(context.Background(), foreignLater)
	require.NoError(t, err)

	latest := repo.DecideAt(foreignLater, "restic", f, repo.PointInTime{}, time.Now(), nil)
	require.Equal(t, repo.Restore, latest.Decision)
	require.NotNil(t, latest.Selected)
	assert.Equal(t, "volsync", latest.Selected.Host, "latest is the mover's snapshot, not the newer foreign one")

	previous := repo.DecideAt(foreignLater, "restic", f, repo.PointInTime{Previous: 1}, time.Now(), nil)
	assert.Equal(t, repo.Unknown, previous.Decision, "previous 1 skips the only snapshot the mover would consider")
	assert.ErrorIs(t, previous.Reason, repo.ErrNotSelected)

	asOf := repo.DecideAt(foreignLater, "restic", f, repo.PointInTime{AsOf: f.Snapshots[0].StartTime.Add(-time.Hour)}, time.Now(), nil)
	assert.Equal(t, repo.Unknown, asOf.Decision, "nothing of the mover's at or before an hour earlier")

	stored := idx.Stored()
	for _, s := range stored {
		if s.PVC == foreignOnly {
			require.ErrorIs(t, s.Err, repo.ErrNotSelected, "the inventory says why foreign-only is no backup")
		}
	}
}
