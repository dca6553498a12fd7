package restic_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness"
	"github.com/backup-oracle/backup-oracle/repo"
	"github.com/backup-oracle/backup-oracle/repo/restic"
)

// lockedBuffer is a log sink safe for the verifier's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// TestPerPVCPasswords: repositories written by the real restic CLI with one password each. With
// RESTIC_PASSWORDS_DIR (files <namespace>.<pvc>, as a mounted Secret shows them) each is
// verified with its own; one without a file uses RESTIC_PASSWORD, and when that does not open
// it the answer names the cause and the remedy, logged once, not on every refresh. Without a
// default password a repository without its file is listed unverified (times approximate).
func TestPerPVCPasswords(t *testing.T) {
	dir := t.TempDir()
	cli := harness.NewResticCLI(t, nil)

	own := map[repo.PVC]string{pvc("team-a", "app"): "app's own", pvc("team-a", "my.db"): "the db's own"}
	byDefault, stray := pvc("team-b", "web"), pvc("team-b", "legacy")

	for p, pw := range own {
		cli.Init(filepath.Join(dir, p.Namespace, p.Name), pw, "2")
		cli.Backup(filepath.Join(dir, p.Namespace, p.Name), pw)
	}

	for p, pw := range map[repo.PVC]string{byDefault: password, stray: "nobody knows"} {
		cli.Init(filepath.Join(dir, p.Namespace, p.Name), pw, "2")
		cli.Backup(filepath.Join(dir, p.Namespace, p.Name), pw)
	}

	// A Secret mounted as a directory: the keys are symlinks into a timestamped folder.
	pwDir := t.TempDir()
	data := filepath.Join(pwDir, "..2026_12_06_10_00_00.000000001")
	require.NoError(t, os.Mkdir(data, 0o755))
	require.NoError(t, os.Symlink(filepath.Base(data), filepath.Join(pwDir, "..data")))

	for p, pw := range own {
		name := p.Namespace + "." + p.Name
		require.NoError(t, os.WriteFile(filepath.Join(data, name), []byte(pw+"\n"), 0o600))
		require.NoError(t, os.Symlink(filepath.Join("..data", name), filepath.Join(pwDir, name)))
	}

	load := func(t *testing.T, defaultPassword string, logs *lockedBuffer) (repo.Backend, repo.Index) {
		t.Helper()

		cfg, ok := restic.FSKind().New().(*restic.FSConfig)
		require.True(t, ok)

		cfg.Restic.Path, cfg.Restic.PasswordsDir, cfg.Restic.Password = dir, pwDir, repo.Secret(defaultPassword)
		require.NoError(t, cfg.Validate())
		assert.Contains(t, cfg.Describe(), "with the per-PVC passwords of "+pwDir)

		b, err := cfg.Open(repo.OpenEnv{Name: "restic-fs", StateDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(logs, nil))})
		require.NoError(t, err)
		t.Cleanup(func() { _ = b.Close(context.Background()) })

		idx, err := b.Load(context.Background())
		require.NoError(t, err)

		return b, idx
	}

	t.Run("with a default password", func(t *testing.T) {
		logs := &lockedBuffer{}
		b, idx := load(t, password, logs)

		for _, p := range []repo.PVC{pvc("team-a", "app"), pvc("team-a", "my.db"), byDefault} {
			f := findEventually(t, idx, p)
			require.Len(t, f.Snapshots, 1, p.String())
			assert.False(t, f.Snapshots[0].ApproxTime, "%s: verified, with restic's own time", p)
			assert.Equal(t, "volsync", f.Snapshots[0].Host)
		}

		_, err := findSettled(t, idx, stray)
		require.ErrorIs(t, err, repo.ErrUnverifiable)
		assert.Contains(t, err.Error(), "no key file opens with the password of RESTIC_PASSWORD")
		assert.Contains(t, err.Error(), "give this PVC's own in RESTIC_PASSWORDS_DIR (a file <namespace>.<pvc>)")
		assert.NotContains(t, err.Error(), "nobody knows")

		for range 3 { // later refreshes do not log it again
			_, err := b.Load(context.Background())
			require.NoError(t, err)
		}

		assert.Equal(t, 1, strings.Count(logs.String(), "the password does not open this repository's keys"), logs.String())
		assert.Contains(t, logs.String(), "team-b/legacy")
	})

	t.Run("a per-PVC password that is wrong names its file", func(t *testing.T) {
		wrong := filepath.Join(t.TempDir(), "pw")
		require.NoError(t, os.Mkdir(wrong, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(wrong, "team-a.app"), []byte("not it"), 0o600))

		cfg, ok := restic.FSKind().New().(*restic.FSConfig)
		require.True(t, ok)

		cfg.Restic.Path, cfg.Restic.PasswordsDir = dir, wrong
		b, err := cfg.Open(repo.OpenEnv{Name: "restic-fs", StateDir: t.TempDir()})
		require.NoError(t, err)
		t.Cleanup(func() { _ = b.Close(context.Background()) })

		idx, err := b.Load(context.Background())
		require.NoError(t, err)

		_, err = findSettled(t, idx, pvc("team-a", "app"))
		require.ErrorIs(t, err, repo.ErrUnverifiable)
		assert.Contains(t, err.Error(), "no key file opens with the password of the file team-a.app of RESTIC_PASSWORDS_DIR")
	})

	t.Run("without a default password", func(t *testing.T) {
		_, idx := load(t, "", &lockedBuffer{})

		f := findEventually(t, idx, pvc("team-a", "my.db"))
		assert.False(t, f.Snapshots[0].ApproxTime, "its own password verifies it")

		f, err := idx.Find(context.Background(), byDefault)
		require.NoError(t, err)
		require.Len(t, f.Snapshots, 1)
		assert.True(t, f.Snapshots[0].ApproxTime, "no password for it: listed, not verified")
	})

	t.Run("a file named otherwise is refused with its name", func(t *testing.T) {
		bad := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(bad, "app"), []byte("x"), 0o600))

		cfg, ok := restic.FSKind().New().(*restic.FSConfig)
		require.True(t, ok)

		cfg.Restic.Path, cfg.Restic.PasswordsDir = dir, bad
		b, err := cfg.Open(repo.OpenEnv{Name: "restic-fs", StateDir: t.TempDir()})
		require.NoError(t, err)
		t.Cleanup(func() { _ = b.Close(context.Background()) })

		_, err = b.Load(context.Background())
		require.ErrorIs(t, err, repo.ErrUnavailable)
		assert.Contains(t, err.Error(), `file "app": want <namespace>.<pvc>`)
	})

	t.Run("the shared layout has one password", func(t *testing.T) {
		cfg, ok := restic.FSKind().New().(*restic.FSConfig)
		require.True(t, ok)

		cfg.Restic.Path, cfg.Restic.PasswordsDir, cfg.Restic.Layout, cfg.Restic.Password = dir, pwDir, restic.LayoutShared, "pw"
		err := cfg.Validate()
		require.ErrorIs(t, err, repo.ErrInvalidConfig)
		assert.Contains(t, err.Error(), "per-PVC passwords (RESTIC_PASSWORDS_DIR) need the per-pvc layout")
	})
}

// findEventually finds p's snapshots once verified (a lookup puts its repository first).
func findEventually(t *testing.T, idx repo.Index, p repo.PVC) repo.Finding {
	t.Helper()

	f, err := findSettled(t, idx, p)
	require.NoError(t, err, p.String())

	return f
}

// findSettled asks until the answer is no longer pending.
func findSettled(t *testing.T, idx repo.Index, p repo.PVC) (repo.Finding, error) {
	t.Helper()

	var (
		f   repo.Finding
		err error
	)

	require.Eventually(t, func() bool {
		f, err = idx.Find(context.Background(), p)
		return err == nil || !errors.Is(err, repo.ErrPending)
	}, 2*time.Minute, 50*time.Millisecond)

	return f, err
}
