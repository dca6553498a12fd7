package kopia_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/repo"
	"github.com/backup-oracle/backup-oracle/repo/kopia"
	"github.com/backup-oracle/backup-oracle/repo/kopia/kopiademo"
)

func src(user, host, path string) kopiademo.Backup {
	return kopiademo.Backup{Source: repo.KopiaSource{UserName: user, Host: host, Path: path}}
}

// TestNearMisses: the sources that probably hold a PVC's data under another identity, on a
// repository written with the kopia library. Expected sources are hand-written strings.
func TestNearMisses(t *testing.T) {
	const replica = "prometheus-kube-prometheus-stack-prometheus-db-prometheus-kube-prometheus-stack-prometheus-"

	f := newFixture(t)
	f.write(
		backupOf(plain), // web/app's own backup: app-backup@web:/data
		src("redis-backup", "shop", "/var/lib/redis"), // sourcePathOverride the oracle was not told of
		src("redis-backup", "staging", "/data"),       // the same PVC name in another namespace
		src("gitea", "dev", "/data"),                  // RS named after the app, RD "-dst"
		src("gitea-dst", "dev", "/data"),
		src("daily", "media.cluster-b", "/pvc/jellyfin"),                                 // kopiur: <policy>@<namespace>.<cluster>:/pvc/<pvc>
		src("prometheus-kube-prometheus-stack-prometheus-db-pro", "monitoring", "/data"), // cut, shared username
		src("other-backup", "web", "/data"),                                              // another PVC of the namespace: never a near miss
		src("app-restore", "other", "/data"),                                             // other namespace
	)

	idx, err := newRepo(t, f.path, password).Load(context.Background())
	require.NoError(t, err)

	sources := func(ns []repo.NearMiss) []string {
		out := []string{}
		for _, n := range ns {
			out = append(out, n.Source+" | "+n.Rule)
		}

		return out
	}

	cases := []struct {
		pvc  repo.PVC
		want []string
	}{
		{repo.PVC{Namespace: "shop", Name: "redis"}, []string{"redis-backup@shop:/var/lib/redis | same username and hostname, another path"}},
		{repo.PVC{Namespace: "web", Name: "redis"}, []string{}},
		{repo.PVC{Namespace: "dev", Name: "gitea"}, []string{
			"gitea-dst@dev:/data | the PVC's name under the scheme {pvc}-dst (a known naming scheme; KOPIA_SOURCE_NAME_TEMPLATE={pvc}-dst would look it up)",
			"gitea@dev:/data | the PVC's name under the scheme {pvc} (a known naming scheme; KOPIA_SOURCE_NAME_TEMPLATE={pvc} would look it up)",
		}},
		{repo.PVC{Namespace: "media", Name: "jellyfin"}, []string{"daily@media.cluster-b:/pvc/jellyfin | a path naming the PVC (its directory holds one PVC per path)"}},
		{repo.PVC{Namespace: "monitoring", Name: replica + "0"}, []string{
			"prometheus-kube-prometheus-stack-prometheus-db-pro@monitoring:/data | the username the mover derives by itself, cut at 50 characters and possibly shared with another PVC",
		}},
		{repo.PVC{Namespace: "monitoring", Name: replica + "1"}, []string{
			"prometheus-kube-prometheus-stack-prometheus-db-pro@monitoring:/data | the username the mover derives by itself, cut at 50 characters and possibly shared with another PVC",
		}},
		{repo.PVC{Namespace: "web", Name: "new"}, []string{}},
		{repo.PVC{Namespace: "dev", Name: "gitea-data"}, []string{}},
	}

	for _, tc := range cases {
		t.Run(tc.pvc.String(), func(t *testing.T) {
			fd, err := idx.Find(context.Background(), tc.pvc)
			require.NoError(t, err)
			assert.Empty(t, fd.Snapshots)
			assert.Equal(t, tc.want, sources(idx.NearMisses(tc.pvc)))
		})
	}

	n := idx.NearMisses(repo.PVC{Namespace: "shop", Name: "redis"})[0]
	assert.Equal(t, 1, n.Snapshots)
	assert.False(t, n.Latest.IsZero())
}

// TestNearMissesRespectOtherPVCsIdentity: with the ${APP} layout (RS named after the PVC), a
// source that is another PVC's own identity is not a near miss.
func TestNearMissesRespectOtherPVCsIdentity(t *testing.T) {
	f := newFixture(t)
	f.write(src("app-backup", "web", "/data"), src("app-dst", "web", "/data"))

	r, err := kopia.New(kopia.Options{Storage: kopia.Filesystem{Path: f.path}, Password: password, StateDir: t.TempDir(),
		Identity: repo.KopiaIdentity{SourceName: "{pvc}", Path: "/data"}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close(context.Background()) })

	idx, err := r.Load(context.Background())
	require.NoError(t, err)

	near := idx.NearMisses(repo.PVC{Namespace: "web", Name: "app"})
	assert.Empty(t, near, "app-backup and app-dst are the own identities of PVCs app-backup and app-dst under this template")
}

func repositoryID(t *testing.T, path string) string {
	t.Helper()

	raw, err := os.ReadFile(filepath.Join(path, "kopia.repository.f"))
	require.NoError(t, err)

	// The format blob's uniqueID, read with encoding/json, not with the adapter (JSON encodes
	// []byte as base64).
	var blob struct {
		UniqueID []byte `json:"uniqueID"`
	}
	require.NoError(t, json.Unmarshal(raw, &blob))
	require.Len(t, blob.UniqueID, 32)
	b := blob.UniqueID

	return hex.EncodeToString(b)
}

func TestRepositoryPin(t *testing.T) {
	f := newFixture(t)
	f.write(backupOf(plain))
	id := repositoryID(t, f.path)

	load := func(pin string) error {
		r, err := kopia.New(kopia.Options{Storage: kopia.Filesystem{Path: f.path}, Password: password, StateDir: t.TempDir(),
			Identity: identity, RepositoryID: pin})
		require.NoError(t, err)
		t.Cleanup(func() { _ = r.Close(context.Background()) })

		idx, err := r.Load(context.Background())
		if err == nil {
			assert.Equal(t, id, idx.Stats().RepositoryID, "the index names its repository")
		}

		return err
	}

	require.NoError(t, load(""), "unpinned")
	require.NoError(t, load(id), "pinned right")
	require.NoError(t, load(strings.ToUpper(id)), "hex in any case")

	err := load(strings.Repeat("ab", 32))
	require.ErrorIs(t, err, repo.ErrRepositoryMismatch)
	require.ErrorIs(t, err, repo.ErrUnavailable, "a mismatch is an unavailable backend: not ready, every answer unknown")
	assert.Contains(t, err.Error(), id)
	assert.Contains(t, err.Error(), strings.Repeat("ab", 32))
}

// TestRepositoryRecreated: a repository wiped and re-created at the same path (with a snapshot
// of another PVC, so the empty-index guard does not catch it) is refused until pinned or the
// process restarts, pinned or not.
func TestRepositoryRecreated(t *testing.T) {
	f := newFixture(t)
	f.write(backupOf(plain))
	first := repositoryID(t, f.path)

	unpinned := newRepo(t, f.path, password)
	_, err := unpinned.Load(context.Background())
	require.NoError(t, err)

	pinned, err := kopia.New(kopia.Options{Storage: kopia.Filesystem{Path: f.path}, Password: password, StateDir: t.TempDir(),
		Identity: identity, RepositoryID: first})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pinned.Close(context.Background()) })
	_, err = pinned.Load(context.Background())
	require.NoError(t, err)

	require.NoError(t, os.RemoveAll(f.path))
	f.write(backupOf(dotted))
	second := repositoryID(t, f.path)
	require.NotEqual(t, first, second)

	for name, r := range map[string]*kopia.Repo{"unpinned": unpinned, "pinned": pinned} {
		_, err := r.Load(context.Background())
		require.ErrorIs(t, err, repo.ErrRepositoryMismatch, name)
		assert.Contains(t, err.Error(), second, name)
		assert.Contains(t, err.Error(), "KOPIA_REPOSITORY_ID", name)
	}

	idx, err := newRepo(t, f.path, password).Load(context.Background())
	require.NoError(t, err, "a new process adopts the repository it finds (and logs how to pin it)")
	assert.Equal(t, second, idx.Stats().RepositoryID)
}

func TestRepositoryIDValidation(t *testing.T) {
	cfg, ok := kopia.FSKind().New().(*kopia.FSConfig)
	require.True(t, ok)

	cfg.Kopia.RepositoryPath, cfg.Kopia.Password, cfg.Kopia.RepositoryID = "/r", "pw", "not-hex"
	err := cfg.Validate()
	require.ErrorIs(t, err, repo.ErrInvalidConfig)
	assert.Contains(t, err.Error(), `KOPIA_REPOSITORY_ID "not-hex": want the 64 hex digits`)

	cfg.Kopia.RepositoryID = strings.Repeat("0f", 32)
	require.NoError(t, cfg.Validate())
	assert.Contains(t, cfg.Describe(), "repository pinned to "+strings.Repeat("0f", 32))
}

// TestNearMissPrecision: on the benchmark's repository shape (100 namespaces × 20 PVCs, each
// under its default identity), no PVC reports a near miss: neither those with their own backup
// nor 8,000 look-alikes without one (other ordinals, prefixes and suffixes, the same names in
// namespaces without backups). The README quotes the figure.
func TestNearMissPrecision(t *testing.T) {
	const namespaces, perNS = 100, 20

	f := newFixture(t)

	var backups []kopiademo.Backup

	for n := range namespaces {
		for p := range perNS {
			backups = append(backups, backupOf(repo.PVC{Namespace: fmt.Sprintf("ns-%03d", n), Name: fmt.Sprintf("pvc-%02d.data", p)}))
		}
	}

	f.write(backups...)

	idx, err := newRepo(t, f.path, password).Load(context.Background())
	require.NoError(t, err)
	require.Equal(t, namespaces*perNS, idx.Stats().Sources)

	lookups, near := 0, 0

	check := func(pvc repo.PVC, wantSnapshots bool) {
		fd, err := idx.Find(context.Background(), pvc)
		require.NoError(t, err)
		require.Equal(t, wantSnapshots, len(fd.Snapshots) > 0, pvc.String())

		lookups++
		if n := idx.NearMisses(pvc); len(n) > 0 {
			near++
			t.Errorf("%s: unexpected near miss %v", pvc, n)
		}
	}

	for n := range namespaces {
		ns := fmt.Sprintf("ns-%03d", n)
		for p := range perNS {
			check(repo.PVC{Namespace: ns, Name: fmt.Sprintf("pvc-%02d.data", p)}, true)

			for _, lookalike := range []string{"pvc-%02d", "pvc-%02d.data-0", "data-pvc-%02d.data"} {
				check(repo.PVC{Namespace: ns, Name: fmt.Sprintf(lookalike, p)}, false)
			}

			check(repo.PVC{Namespace: fmt.Sprintf("new-%03d", n), Name: fmt.Sprintf("pvc-%02d.data", p)}, false)
		}
	}

	t.Logf("near-miss precision: %d near misses in %d lookups of the benchmark repository", near, lookups)
	assert.Equal(t, 10_000, lookups)
}
