package integration

import (
	"context"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness"
)

// Kopia repository upgrades, with the real kopia CLI (`kopia repository upgrade`, which needs
// KOPIA_UPGRADE_LOCK_ENABLED). While an upgrade lock holds, the oracle answers unknown with the
// reason "repository upgrade in progress" (the repository is being rewritten and kopia forbids
// other clients to read it: nothing can vouch for a fresh); the lock is seen by the first
// refresh that starts after it was placed, and a rollback or a committed upgrade by the first
// refresh after it. Kopia caches the format blob for 15 minutes, which hid all of this before.

const upgradeReason = "repository upgrade in progress"

// upgradeFlags make `upgrade begin` quick: the drain wait is about 3 seconds.
var upgradeFlags = []string{"--io-drain-timeout=1s", "--max-permitted-clock-drift=1s", "--status-poll-interval=1s", "--allow-unsafe-upgrade"}

type upgradeWorld struct {
	cli  *harness.KopiaCLI
	data string
}

// newUpgradeWorld creates a format-1 repository (the format `upgrade` migrates from) holding a
// backup of web/app.
func newUpgradeWorld(t *testing.T) *upgradeWorld {
	t.Helper()

	base := t.TempDir()
	w := &upgradeWorld{data: filepath.Join(base, "data")}
	require.NoError(t, os.MkdirAll(w.data, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(w.data, "db"), []byte("precious"), 0o644))

	w.cli = harness.NewKopiaRepository(t, filepath.Join(base, "repository"), kopiaPassword, "--format-version=1")
	w.cli.Env = []string{"KOPIA_UPGRADE_LOCK_ENABLED=1"}
	w.cli.Snapshot(w.data, "app-backup@web:/data")

	return w
}

func (w *upgradeWorld) upgrade(args ...string) string {
	return w.cli.Run(append(append([]string{"repository", "upgrade"}, args...), "--upgrade-owner-id=test-upgrade")...)
}

func (w *upgradeWorld) start(t *testing.T, stateDir string) *harness.Oracle {
	t.Helper()

	return harness.StartOracle(t, harness.OracleOptions{Bin: oracleBin, Env: []string{
		"BACKEND_TYPE=kopia-fs", "KOPIA_REPOSITORY_PATH=" + w.cli.Path, "KOPIA_PASSWORD=" + kopiaPassword,
		"STATE_DIR=" + stateDir, "REFRESH_INTERVAL=500ms", "REFRESH_TIMEOUT=20s", "MAX_INDEX_AGE=30s", "CACHE_TTL=1m",
	}})
}

// lastAttempt is when the backend's last refresh attempt ended (zero before the first).
func lastAttempt(t *testing.T, o *harness.Oracle) time.Time {
	t.Helper()

	backends, _ := o.Get(t, "/status").Body["backends"].([]any)
	require.Len(t, backends, 1)

	s, _ := backends[0].(map[string]any)["lastAttempt"].(string)
	if s == "" {
		return time.Time{}
	}

	at, err := time.Parse(time.RFC3339Nano, s)
	require.NoError(t, err)

	return at
}

// refreshedSince waits until a whole refresh attempt started after since has ended: the first
// attempt ending after since may have started before it, the one after that did not.
func refreshedSince(t *testing.T, o *harness.Oracle, since time.Time) {
	t.Helper()

	deadline := time.Now().Add(time.Minute)
	first := time.Time{}

	for time.Now().Before(deadline) {
		at := lastAttempt(t, o)

		switch {
		case first.IsZero() && at.After(since):
			first = at
		case !first.IsZero() && at.After(first):
			return
		}

		time.Sleep(20 * time.Millisecond)
	}

	t.Fatalf("no refresh attempt after %s within a minute\n%s", since, o.Stderr())
}

func statusError(t *testing.T, o *harness.Oracle) string {
	t.Helper()

	backends, _ := o.Get(t, "/status").Body["backends"].([]any)
	require.Len(t, backends, 1)

	s, _ := backends[0].(map[string]any)["lastError"].(string)

	return s
}

// watcher asks, until stopped, about a PVC with a backup and one without, and records every
// authoritative answer that is wrong: fresh for the first, restore for the second.
type watcher struct {
	stop  chan struct{}
	done  sync.WaitGroup
	mu    sync.Mutex
	wrong []string
	asked int
	paths map[string]string // path → the decision that would be wrong
}

func watch(t *testing.T, o *harness.Oracle, withBackup, without string) *watcher {
	t.Helper()

	w := &watcher{stop: make(chan struct{}), paths: map[string]string{withBackup: "fresh", without: "restore"}}
	client := harness.Client(2)

	w.done.Go(func() {
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(25 * time.Millisecond):
			}

			w.mu.Lock()
			paths := maps.Clone(w.paths)
			w.mu.Unlock()

			for path, wrong := range paths {
				req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, o.URL+path, nil)
				if err != nil {
					continue
				}

				resp, err := client.Do(req)
				if err != nil {
					continue
				}

				body := new(strings.Builder)
				_, _ = io.Copy(body, resp.Body)
				_ = resp.Body.Close()

				w.mu.Lock()
				w.asked++

				if _, still := w.paths[path]; still && strings.Contains(body.String(), `"decision":"`+wrong+`"`) {
					w.wrong = append(w.wrong, path+": "+body.String())
				}
				w.mu.Unlock()
			}
		}
	})

	return w
}

// forget stops checking path (its truth is about to change).
func (w *watcher) forget(path string) {
	w.mu.Lock()
	delete(w.paths, path)
	w.mu.Unlock()
}

func (w *watcher) check(t *testing.T) {
	t.Helper()
	close(w.stop)
	w.done.Wait()

	w.mu.Lock()
	defer w.mu.Unlock()

	assert.Positive(t, w.asked)
	assert.Empty(t, w.wrong, "wrong authoritative answers while the repository was upgraded")
}

func TestKopiaUpgradeLockRollbackAndFullUpgrade(t *testing.T) {
	w := newUpgradeWorld(t)
	o := w.start(t, t.TempDir())
	o.WaitReady(t, 30*time.Second)
	require.Equal(t, "restore", decision(t, o, "/exists/web/app"))

	wt := watch(t, o, "/exists/web/app", "/exists/web/nothing")
	defer wt.check(t)

	t.Run("lock-only begin is seen by the next refresh", func(t *testing.T) {
		w.upgrade(append([]string{"begin", "--lock-only"}, upgradeFlags...)...)
		locked := time.Now()

		refreshedSince(t, o, locked)
		t.Logf("lock seen %s after it was placed", time.Since(locked).Round(time.Millisecond))

		assert.Contains(t, statusError(t, o), upgradeReason)

		r := o.Get(t, "/readyz")
		assert.Equal(t, http.StatusServiceUnavailable, r.Code)
		assert.Contains(t, r.Body["reason"], upgradeReason)

		for _, path := range []string{"/exists/web/app", "/exists/web/nothing"} {
			r := o.Get(t, path)
			assert.Equal(t, http.StatusServiceUnavailable, r.Code, path)
			assert.Equal(t, "unknown", r.Body["decision"], path)
			assert.Contains(t, r.Body["error"], upgradeReason, path)
		}
	})

	t.Run("it stays locked, without reconnecting", func(t *testing.T) {
		refreshedSince(t, o, time.Now())
		assert.Contains(t, statusError(t, o), upgradeReason)
	})

	t.Run("rollback is seen by the next refresh", func(t *testing.T) {
		w.upgrade("rollback", "--force")
		refreshedSince(t, o, time.Now())

		assert.Equal(t, http.StatusOK, o.Get(t, "/readyz").Code, statusError(t, o))
		assert.Equal(t, "restore", decision(t, o, "/exists/web/app"))
		assert.Equal(t, "fresh", decision(t, o, "/exists/web/nothing"))
	})

	t.Run("a full upgrade from format 1, then new snapshots", func(t *testing.T) {
		out := w.upgrade(append([]string{"begin"}, upgradeFlags...)...)
		t.Logf("kopia repository upgrade begin:\n%s", out)

		refreshedSince(t, o, time.Now())
		assert.Equal(t, http.StatusOK, o.Get(t, "/readyz").Code, statusError(t, o))
		assert.Equal(t, "restore", decision(t, o, "/exists/web/app"))

		wt.forget("/exists/web/nothing") // it gets a backup now
		w.cli.Snapshot(w.data, "nothing-backup@web:/data")
		refreshedSince(t, o, time.Now())
		assert.Equal(t, "restore", decision(t, o, "/exists/web/nothing"), "a snapshot written after the upgrade is seen")
	})

	assert.False(t, o.Exited())
}

// TestKopiaColdStartDuringLock: a process started while the lock holds (with a fresh state
// directory, and with the one a previous run left, whose cached format blob predates the lock)
// reports the lock at its first refresh instead of waiting in kopia's upgrade-wait loop, and
// recovers at the first refresh after the rollback.
func TestKopiaColdStartDuringLock(t *testing.T) {
	w := newUpgradeWorld(t)
	state := t.TempDir()

	first := w.start(t, state)
	first.WaitReady(t, 30*time.Second)
	first.Stop(t)

	w.upgrade(append([]string{"begin", "--lock-only"}, upgradeFlags...)...)

	for name, dir := range map[string]string{"fresh state directory": t.TempDir(), "stale state directory": state} {
		t.Run(name, func(t *testing.T) {
			o := w.start(t, dir)
			refreshedSince(t, o, time.Time{})

			assert.Contains(t, statusError(t, o), upgradeReason)
			assert.Equal(t, http.StatusServiceUnavailable, o.Get(t, "/readyz").Code)
			assert.Equal(t, "unknown", decision(t, o, "/exists/web/app"))
			o.Stop(t)
		})
	}

	o := w.start(t, state)
	refreshedSince(t, o, time.Time{})
	require.Contains(t, statusError(t, o), upgradeReason)

	w.upgrade("rollback", "--force")
	refreshedSince(t, o, time.Now())
	assert.Equal(t, http.StatusOK, o.Get(t, "/readyz").Code, statusError(t, o))
	assert.Equal(t, "restore", decision(t, o, "/exists/web/app"))
}
