package kopia_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/cache"
	"github.com/backup-oracle/backup-oracle/integration/harness/kopiamover"
	"github.com/backup-oracle/backup-oracle/repo"
	"github.com/backup-oracle/backup-oracle/repo/kopia"
	"github.com/backup-oracle/backup-oracle/repo/kopia/kopiademo"
)

var _ cache.Loader = (*kopia.Repo)(nil)

const password = "correct horse"

var (
	identity = repo.DefaultKopiaIdentity()
	plain    = repo.PVC{Namespace: "web", Name: "app"}
	dotted   = repo.PVC{Namespace: "web", Name: "my.app.data"}
	long     = repo.PVC{Namespace: "db", Name: strings.Repeat("x", 40) + "-postgres-data-0"}
	missing  = repo.PVC{Namespace: "web", Name: "nothing"}
)

// fixture writes snapshots with the kopia library into a fresh repository.
type fixture struct {
	t    *testing.T
	path string
	data string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()

	f := &fixture{t: t, path: filepath.Join(t.TempDir(), "repo"), data: t.TempDir()}
	require.NoError(t, os.WriteFile(filepath.Join(f.data, "file"), []byte("payload"), 0o600))

	return f
}

func (f *fixture) write(backups ...kopiademo.Backup) {
	f.t.Helper()

	for i := range backups {
		backups[i].Dir = f.data
	}

	require.NoError(f.t, kopiademo.Write(context.Background(), f.path, password, f.t.TempDir(), backups))
}

// backupOf is a backup of pvc under the source VolSync's Kopia mover writes for the RS the
// policies generate (kopiamover: the mover's rules, not the oracle's function under test).
func backupOf(pvc repo.PVC) kopiademo.Backup {
	user, rest, _ := strings.Cut(kopiamover.PolicySource(pvc.Namespace, pvc.Name), "@")
	host, path, _ := strings.Cut(rest, ":")

	return kopiademo.Backup{Source: repo.KopiaSource{UserName: user, Host: host, Path: path}}
}

func newRepo(t *testing.T, path string, pw string) *kopia.Repo {
	t.Helper()

	r, err := kopia.New(kopia.Options{Storage: kopia.Filesystem{Path: path}, Password: repo.Secret(pw), StateDir: t.TempDir(), Identity: identity})
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close(context.Background()) })

	return r
}

// openFS builds the kopia-fs backend as the program does, from its kind's configuration, with
// the password in a file (re-read before every load).
func openFS(t *testing.T, path, passwordFile string) repo.Backend {
	t.Helper()

	cfg, ok := kopia.FSKind().New().(*kopia.FSConfig)
	require.True(t, ok)

	cfg.Kopia.RepositoryPath, cfg.Kopia.PasswordFile = path, passwordFile
	require.NoError(t, cfg.Validate())

	b, err := cfg.Open(repo.OpenEnv{Name: kopia.KindFS, StateDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close(context.Background()) })

	return b
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
}

func find(t *testing.T, idx repo.Index, pvc repo.PVC) (repo.Finding, error) {
	t.Helper()

	return idx.Find(context.Background(), pvc)
}

func TestLoadIndexesEverySource(t *testing.T) {
	f := newFixture(t)
	f.write(backupOf(plain), backupOf(plain), backupOf(dotted), backupOf(long),
		kopiademo.Backup{Source: repo.KopiaSource{UserName: "nothing-backup", Host: "other", Path: "/data"}},
		kopiademo.Backup{Source: repo.KopiaSource{UserName: "nothing-backup", Host: "web", Path: "/elsewhere"}},
		kopiademo.Backup{Source: repo.KopiaSource{UserName: "nothing", Host: "web", Path: "/data"}},
	)

	idx, err := newRepo(t, f.path, password).Load(context.Background())
	require.NoError(t, err)
	st := idx.Stats()
	assert.Equal(t, 6, st.Sources)
	assert.Equal(t, 7, st.Snapshots)
	assert.Equal(t, 4, st.Fitting, "app, my.app.data, the long name and nothing@other fit; another path and another scheme do not")
	assert.Len(t, st.RepositoryID, 64)
	assert.Positive(t, st.Bytes, "the index estimates its memory")

	cases := []struct {
		pvc    repo.PVC
		source string
		count  int
	}{
		{plain, "app-backup@web:/data", 2},
		{dotted, "myappdata-backup@web:/data", 1},
		{long, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx--39e19e48@db:/data", 1}, // 41 characters, '-', sha256("db/<name>")[:8]
		{missing, "nothing-backup@web:/data", 0},                                 // decoys: other host, other path, other user
	}

	for _, tc := range cases {
		t.Run(tc.pvc.Name, func(t *testing.T) {
			fd, err := find(t, idx, tc.pvc)
			require.NoError(t, err)
			assert.Equal(t, tc.source, fd.Source, "rule: the lookup is the source VolSync's mover writes for the policies' RS (a username past 50 characters is the policies' collision-free one)")
			assert.Len(t, fd.Snapshots, tc.count)

			for _, s := range fd.Snapshots {
				assert.NotEmpty(t, s.ID)
				assert.False(t, s.StartTime.IsZero())
				assert.False(t, s.EndTime.Before(s.StartTime))
				assert.EqualValues(t, len("payload"), s.TotalSize)
				assert.EqualValues(t, 1, s.FileCount)
			}

			if tc.count > 1 {
				assert.False(t, fd.Snapshots[1].StartTime.Before(fd.Snapshots[0].StartTime), "oldest first")
			}
		})
	}

	assert.Equal(t, []string{"app-backup@web:/data", "myappdata-backup@web:/data", "nothing-backup@web:/elsewhere", "nothing@web:/data"},
		idx.Nearby(missing), "what the namespace's backups are called: the decoys show the mismatch")
	assert.Equal(t, []string{"app-backup@web:/data", "nothing-backup@web:/elsewhere", "nothing@web:/data"},
		idx.Nearby(dotted))
}

func TestLoadSeesNewSnapshotsOnRefresh(t *testing.T) {
	f := newFixture(t)
	f.write(backupOf(plain))

	r := newRepo(t, f.path, password)
	idx, err := r.Load(context.Background())
	require.NoError(t, err)

	fd, err := find(t, idx, dotted)
	require.NoError(t, err)
	assert.Empty(t, fd.Snapshots)

	f.write(backupOf(dotted))

	idx, err = r.Load(context.Background())
	require.NoError(t, err)

	fd, err = find(t, idx, dotted)
	require.NoError(t, err)
	assert.Len(t, fd.Snapshots, 1, "a snapshot written after the first load is seen after a refresh")
}

func TestIncompleteOnlyIsUnverifiable(t *testing.T) {
	f := newFixture(t)
	b := backupOf(plain)
	b.Incomplete = true
	f.write(b)

	idx, err := newRepo(t, f.path, password).Load(context.Background())
	require.NoError(t, err)

	_, err = find(t, idx, plain)
	require.ErrorIs(t, err, repo.ErrUnverifiable, "rule: a source with only incomplete snapshots is unknown, never fresh (README: How a decision is made, step 3)")

	f.write(backupOf(plain))

	idx, err = newRepo(t, f.path, password).Load(context.Background())
	require.NoError(t, err)

	fd, err := find(t, idx, plain)
	require.NoError(t, err)
	assert.Len(t, fd.Snapshots, 1, "only complete snapshots count")
}

func TestLoadFailures(t *testing.T) {
	f := newFixture(t)
	f.write(backupOf(plain))

	notARepo := t.TempDir()

	secrets := t.TempDir()
	pwFile, wrongFile, unreadable := filepath.Join(secrets, "pw"), filepath.Join(secrets, "wrong"), filepath.Join(secrets, "unreadable")
	writeFile(t, pwFile, password)
	writeFile(t, wrongFile, "wrong")
	require.NoError(t, os.Mkdir(unreadable, 0o700)) // a directory: reading it fails as a file would

	cases := []struct {
		name   string
		path   string
		pwFile string
		msg    string
	}{
		{"wrong password", f.path, wrongFile, "invalid repository password"},
		{"missing directory", filepath.Join(t.TempDir(), "gone"), pwFile, "no such file or directory"},
		{"not a repository", notARepo, pwFile, "no kopia repository"},
		{"password unreadable", f.path, unreadable, "read secret file"},
		{"password file missing", f.path, filepath.Join(secrets, "absent"), "no such file or directory"},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, err := openFS(t, tc.path, tc.pwFile).Load(context.Background())

			require.ErrorIs(t, err, repo.ErrUnavailable)
			assert.Contains(t, err.Error(), tc.msg)
			assert.NotContains(t, err.Error(), password, "secrets never reach errors")
			assert.Less(t, time.Since(start), 5*time.Second, "detected without kopia's retry loop")
		})
	}
}

func TestRepositoryRemovedAndRestored(t *testing.T) {
	f := newFixture(t)
	f.write(backupOf(plain))

	r := newRepo(t, f.path, password)
	_, err := r.Load(context.Background())
	require.NoError(t, err)

	moved := f.path + ".moved"
	require.NoError(t, os.Rename(f.path, moved))

	_, err = r.Load(context.Background())
	require.ErrorIs(t, err, repo.ErrUnavailable)

	require.NoError(t, os.Rename(moved, f.path))

	idx, err := r.Load(context.Background())
	require.NoError(t, err)

	fd, err := find(t, idx, plain)
	require.NoError(t, err)
	assert.Len(t, fd.Snapshots, 1)
}

func TestPasswordRotation(t *testing.T) {
	f := newFixture(t)
	f.write(backupOf(plain))

	pwFile := filepath.Join(t.TempDir(), "password")
	writeFile(t, pwFile, "stale")

	r := openFS(t, f.path, pwFile)

	_, err := r.Load(context.Background())
	require.ErrorIs(t, err, repo.ErrUnavailable)

	writeFile(t, pwFile, password+"\n") // a mounted Secret often ends with a newline

	idx, err := r.Load(context.Background())
	require.NoError(t, err, "the new password is used without a restart")
	assert.Equal(t, 1, idx.Stats().Snapshots)
}

func TestNewValidates(t *testing.T) {
	_, err := kopia.New(kopia.Options{Identity: repo.KopiaIdentity{SourceName: "{bad}", Path: "x"}})
	require.Error(t, err)

	for _, want := range []string{"storage is required", "password is required", "state directory is required", "{bad}", "must be absolute"} {
		assert.Contains(t, err.Error(), want)
	}
}

// TestStoredListsEverySource: the inventory holds every source with a complete snapshot, mapped
// back to its PVC where the identity allows (dots dropped by the mover do not come back; a
// username cut at 50 characters gives the namespace only), and sources that cannot be vouched
// for with their error.
func TestStoredListsEverySource(t *testing.T) {
	f := newFixture(t)
	broken := backupOf(repo.PVC{Namespace: "web", Name: "interrupted"})
	broken.Incomplete = true
	f.write(backupOf(plain), backupOf(plain), backupOf(dotted), backupOf(long), broken,
		kopiademo.Backup{Source: repo.KopiaSource{UserName: "nothing-backup", Host: "web", Path: "/elsewhere"}},
	)

	idx, err := newRepo(t, f.path, password).Load(context.Background())
	require.NoError(t, err)

	got := idx.Stored()
	require.Len(t, got, 5)

	type row struct {
		source    string
		pvc       repo.PVC
		snapshots int
		err       bool
	}

	var rows []row
	for _, s := range got {
		rows = append(rows, row{s.Source, s.PVC, s.Snapshots, s.Err != nil})

		if s.Snapshots > 0 {
			require.NotNil(t, s.Newest, s.Source)
			assert.False(t, s.Newest.StartTime.IsZero())
		}
	}

	assert.Equal(t, []row{
		{"app-backup@web:/data", plain, 2, false},
		{"interrupted-backup@web:/data", repo.PVC{Namespace: "web", Name: "interrupted"}, 0, true},
		{"myappdata-backup@web:/data", repo.PVC{Namespace: "web", Name: "myappdata"}, 1, false},
		{"nothing-backup@web:/elsewhere", repo.PVC{Namespace: "web"}, 1, false},
		{strings.Repeat("x", 40) + "--39e19e48@db:/data", repo.PVC{Namespace: "db"}, 1, false}, // the policies' collision-free username: 41 characters, "-", 8 hex digits
	}, rows, "sorted by source")

	fd, err := find(t, idx, plain)
	require.NoError(t, err)
	assert.Equal(t, fd.Latest().ID, got[0].Newest.ID, "newest is the latest complete snapshot")
}
