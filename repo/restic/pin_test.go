package restic_test

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness"
	"github.com/backup-oracle/backup-oracle/repo"
	"github.com/backup-oracle/backup-oracle/repo/restic"
)

// configID is the shared repository's id as the restic CLI prints it (`restic cat config`).
func configID(t *testing.T, cli *harness.ResticCLI, url string) string {
	t.Helper()

	var cfg struct {
		ID string `json:"id"`
	}
	require.NoError(t, json.Unmarshal(cli.Output(password, "-r", url, "cat", "config"), &cfg))
	require.Len(t, cfg.ID, 64)

	return cfg.ID
}

// TestSharedRepositoryPin: RESTIC_REPOSITORY_ID pins the shared repository written by the real
// restic CLI on the real S3 server; unpinned, the first id seen is remembered. A repository
// re-initialised or wiped at the same location is refused, naming both ids.
func TestSharedRepositoryPin(t *testing.T) {
	st, _ := s3Storage(t)
	cli := harness.NewResticCLI(t, st.s3)

	const shared = "cluster/shared"

	cli.Init(st.url(shared), password, "2")
	cli.Backup(st.url(shared), password, "team-a/app")
	first := configID(t, cli, st.url(shared))

	other := strings.Repeat("ab", 32)

	open := func(pin string) *restic.Repo {
		opts := st.options()
		opts.Layout, opts.Prefix, opts.Password, opts.VerifyWait, opts.RepositoryID = restic.LayoutShared, shared, password, time.Minute, pin

		return newRepo(t, opts)
	}

	cases := []struct {
		name string
		pin  string
		// mismatch: the ids the error names, nil when the load succeeds
		mismatch []string
	}{
		{"unpinned", "", nil},
		{"pinned right", first, nil},
		{"pinned right, upper case", strings.ToUpper(first), nil},
		{"pinned wrong", other, []string{first, "but RESTIC_REPOSITORY_ID pins " + other}},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			idx, err := open(tc.pin).Load(context.Background())
			if tc.mismatch == nil {
				require.NoError(t, err)
				assert.Equal(t, first, idx.Stats().RepositoryID, "the index names its repository (/status)")

				f, err := idx.Find(context.Background(), pvc("team-a", "app"))
				require.NoError(t, err)
				assert.Len(t, f.Snapshots, 1)

				return
			}

			require.ErrorIs(t, err, repo.ErrRepositoryMismatch)
			require.ErrorIs(t, err, repo.ErrUnavailable, "a mismatch is an unavailable backend: not ready, every answer unknown")

			for _, s := range tc.mismatch {
				assert.Contains(t, err.Error(), s)
			}
		})
	}

	unpinned, pinned := open(""), open(first)
	for _, r := range []*restic.Repo{unpinned, pinned} {
		_, err := r.Load(context.Background())
		require.NoError(t, err)
	}

	// Re-initialised with the same password, with a snapshot of another PVC (so the empty-index
	// guard would not catch it).
	require.NoError(t, os.RemoveAll(st.fsPath(shared)))
	cli.Init(st.url(shared), password, "2")
	cli.Backup(st.url(shared), password, "team-b/db")
	second := configID(t, cli, st.url(shared))
	require.NotEqual(t, first, second)

	for name, r := range map[string]*restic.Repo{"unpinned": unpinned, "pinned": pinned} {
		_, err := r.Load(context.Background())
		require.ErrorIs(t, err, repo.ErrRepositoryMismatch, name)
		assert.Contains(t, err.Error(), "has id "+second, name)
		assert.Contains(t, err.Error(), first, name)
	}

	_, err := unpinned.Load(context.Background())
	assert.Contains(t, err.Error(), "pin it (RESTIC_REPOSITORY_ID="+second+")", "says how to adopt the new one")

	idx, err := open("").Load(context.Background())
	require.NoError(t, err, "a new process adopts the repository it finds (and logs how to pin it)")
	assert.Equal(t, second, idx.Stats().RepositoryID)

	// Wiped: no repository at the location at all.
	require.NoError(t, os.RemoveAll(st.fsPath(shared)))

	for name, r := range map[string]*restic.Repo{"unpinned": unpinned, "pinned": pinned} {
		_, err := r.Load(context.Background())
		require.ErrorIs(t, err, repo.ErrRepositoryMismatch, name)
		assert.Contains(t, err.Error(), "there is no repository at "+st.source(shared), name)
		assert.Contains(t, err.Error(), first, name)
	}
}

// TestRepositoryIDValidation: RESTIC_REPOSITORY_ID pins a shared repository by its 64-hex id and
// needs the password (the id is in the encrypted config); the kinds list the setting.
func TestRepositoryIDValidation(t *testing.T) {
	id := strings.Repeat("0f", 32)

	cases := []struct {
		name     string
		layout   string
		password string
		id       string
		problem  string // "" for valid
	}{
		{"pinned shared", restic.LayoutShared, "pw", id, ""},
		{"pinned without password", restic.LayoutShared, "", id, "RESTIC_REPOSITORY_ID needs the restic password (RESTIC_PASSWORD or RESTIC_PASSWORD_FILE): the repository's id is in its encrypted config"},
		{"pinned per-pvc", restic.LayoutPerPVC, "pw", id, "RESTIC_REPOSITORY_ID pins the shared repository (RESTIC_LAYOUT=shared)"},
		{"not hex", restic.LayoutShared, "pw", "not-hex", `RESTIC_REPOSITORY_ID "not-hex": want the 64 hex digits`},
		{"too short", restic.LayoutShared, "pw", "0f0f", `RESTIC_REPOSITORY_ID "0f0f": want the 64 hex digits`},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, kind := range []repo.Kind{restic.S3Kind(), restic.FSKind()} {
				cfg := kind.New()

				var s *restic.Settings

				switch c := cfg.(type) {
				case *restic.S3Config:
					c.S3.Bucket, s = "backups", &c.Restic
				case *restic.FSConfig:
					c.Restic.Path, s = "/r", &c.Restic.Settings
				}

				s.Layout, s.Password, s.RepositoryID = tc.layout, repo.Secret(tc.password), tc.id

				err := cfg.Validate()
				if tc.problem == "" {
					require.NoError(t, err, kind.Name)
					assert.Contains(t, cfg.Describe(), "repository pinned to "+id, kind.Name)

					continue
				}

				require.ErrorIs(t, err, repo.ErrInvalidConfig, kind.Name)
				assert.Contains(t, err.Error(), tc.problem, kind.Name)
			}
		})
	}

	for _, kind := range []repo.Kind{restic.S3Kind(), restic.FSKind()} {
		var envs []string
		for _, f := range kind.New().Fields() {
			envs = append(envs, f.Env...)
		}

		assert.Contains(t, envs, "RESTIC_REPOSITORY_ID", "%s lists the setting (backup-oracle kinds)", kind.Name)
	}
}
