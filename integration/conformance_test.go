package integration

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/cache"
	"github.com/backup-oracle/backup-oracle/integration/harness"
	"github.com/backup-oracle/backup-oracle/integration/harness/kopiamover"
	"github.com/backup-oracle/backup-oracle/repo"
	"github.com/backup-oracle/backup-oracle/repo/all"
)

// backendUnderTest is one adapter on a real repository, with the means to write to it and to
// take its storage away.
type backendUnderTest struct {
	// kind is the registry kind under test; settings configure it by flag name, as the
	// environment would, and loader is what the registry's constructor returned for them.
	kind     string
	settings map[string]string
	loader   cache.Loader
	// backup records one snapshot of pvc with the backend's real CLI.
	backup func(pvc repo.PVC)
	// outage makes the storage unreachable; the returned function brings it back.
	outage func() (restore func())
}

type backendFactory func(t *testing.T) backendUnderTest

var (
	twoSnaps = repo.PVC{Namespace: "web", Name: "app"}
	dottedOK = repo.PVC{Namespace: "web", Name: "my.app.data"}
	noBackup = repo.PVC{Namespace: "web", Name: "absent"}
	later    = repo.PVC{Namespace: "db", Name: "later"}
)

// conformanceCases are the backends the conformance suite runs on, each built through the
// registry of backend kinds exactly as the program builds it.
func conformanceCases() map[string]backendFactory {
	return map[string]backendFactory{
		"kopia-fs":                   kopiaFS,
		"kopia-s3":                   kopiaS3,
		"restic-fs":                  func(t *testing.T) backendUnderTest { return resticBackend(t, false, "") },
		"restic-fs with password":    func(t *testing.T) backendUnderTest { return resticBackend(t, false, resticPassword) },
		"restic-s3 without password": func(t *testing.T) backendUnderTest { return resticBackend(t, true, "") },
		"restic-s3 with password":    func(t *testing.T) backendUnderTest { return resticBackend(t, true, resticPassword) },
	}
}

// TestConformanceCoversEveryKind: a kind added to the registry without a conformance case fails
// here.
func TestConformanceCoversEveryKind(t *testing.T) {
	covered := map[string]bool{}
	for name := range conformanceCases() {
		covered[strings.Fields(name)[0]] = true
	}

	for _, k := range all.Kinds() {
		assert.True(t, covered[k.Name], "kind %s has no conformance case", k.Name)
		delete(covered, k.Name)
	}

	assert.Empty(t, covered, "conformance cases for kinds the registry does not have")
}

// TestConformance runs the same contract over every backend kind of the registry, each built by
// its registry constructor from settings:
// a snapshot means restore, none means an authoritative empty finding, a new snapshot is seen
// after a refresh, and an unreachable storage is an error wrapping repo.ErrUnavailable from
// which the adapter recovers.
func TestConformance(t *testing.T) {
	for name, factory := range conformanceCases() {
		t.Run(name, func(t *testing.T) {
			b := factory(t)
			b.loader = openKind(t, b.kind, b.settings)
			b.backup(twoSnaps)
			b.backup(twoSnaps)
			b.backup(dottedOK)

			idx := load(t, b.loader)
			assert.GreaterOrEqual(t, idx.Stats().Sources, 2)
			assert.GreaterOrEqual(t, idx.Stats().Snapshots, 3)

			f := find(t, idx, twoSnaps)
			require.Len(t, f.Snapshots, 2, f.Source)
			assert.NotEmpty(t, f.Source)
			assert.False(t, f.Snapshots[1].StartTime.Before(f.Snapshots[0].StartTime), "oldest first")
			assert.NotEmpty(t, f.Latest().ID)
			assert.False(t, f.Latest().StartTime.IsZero())

			assert.Len(t, find(t, idx, dottedOK).Snapshots, 1, "dotted name")
			assert.Empty(t, find(t, idx, noBackup).Snapshots, "no backup: an authoritative empty finding")
			checkStored(t, idx, f)
			assert.Empty(t, find(t, idx, later).Snapshots)

			b.backup(later)
			assert.Len(t, find(t, load(t, b.loader), later).Snapshots, 1, "a new snapshot is seen after a refresh")

			restore := b.outage()
			_, err := b.loader.Load(context.Background())
			require.ErrorIs(t, err, repo.ErrUnavailable, "an unreachable storage is never an empty index")

			restore()
			assert.Len(t, find(t, load(t, b.loader), twoSnaps).Snapshots, 2, "recovers when the storage is back")
		})
	}
}

// checkStored: the inventory lists the sources holding snapshots, each PVC it maps back to
// restores from that very source, and twoSnaps' entry matches what Find says of it.
func checkStored(t *testing.T, idx repo.Index, twoSnapsFinding repo.Finding) {
	t.Helper()

	stored := idx.Stored()
	require.GreaterOrEqual(t, len(stored), 2, "twoSnaps and dottedOK at least")

	bySource := map[string]repo.Stored{}

	for _, s := range stored {
		bySource[s.Source] = s

		if s.PVC.Name != "" {
			assert.Equal(t, s.Source, find(t, idx, s.PVC).Source, "%s maps back to %s, which must look it up", s.Source, s.PVC)
		}
	}

	s, ok := bySource[twoSnapsFinding.Source]
	require.True(t, ok, "%s is not in the inventory %v", twoSnapsFinding.Source, stored)
	assert.Equal(t, twoSnaps, s.PVC, "a plain name maps back exactly")
	assert.Equal(t, 2, s.Snapshots)
	require.NotNil(t, s.Newest)
	assert.Equal(t, twoSnapsFinding.Latest().ID, s.Newest.ID)

	var dotted bool
	for _, x := range stored {
		dotted = dotted || x.PVC.Namespace == dottedOK.Namespace && strings.ReplaceAll(x.PVC.Name, ".", "") == "myappdata"
	}

	assert.True(t, dotted, "the dotted PVC's source is listed under its namespace")
}

func load(t *testing.T, l cache.Loader) repo.Index {
	t.Helper()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	idx, err := l.Load(ctx)
	require.NoError(t, err)

	return idx
}

func find(t *testing.T, idx repo.Index, pvc repo.PVC) repo.Finding {
	t.Helper()

	f, err := idx.Find(context.Background(), pvc)
	require.NoError(t, err, pvc.String())

	return f
}

func dataDir(t *testing.T) string {
	t.Helper()

	d := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(d, "f"), []byte("conformance"), 0o600))

	return d
}

// openKind builds a backend of kind from settings (by flag name) through the registry.
func openKind(t testing.TB, kind string, settings map[string]string) repo.Backend {
	t.Helper()

	k, err := all.Kinds().Lookup(kind)
	require.NoError(t, err)

	cfg := k.New()
	for _, f := range cfg.Fields() {
		if v, ok := settings[f.Flag]; ok {
			require.NoError(t, f.Value.Set(v), f.Flag)
			delete(settings, f.Flag)
		}
	}

	require.Empty(t, settings, "settings the kind does not declare")
	require.NoError(t, cfg.Validate())

	b, err := cfg.Open(repo.OpenEnv{Name: kind, StateDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close(context.Background()) })

	return b
}

func secretFile(t testing.TB, value string) string {
	t.Helper()

	p := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(p, []byte(value), 0o600))

	return p
}

func kopiaFS(t *testing.T) backendUnderTest {
	path := filepath.Join(t.TempDir(), "repository")
	cli := harness.NewKopiaRepository(t, path, kopiaPassword)
	data := dataDir(t)

	return backendUnderTest{
		kind:     "kopia-fs",
		settings: map[string]string{"kopia-repository-path": path, "kopia-password-file": secretFile(t, kopiaPassword)},
		backup:   func(p repo.PVC) { cli.Snapshot(data, kopiamover.PolicySource(p.Namespace, p.Name)) },
		outage: func() func() {
			require.NoError(t, os.Rename(path, path+".away"))
			return func() { require.NoError(t, os.Rename(path+".away", path)) }
		},
	}
}

func kopiaS3(t *testing.T) backendUnderTest {
	s3 := harness.StartS3(t)
	cli := harness.NewKopiaS3Repository(t, s3, s3.CreateBucket("kopia"), kopiaPassword)
	data := dataDir(t)

	return backendUnderTest{
		kind: "kopia-s3",
		settings: map[string]string{
			"s3-endpoint": s3.Endpoint, "s3-bucket": "kopia", "kopia-password-file": secretFile(t, kopiaPassword),
			"s3-access-key-file": secretFile(t, s3.AccessKey), "s3-secret-key-file": secretFile(t, s3.SecretKey),
		},
		backup: func(p repo.PVC) { cli.Snapshot(data, kopiamover.PolicySource(p.Namespace, p.Name)) },
		outage: func() func() { s3.Stop(); return s3.Start },
	}
}

// resticBackend: one repository per PVC at <root>/<namespace>/<pvc>, on S3 or in a directory.
func resticBackend(t *testing.T, onS3 bool, password string) backendUnderTest {
	const writePassword = resticPassword

	var (
		s3       *harness.S3Server
		kind     string
		settings = map[string]string{}
		url      func(p repo.PVC) string
		out      func() func()
	)

	if password != "" {
		settings["restic-password-file"] = secretFile(t, password)
	}

	if onS3 {
		s3 = harness.StartS3(t)
		bucket := s3.CreateBucket("volsync")
		kind = "restic-s3"
		settings["s3-endpoint"], settings["s3-bucket"] = s3.URL, bucket
		settings["s3-access-key-file"], settings["s3-secret-key-file"] = secretFile(t, s3.AccessKey), secretFile(t, s3.SecretKey)
		url = func(p repo.PVC) string { return "s3:" + s3.URL + "/" + bucket + "/" + p.Namespace + "/" + p.Name }
		out = func() func() { s3.Stop(); return s3.Start }
	} else {
		root := filepath.Join(t.TempDir(), "restic")
		require.NoError(t, os.MkdirAll(root, 0o700))
		kind = "restic-fs"
		settings["restic-repository-path"] = root
		url = func(p repo.PVC) string { return filepath.Join(root, p.Namespace, p.Name) }
		out = func() func() {
			require.NoError(t, os.Rename(root, root+".away"))
			return func() { require.NoError(t, os.Rename(root+".away", root)) }
		}
	}

	cli := harness.NewResticCLI(t, s3)
	initialised := map[repo.PVC]bool{}

	return backendUnderTest{
		kind:     kind,
		settings: settings,
		backup: func(p repo.PVC) {
			if !initialised[p] {
				cli.Init(url(p), writePassword, "2")
				initialised[p] = true
			}

			cli.Backup(url(p), writePassword)
		},
		outage: out,
	}
}
