package restic_test

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
	"github.com/backup-oracle/backup-oracle/repo"
	"github.com/backup-oracle/backup-oracle/repo/restic"
)

var _ cache.Loader = (*restic.Repo)(nil)

const (
	password = "correct horse"
	prefix   = "volsync"
)

// storageUnderTest is where a fleet of repositories lives: S3 through versitygw, or a directory.
type storageUnderTest struct {
	name string
	// url returns the restic repository URL of the repository at key prefix rel.
	url func(rel string) string
	// fsPath returns the file holding key rel (versitygw's posix backend maps keys to files).
	fsPath func(rel string) string
	// options returns Options locating the storage, to be completed by the test.
	options func() restic.Options
	// source returns the Finding.Source expected for rel.
	source func(rel string) string
	// s3 is the server behind the storage, nil for a directory.
	s3 *harness.S3Server
}

func s3Storage(t *testing.T) (storageUnderTest, *harness.S3Server) { return s3StorageB(t) }

func s3StorageB(t testing.TB) (storageUnderTest, *harness.S3Server) {
	srv := harness.StartS3(t)
	bucket := srv.CreateBucket("backups")

	return storageUnderTest{
		name:   "s3",
		url:    func(rel string) string { return "s3:" + srv.URL + "/" + bucket + "/" + rel },
		fsPath: func(rel string) string { return filepath.Join(srv.Root, bucket, filepath.FromSlash(rel)) },
		options: func() restic.Options {
			return restic.Options{S3: s3Options(srv, bucket)}
		},
		source: func(rel string) string { return "s3:" + bucket + "/" + rel },
		s3:     srv,
	}, srv
}

func s3Options(srv *harness.S3Server, bucket string) restic.S3Options {
	return restic.S3Options{S3Config: repo.S3Config{Endpoint: srv.Endpoint, Bucket: bucket, AccessKey: repo.Secret(srv.AccessKey), SecretKey: repo.Secret(srv.SecretKey), RequestTimeout: 2 * time.Second}, MaxAttempts: 2}
}

func dirStorage(t *testing.T) storageUnderTest {
	dir := t.TempDir()

	return storageUnderTest{
		name:    "dir",
		url:     func(rel string) string { return filepath.Join(dir, filepath.FromSlash(rel)) },
		fsPath:  func(rel string) string { return filepath.Join(dir, filepath.FromSlash(rel)) },
		options: func() restic.Options { return restic.Options{Dir: dir} },
		source:  func(rel string) string { return filepath.ToSlash(filepath.Join(dir, filepath.FromSlash(rel))) },
	}
}

func pvc(ns, name string) repo.PVC { return repo.PVC{Namespace: ns, Name: name} }

func rel(p repo.PVC) string { return prefix + "/" + p.Namespace + "/" + p.Name }

// The fleet every storage gets, written by the real restic CLI.
var (
	twoSnapshots = pvc("team-a", "two-snapshots")
	versionOne   = pvc("team-a", "version-one")
	emptyRepo    = pvc("team-b", "initialised-empty")
	corrupted    = pvc("team-b", "corrupted")
	wrongPass    = pvc("team-c", "other-password")
	absent       = pvc("team-c", "absent")
	absentNS     = pvc("team-z", "absent")
)

func writeFleet(t *testing.T, st storageUnderTest, cli *harness.ResticCLI) {
	t.Helper()

	cli.Init(st.url(rel(twoSnapshots)), password, "2")
	cli.Backup(st.url(rel(twoSnapshots)), password)
	cli.Backup(st.url(rel(twoSnapshots)), password, "daily")

	cli.Init(st.url(rel(versionOne)), password, "1")
	cli.Backup(st.url(rel(versionOne)), password)

	cli.Init(st.url(rel(emptyRepo)), password, "2")

	cli.Init(st.url(rel(corrupted)), password, "2")
	cli.Backup(st.url(rel(corrupted)), password)
	corrupt(t, st.fsPath(rel(corrupted)+"/snapshots"))

	cli.Init(st.url(rel(wrongPass)), "another password", "2")
	cli.Backup(st.url(rel(wrongPass)), "another password")
}

// corrupt flips one byte in the middle of every file in dir.
func corrupt(t *testing.T, dir string) {
	t.Helper()

	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.NotEmpty(t, entries)

	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		b[len(b)/2] ^= 0xff
		require.NoError(t, os.WriteFile(p, b, 0o600))
	}
}

type want struct {
	snapshots int
	err       error
	// msg is in the error: a failed verification names its cause, never "not verified yet"
	// (which tells an operator to wait).
	msg string
}

func TestFleet(t *testing.T) {
	setups := map[string]func(t *testing.T) storageUnderTest{
		"s3":  func(t *testing.T) storageUnderTest { st, _ := s3Storage(t); return st },
		"dir": dirStorage,
	}

	for name, setup := range setups {
		t.Run(name, func(t *testing.T) {
			t.Parallel()

			st := setup(t)
			writeFleet(t, st, harness.NewResticCLI(t, st.s3))

			t.Run("without password", func(t *testing.T) {
				// Without the password only the objects under snapshots/ can be seen: a corrupted
				// snapshot or one under another password still counts.
				checkFleet(t, st, "", map[repo.PVC]want{
					twoSnapshots: {snapshots: 2}, versionOne: {snapshots: 1}, emptyRepo: {},
					corrupted: {snapshots: 1}, wrongPass: {snapshots: 1}, absent: {}, absentNS: {},
				})
			})

			t.Run("with password", func(t *testing.T) {
				checkFleet(t, st, password, map[repo.PVC]want{
					twoSnapshots: {snapshots: 2}, versionOne: {snapshots: 1}, emptyRepo: {},
					corrupted: {err: repo.ErrUnverifiable, msg: "verify repository"},
					wrongPass: {err: repo.ErrUnverifiable, msg: "no key file opens with the password"},
					absent:    {}, absentNS: {},
				})
			})
		})
	}
}

func newRepo(t testing.TB, opts restic.Options) *restic.Repo {
	t.Helper()

	r, err := restic.New(opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close(context.Background()) })

	return r
}

func checkFleet(t *testing.T, st storageUnderTest, pw string, cases map[repo.PVC]want) {
	opts := st.options()
	opts.Prefix, opts.Password, opts.VerifyWait = prefix, repo.Secret(pw), time.Minute

	r := newRepo(t, opts)
	idx, err := r.Load(context.Background())
	require.NoError(t, err)
	stats := idx.Stats()
	assert.Equal(t, repo.IndexStats{Sources: 4, Snapshots: 5, Fitting: 4}, repo.IndexStats{Sources: stats.Sources, Snapshots: stats.Snapshots, Fitting: stats.Fitting},
		"sources are repositories holding a snapshot: an initialised, empty one is none (an index of only those is refused as empty); every one fits the layout")
	assert.Positive(t, stats.Bytes, "the index estimates its memory")

	for p, w := range cases {
		t.Run(p.String(), func(t *testing.T) {
			f, err := idx.Find(context.Background(), p)
			assert.Equal(t, st.source(rel(p)), f.Source)

			if w.err != nil {
				require.ErrorIs(t, err, w.err)
				assert.Empty(t, f.Snapshots, "an unverifiable repository must not report snapshots")
				assert.NotContains(t, err.Error(), password)
				assert.Contains(t, err.Error(), w.msg, "the reason names the failure")
				assert.NotContains(t, err.Error(), "not verified yet", "a failed verification is not a pending one")

				return
			}

			require.NoError(t, err)
			require.Len(t, f.Snapshots, w.snapshots)

			for i, s := range f.Snapshots {
				assert.Len(t, s.ID, 64)
				assert.False(t, s.StartTime.IsZero())

				if i > 0 {
					assert.False(t, s.StartTime.Before(f.Snapshots[i-1].StartTime), "oldest first")
				}

				if pw != "" {
					assert.Equal(t, "volsync", s.Host)
					assert.Len(t, s.Paths, 1)
				}

				assert.Equal(t, pw == "", s.ApproxTime, "without the password a time is the object's, not restic's")
			}
		})
	}

	checkInventory(t, st, idx, cases)

	if pw != "" {
		f, err := idx.Find(context.Background(), twoSnapshots)
		require.NoError(t, err)
		assert.Equal(t, []string{"daily"}, f.Latest().Tags)
	}
}

// checkInventory: Stored lists exactly the repositories holding snapshots or failing
// verification, each mapped back to its PVC through the template.
func checkInventory(t *testing.T, st storageUnderTest, idx repo.Index, cases map[repo.PVC]want) {
	t.Helper()

	got := map[repo.PVC]repo.Stored{}
	for _, s := range idx.Stored() {
		got[s.PVC] = s
	}

	for p, w := range cases {
		s, listed := got[p]

		switch {
		case w.err != nil:
			require.True(t, listed, "%s: an unverifiable repository is listed", p)
			require.ErrorIs(t, s.Err, w.err)
		case w.snapshots == 0:
			assert.False(t, listed, "%s: a repository without snapshots is no backup", p)
		default:
			require.True(t, listed, "%s is not in the inventory", p)
			assert.Equal(t, st.source(rel(p)), s.Source)
			assert.Equal(t, w.snapshots, s.Snapshots)

			f, err := idx.Find(context.Background(), p)
			require.NoError(t, err)
			assert.Equal(t, f.Latest().ID, s.Newest.ID)
		}

		delete(got, p)
	}

	assert.Empty(t, got, "nothing else is listed")
}
