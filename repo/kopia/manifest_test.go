package kopia_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/cache"
	"github.com/backup-oracle/backup-oracle/integration/harness"
	"github.com/backup-oracle/backup-oracle/integration/harness/kopiamover"
	"github.com/backup-oracle/backup-oracle/repo"
)

// The rule these tests guard (README "How a decision is made", step 3): a source whose snapshot
// manifest cannot be loaded is unknown, never fresh; and a manifest list that cannot be read is
// no index at all. See harness/kopiadamage.go for how kopia stores manifests and which damage
// produces which class.
const ruleUnloadable = "rule: a source whose snapshot manifest cannot be loaded is unknown, never fresh (README: How a decision is made, step 3)"

// cliWorld is a repository written by the real kopia CLI.
type cliWorld struct {
	cli  *harness.KopiaCLI
	data string
}

func newCLIWorld(t *testing.T) *cliWorld {
	t.Helper()

	w := &cliWorld{data: t.TempDir()}
	require.NoError(t, os.WriteFile(filepath.Join(w.data, "file"), []byte("payload"), 0o600))
	w.cli = harness.NewKopiaRepository(t, filepath.Join(t.TempDir(), "repo"), password)

	return w
}

func (w *cliWorld) backup(pvc repo.PVC) {
	w.cli.Snapshot(w.data, kopiamover.PolicySource(pvc.Namespace, pvc.Name))
}

// lookup answers for pvc through a cache over the adapter, as the service does.
func lookup(t *testing.T, c *cache.Cache, pvc repo.PVC) repo.Answer {
	t.Helper()

	return c.Lookup(context.Background(), pvc)
}

func newCache(t *testing.T, path string) *cache.Cache {
	t.Helper()

	c, err := cache.New(cache.Options{Backend: "kopia-fs", Loader: newRepo(t, path, password), RefreshTimeout: time.Minute})
	require.NoError(t, err)

	return c
}

func TestUndecodableManifestIsUnknown(t *testing.T) {
	w := newCLIWorld(t)
	broken := repo.PVC{Namespace: "web", Name: "broken"}

	w.backup(plain)
	w.backup(dotted)
	// broken has only a manifest that is listed but cannot be loaded; plain has one such
	// manifest next to its good snapshot.
	w.cli.AddUndecodableSnapshotManifest(kopiamover.PolicySource("web", "broken"))
	w.cli.AddUndecodableSnapshotManifest(kopiamover.PolicySource("web", "app"))

	c := newCache(t, w.cli.Path)

	for refresh := range 2 { // the second load must not remember the broken manifest as absent
		require.NoError(t, c.Refresh(context.Background()), "one unloadable manifest does not fail the whole index")
		require.NoError(t, c.Ready())

		for _, pvc := range []repo.PVC{broken, plain} {
			a := lookup(t, c, pvc)
			assert.Equal(t, repo.Unknown, a.Decision, "refresh %d, %s: %s", refresh, pvc, ruleUnloadable)
			require.ErrorIs(t, a.Reason, repo.ErrUnverifiable, "refresh %d, %s: %s", refresh, pvc, ruleUnloadable)
			assert.Contains(t, a.Reason.Error(), "decode snapshot manifest", "the reason names what failed")
			assert.Equal(t, kopiamover.PolicySource(pvc.Namespace, pvc.Name), a.Source)
		}

		assert.Equal(t, repo.Restore, lookup(t, c, dotted).Decision, "other sources are still answered")
		assert.Equal(t, repo.Fresh, lookup(t, c, missing).Decision, "and a source without any manifest is still fresh")
	}
}

func TestCorruptManifestBlobFailsTheLoad(t *testing.T) {
	w := newCLIWorld(t)
	w.backup(plain)
	w.cli.SnapshotWithCorruptManifest(w.data, kopiamover.PolicySource(dotted.Namespace, dotted.Name))

	for _, ignore := range []string{"", "1"} {
		t.Run("KOPIA_IGNORE_MALFORMED_MANIFEST_CONTENTS="+ignore, func(t *testing.T) {
			// Kopia reads this variable from the process environment: with it, kopia would skip the
			// corrupt content and dotted would look like a PVC without backup.
			t.Setenv("KOPIA_IGNORE_MALFORMED_MANIFEST_CONTENTS", ignore)

			c := newCache(t, w.cli.Path)
			err := c.Refresh(context.Background())
			require.ErrorIs(t, err, repo.ErrUnavailable, "a manifest list that cannot be read is no index: %s", ruleUnloadable)

			for _, pvc := range []repo.PVC{dotted, plain, missing} {
				a := lookup(t, c, pvc)
				assert.Equal(t, repo.Unknown, a.Decision, "%s: %s", pvc, ruleUnloadable)
			}

			assert.Error(t, c.Ready(), "not ready while the manifest list is unreadable")
		})
	}
}
