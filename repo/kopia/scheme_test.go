package kopia_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/repo"
	"github.com/backup-oracle/backup-oracle/repo/kopia"
	"github.com/backup-oracle/backup-oracle/repo/kopia/kopiademo"
)

func loadWith(t *testing.T, path string, id repo.KopiaIdentity, others string) repo.Index {
	t.Helper()

	declared, err := repo.ParseSchemes(others)
	require.NoError(t, err)

	r, err := kopia.New(kopia.Options{Storage: kopia.Filesystem{Path: path}, Password: password, StateDir: t.TempDir(), Identity: id, OtherSchemes: declared})
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close(context.Background()) })

	idx, err := r.Load(context.Background())
	require.NoError(t, err)

	return idx
}

// volsyncLayout is the predecessor's layout: RS and RD named "<pvc>-volsync".
func volsyncLayout() []kopiademo.Backup {
	return []kopiademo.Backup{
		src("data-volsync", "media", "/data"), src("jellyfin-config-volsync", "media", "/data"),
		src("sonarr-volsync", "media", "/data"), src("radarr-volsync", "media", "/data"),
	}
}

func nearSources(ns []repo.NearMiss) []string {
	out := []string{}
	for _, n := range ns {
		out = append(out, n.Source)
	}

	return out
}

// TestNearMissesByRule: the rows on repositories written with the kopia library; the
// expected sources are hand-written.
func TestNearMissesByRule(t *testing.T) {
	byPVC := repo.KopiaIdentity{SourceName: "{pvc}", Path: "/data"}

	t.Run("{pvc} template over a <pvc>-volsync repository: data may be data-volsync's", func(t *testing.T) {
		f := newFixture(t)
		f.write(volsyncLayout()...)
		idx := loadWith(t, f.path, byPVC, "")

		near := idx.NearMisses(repo.PVC{Namespace: "media", Name: "data"})
		require.Equal(t, []string{"data-volsync@media:/data"}, nearSources(near), "the settings map it to PVC data-volsync, but every source carries -volsync")
		assert.Contains(t, near[0].Rule, "KOPIA_SOURCE_NAME_TEMPLATE={pvc}-volsync")

		fd, err := idx.Find(context.Background(), repo.PVC{Namespace: "media", Name: "data-volsync"})
		require.NoError(t, err)
		assert.Len(t, fd.Snapshots, 1, "PVC data-volsync's own identity still restores")

		lf := idx.Stats().Layout
		assert.Equal(t, repo.LayoutFit{Considered: 4, Expected: 0, Others: []repo.SchemeCount{{Scheme: "{pvc}-volsync", Sources: 4,
			Examples: []string{"data-volsync@media:/data", "jellyfin-config-volsync@media:/data", "radarr-volsync@media:/data"}}}}, lf, "the three smallest sources as examples")
		assert.Contains(t, lf.Warning(), "KOPIA_SOURCE_NAME_TEMPLATE={pvc}-volsync")
	})

	t.Run("default template, the same repository and one stray fitting source", func(t *testing.T) {
		f := newFixture(t)
		f.write(append(volsyncLayout(), src("paperless-backup", "documents", "/data"))...)
		idx := loadWith(t, f.path, identity, "")

		assert.Equal(t, []string{"jellyfin-config-volsync@media:/data"}, nearSources(idx.NearMisses(repo.PVC{Namespace: "media", Name: "jellyfin-config"})))
		assert.Equal(t, 1, idx.Stats().Fitting)
		assert.Equal(t, repo.LayoutFit{Considered: 5, Expected: 1, Others: []repo.SchemeCount{{Scheme: "{pvc}-volsync", Sources: 4,
			Examples: []string{"data-volsync@media:/data", "jellyfin-config-volsync@media:/data", "radarr-volsync@media:/data"}}}}, idx.Stats().Layout)
		assert.True(t, idx.Stats().Layout.Minority())
		assert.Empty(t, idx.NearMisses(repo.PVC{Namespace: "media", Name: "jellyfin"}), "a prefix of a PVC name is not its name")
		assert.Empty(t, idx.NearMisses(repo.PVC{Namespace: "documents", Name: "data"}), "another namespace's source is never a near miss")
	})

	t.Run("declared on purpose: no minority, still near misses", func(t *testing.T) {
		f := newFixture(t)
		f.write(append(volsyncLayout(), src("paperless-backup", "documents", "/data"))...)
		idx := loadWith(t, f.path, identity, "{pvc}-volsync")

		assert.Equal(t, repo.LayoutFit{Considered: 5, Expected: 5}, idx.Stats().Layout)
		assert.Equal(t, []string{"data-volsync@media:/data"}, nearSources(idx.NearMisses(repo.PVC{Namespace: "media", Name: "data"})))
	})

	t.Run("a PVC named data among <app>@<ns>:/data sources", func(t *testing.T) {
		f := newFixture(t)
		f.write(src("redis", "shop", "/data"), src("postgres", "shop", "/data"), src("web", "shop", "/data"))

		for name, id := range map[string]repo.KopiaIdentity{"{pvc}": byPVC, "default": identity} {
			idx := loadWith(t, f.path, id, "")
			assert.Empty(t, idx.NearMisses(repo.PVC{Namespace: "shop", Name: "data"}), "%s: the movers' default path is not a name", name)
		}

		idx := loadWith(t, f.path, identity, "")
		assert.Equal(t, []string{"redis@shop:/data"}, nearSources(idx.NearMisses(repo.PVC{Namespace: "shop", Name: "redis"})), "the ${APP} layout under the default settings")
	})

	t.Run("an unlisted suffix and prefix ruling their namespaces", func(t *testing.T) {
		f := newFixture(t)
		f.write(src("app-backup", "web", "/data"), src("db-bk", "legacy", "/data"), src("cache-bk", "legacy", "/data"), src("files-bk", "legacy", "/data"),
			src("snap-a", "snaps", "/data"), src("snap-b", "snaps", "/data"), src("snap-c", "snaps", "/data"))
		idx := loadWith(t, f.path, identity, "")

		assert.Equal(t, []string{"db-bk@legacy:/data"}, nearSources(idx.NearMisses(repo.PVC{Namespace: "legacy", Name: "db"})))
		assert.Equal(t, []string{"snap-a@snaps:/data"}, nearSources(idx.NearMisses(repo.PVC{Namespace: "snaps", Name: "a"})))
		assert.Empty(t, idx.NearMisses(repo.PVC{Namespace: "legacy", Name: "db-bk-0"}))
	})
	t.Run("the schemes the other sources follow: most sources first", func(t *testing.T) {
		f := newFixture(t)
		f.write(append(volsyncLayout(), src("db-bk", "legacy", "/data"), src("cache-bk", "legacy", "/data"), src("files-bk", "legacy", "/data"),
			src("app", "web", "/srv/app"), src("app", "web", "/srv/db"))...)

		want := repo.LayoutFit{Considered: 9, Others: []repo.SchemeCount{
			{Scheme: "{pvc}-volsync", Sources: 4, Examples: []string{"data-volsync@media:/data", "jellyfin-config-volsync@media:/data", "radarr-volsync@media:/data"}},
			{Scheme: "{pvc}-bk", Sources: 3, Examples: []string{"cache-bk@legacy:/data", "db-bk@legacy:/data", "files-bk@legacy:/data"}},
			{Scheme: "path /srv/app", Sources: 1, Examples: []string{"app@web:/srv/app"}},
			{Scheme: "path /srv/db", Sources: 1, Examples: []string{"app@web:/srv/db"}},
		}}

		for range 3 { // the schemes are counted in a map: each load iterates it in another order
			assert.Equal(t, want, loadWith(t, f.path, identity, "").Stats().Layout, "by count, then by name")
		}
	})
}
