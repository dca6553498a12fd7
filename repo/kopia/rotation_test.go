package kopia_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness"
	"github.com/backup-oracle/backup-oracle/repo"
	"github.com/backup-oracle/backup-oracle/repo/kopia"
)

// TestPasswordChangedWhileConnected: the password file is read before every load; when it
// changes, the backend reconnects with it instead of keeping the connection opened with the old
// one, so a Secret rotated to a wrong value shows at the next refresh, and a repository whose
// password was changed (kopia repository change-password) is read with the new one.
func TestPasswordChangedWhileConnected(t *testing.T) {
	w := newCLIWorld(t)
	w.backup(plain)

	pwFile := filepath.Join(t.TempDir(), "password")
	setPassword := func(pw string) { require.NoError(t, os.WriteFile(pwFile, []byte(pw), 0o600)) }
	setPassword(password)

	cfg, ok := kopia.FSKind().New().(*kopia.FSConfig)
	require.True(t, ok)
	cfg.Kopia.RepositoryPath, cfg.Kopia.PasswordFile = w.cli.Path, pwFile

	logs := &harness.SyncBuffer{}
	r, err := cfg.Open(repo.OpenEnv{Name: kopia.KindFS, StateDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(logs, nil))})
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close(context.Background()) })

	reconnects := func() int { return strings.Count(logs.String(), "secrets changed, re-opening the backend") }

	for range 2 {
		_, err = r.Load(context.Background())
		require.NoError(t, err)
	}

	assert.Equal(t, 0, reconnects(), "an unchanged password keeps the connection")

	setPassword("rotated-to-something-wrong")

	_, err = r.Load(context.Background())
	require.ErrorIs(t, err, repo.ErrUnavailable, "the new password is used at once, not the old connection")
	assert.Contains(t, err.Error(), "invalid repository password")
	assert.Equal(t, 1, reconnects())

	const newPassword = "battery staple"

	w.cli.Run("repository", "change-password", "--new-password", newPassword)
	w.cli.Password = newPassword
	setPassword(newPassword)

	idx, err := r.Load(context.Background())
	require.NoError(t, err, "the repository's new password opens it")
	assert.Equal(t, 1, idx.Stats().Snapshots)

	w.backup(dotted)
	setPassword(password)

	_, err = r.Load(context.Background())
	require.ErrorIs(t, err, repo.ErrUnavailable, "the old password no longer opens the repository")
	assert.NotContains(t, logs.String(), "close repository", "closing a healthy connection is no warning")
	assert.NotContains(t, logs.String(), newPassword, "passwords never reach the log")
	assert.NotContains(t, logs.String(), password)
}
