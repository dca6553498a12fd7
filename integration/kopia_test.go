package integration

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness"
	"github.com/backup-oracle/backup-oracle/integration/harness/kopiamover"
)

const kopiaPassword = "kopia-test-password"

var longPVC = strings.Repeat("long", 12) + "-name-cut-to-fifty" // 66 characters

// statefulPVC is a StatefulSet replica's claim whose username the mover would cut to a trailing
// '-' (its ordinal cut away: replica -1 would share the identity); the policies give it a
// collision-free one instead.
const statefulPVC = "datadir-cassandra-cluster-dc1-rack1-production-01-0"

// kopiaWorld is a repository written by the real kopia CLI with VolSync-style sources.
type kopiaWorld struct {
	cli  *harness.KopiaCLI
	data string
	base string
}

func newKopiaWorld(t *testing.T) *kopiaWorld {
	t.Helper()

	w := newEmptyKopiaWorld(t)

	// Written under the sources VolSync's Kopia mover uses (kopiamover: its rules, not the
	// oracle's function under test).
	for _, src := range []string{
		kopiamover.PolicySource("web", "app"),
		kopiamover.PolicySource("web", "app"),
		kopiamover.PolicySource("web", "my.app.data"),
		kopiamover.PolicySource("db", longPVC),
		kopiamover.PolicySource("db", statefulPVC),
		"cache-backup@other:/data", // decoy: another namespace
		"cache-backup@web:/srv",    // decoy: another path
	} {
		w.cli.Snapshot(w.data, src)
	}

	return w
}

// newEmptyKopiaWorld is a repository created by the real kopia CLI, without snapshots.
func newEmptyKopiaWorld(t *testing.T) *kopiaWorld {
	t.Helper()

	base, err := os.MkdirTemp("", "backup-oracle-kopia-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	require.NoError(t, os.Chmod(base, 0o755)) // another user may traverse it; kopia's files stay 0600

	w := &kopiaWorld{base: base, data: filepath.Join(base, "data")}
	require.NoError(t, os.MkdirAll(w.data, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(w.data, "db.sqlite"), []byte("precious"), 0o644))

	w.cli = harness.NewKopiaRepository(t, filepath.Join(base, "repository"), kopiaPassword)

	return w
}

func (w *kopiaWorld) passwordFile(t *testing.T, pw string) string {
	t.Helper()

	p := filepath.Join(t.TempDir(), "password")
	require.NoError(t, os.WriteFile(p, []byte(pw+"\n"), 0o600))

	return p
}

func (w *kopiaWorld) start(t *testing.T, env ...string) *harness.Oracle {
	t.Helper()

	return harness.StartOracle(t, harness.OracleOptions{Bin: oracleBin, Env: append([]string{
		"BACKEND_TYPE=kopia-fs", "KOPIA_REPOSITORY_PATH=" + w.cli.Path,
		"REFRESH_INTERVAL=300ms", "MAX_INDEX_AGE=10s", "CACHE_TTL=1m",
	}, env...)})
}

func TestKopiaEndToEnd(t *testing.T) {
	w := newKopiaWorld(t)
	o := w.start(t, "KOPIA_PASSWORD_FILE="+w.passwordFile(t, kopiaPassword))
	o.WaitReady(t, 30*time.Second)

	cases := []struct {
		path, decision, source string
		count                  float64
	}{
		{"/exists/web/app", "restore", "app-backup@web:/data", 2},
		{"/exists/web/my.app.data", "restore", "myappdata-backup@web:/data", 1},
		// the collision-free username the policies set: 41 characters, "-", sha256sum("db/<pvc>")[:8]
		{"/exists/db/" + longPVC, "restore", longPVC[:41] + "-04450985@db:/data", 1},
		{"/exists/web/nothing", "fresh", "nothing-backup@web:/data", 0},
		{"/exists/db/" + statefulPVC, "restore", "datadir-cassandra-cluster-dc1-rack1-produ-f72b680e@db:/data", 1},
		// Its sibling replica has its own identity: no backup (README, Kopia identity).
		{"/exists/db/datadir-cassandra-cluster-dc1-rack1-production-01-1", "fresh", "datadir-cassandra-cluster-dc1-rack1-produ-65604fac@db:/data", 0},
		{"/exists/fresh-ns/app", "fresh", "app-backup@fresh-ns:/data", 0},
	}

	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			r := o.Get(t, tc.path)
			assert.Equal(t, http.StatusOK, r.Code)
			assert.Equal(t, tc.decision, r.Body["decision"])
			assert.Equal(t, true, r.Body["authoritative"])
			assert.Equal(t, tc.decision == "restore", r.Body["exists"])
			assert.Equal(t, tc.source, r.Body["source"])
			assert.Equal(t, "kopia-fs", r.Body["backend"])
			assert.Equal(t, tc.count, r.Body["snapshotCount"])

			if tc.decision == "restore" {
				latest, ok := r.Body["latestSnapshot"].(map[string]any)
				require.True(t, ok, "latestSnapshot: %v", r.Body)
				assert.NotEmpty(t, latest["id"])
				assert.EqualValues(t, len("precious"), latest["size"])
			}
		})
	}

	t.Run("invalid name", func(t *testing.T) {
		r := o.Get(t, "/exists/web/My_App")
		assert.Equal(t, http.StatusBadRequest, r.Code)
		assert.Contains(t, r.Body["error"], "DNS-1123 subdomain")
	})

	t.Run("a backup under another path is a near miss", func(t *testing.T) {
		r := o.Get(t, "/exists/web/cache")
		assert.Equal(t, http.StatusServiceUnavailable, r.Code)
		assert.Equal(t, "unknown", r.Body["decision"])
		assert.Contains(t, r.Body["error"], "cache-backup@web:/srv")

		near, ok := r.Body["nearMiss"].([]any)
		require.True(t, ok, "%v", r.Body)
		require.Len(t, near, 1)
		assert.Equal(t, "cache-backup@web:/srv", near[0].(map[string]any)["source"])

		accepted := o.Get(t, "/exists/web/cache?accept=near-miss")
		assert.Equal(t, http.StatusOK, accepted.Code)
		assert.Equal(t, "fresh", accepted.Body["decision"])
		assert.Equal(t, "near-miss", accepted.Body["accepted"])

		assert.Equal(t, "fresh", decision(t, o, "/exists/other/web-cache"), "another namespace's source of the same name is not a near miss")
	})

	t.Run("snapshot created while running", func(t *testing.T) {
		assert.Equal(t, "unknown", decision(t, o, "/exists/web/cache"))
		w.cli.Snapshot(w.data, "cache-backup@web:/data")
		eventually(t, o, "/exists/web/cache", "restore", 20*time.Second)
	})

	t.Run("repository removed and restored", func(t *testing.T) {
		moved := w.cli.Path + ".away"
		require.NoError(t, os.Rename(w.cli.Path, moved))
		eventually(t, o, "/exists/web/nothing", "unknown", 20*time.Second)

		r := o.Get(t, "/exists/web/app")
		assert.Equal(t, http.StatusServiceUnavailable, r.Code, "even restore is withheld while the repository is unreadable")
		assert.Contains(t, r.Body["error"], "no such file or directory")
		assert.Equal(t, http.StatusServiceUnavailable, o.Get(t, "/readyz").Code)

		require.NoError(t, os.Rename(moved, w.cli.Path))
		o.WaitReady(t, 20*time.Second)
		assert.Equal(t, "restore", decision(t, o, "/exists/web/app"))
		assert.Equal(t, "fresh", decision(t, o, "/exists/web/nothing"))
	})

	t.Run("explain", func(t *testing.T) {
		r := o.Get(t, "/explain/web/nothing")
		require.Equal(t, http.StatusOK, r.Code)
		backends := r.Body["backends"].([]any)
		require.Len(t, backends, 1)
		b := backends[0].(map[string]any)
		assert.Equal(t, "nothing-backup@web:/data", b["source"])
		assert.Contains(t, b["nearby"], "cache-backup@web:/srv", "the decoy on another path is shown to the operator")
		assert.Contains(t, b["nearby"], "myappdata-backup@web:/data")

		snaps := o.Get(t, "/explain/web/app").Body["backends"].([]any)[0].(map[string]any)["snapshots"].([]any)
		assert.Len(t, snaps, 2)
	})

	t.Run("status", func(t *testing.T) {
		r := o.Get(t, "/status")
		backends, ok := r.Body["backends"].([]any)
		require.True(t, ok)
		require.Len(t, backends, 1)
		b := backends[0].(map[string]any)
		assert.Equal(t, true, b["ready"])
		assert.EqualValues(t, 7, b["sources"])
	})

	assert.False(t, o.Exited())
	assert.NotContains(t, o.Stderr(), kopiaPassword, "the password never reaches the log")
}

func TestKopiaWrongPasswordThenRotated(t *testing.T) {
	w := newKopiaWorld(t)
	pwFile := w.passwordFile(t, "not-the-password")
	o := w.start(t, "KOPIA_PASSWORD_FILE="+pwFile)

	eventuallyReason(t, o, "invalid repository password", 20*time.Second)

	r := o.Get(t, "/exists/web/nothing")
	assert.Equal(t, http.StatusServiceUnavailable, r.Code)
	assert.Equal(t, "unknown", r.Body["decision"])
	assert.Equal(t, false, r.Body["authoritative"])

	// The Secret is rotated: the file changes, the process keeps running.
	require.NoError(t, os.WriteFile(pwFile, []byte(kopiaPassword), 0o600))
	o.WaitReady(t, 20*time.Second)
	assert.Equal(t, "restore", decision(t, o, "/exists/web/app"))
	assert.False(t, o.Exited())
	assert.NotContains(t, o.Stderr(), kopiaPassword)
}

func TestKopiaRepositoryUnreadableByServiceUser(t *testing.T) {
	w := newKopiaWorld(t)

	opts := harness.OracleOptions{Bin: oracleBin, Env: []string{
		"BACKEND_TYPE=kopia-fs", "KOPIA_REPOSITORY_PATH=" + w.cli.Path, "KOPIA_PASSWORD=" + kopiaPassword,
		"REFRESH_INTERVAL=1s", "MAX_INDEX_AGE=10s",
	}}

	if os.Geteuid() == 0 {
		opts.UID = 65534 // nobody: kopia's files are 0600, owned by root
	} else {
		require.NoError(t, os.Chmod(filepath.Join(w.cli.Path, "kopia.repository.f"), 0))
	}

	start := time.Now()
	o := harness.StartOracle(t, opts)

	eventuallyReason(t, o, "read repository format blob", 10*time.Second)
	assert.Less(t, time.Since(start), 5*time.Second, "detected without kopia's 11-second retry loop")

	r := o.Get(t, "/exists/web/nothing")
	assert.Equal(t, http.StatusServiceUnavailable, r.Code)
	assert.Contains(t, r.Body["error"], "permission denied")
	assert.Equal(t, http.StatusOK, o.Get(t, "/healthz").Code, "alive: a restart would not fix permissions")
	assert.False(t, o.Exited())
}

func TestCheckConfig(t *testing.T) {
	cases := []struct {
		name string
		env  []string
		ok   bool
		want string
	}{
		{"valid", []string{"KOPIA_REPOSITORY_PATH=/repo", "KOPIA_PASSWORD=x"}, true, "configuration ok"},
		{"everything wrong at once", []string{"BACKEND_TYPE=nfs", "PORT=0", "MAX_INDEX_AGE=10s", "REFRESH_INTERVAL=1m"}, false,
			"unknown type \"nfs\": valid types are"},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(oracleBin, "--check-config") //nolint:gosec // the binary under test
			cmd.Env = tc.env
			out, err := cmd.CombinedOutput()

			if tc.ok {
				require.NoError(t, err, "%s", out)
			} else {
				require.Error(t, err)
				assert.Contains(t, string(out), "PORT 0")
				assert.Contains(t, string(out), "MAX_INDEX_AGE (10s) must exceed REFRESH_INTERVAL (1m0s)")
			}

			assert.Contains(t, string(out), tc.want)
		})
	}
}

// TestCheckConfigOpens: --check-config --open opens the repository read-only and exits non-zero
// on every problem a moment after start would show, so it can run as an init container.
func TestCheckConfigOpens(t *testing.T) {
	w := newKopiaWorld(t)
	good := w.passwordFile(t, kopiaPassword)
	empty := t.TempDir()

	cases := []struct {
		name string
		env  []string
		code int
		out  string
	}{
		{"opens", nil, 0, "opened: 6 sources (5 fit the identity settings), 7 snapshots, repository id "},
		{"wrong path", []string{"KOPIA_REPOSITORY_PATH=" + filepath.Join(w.base, "nope")}, 1, "no such file or directory"},
		{"empty directory", []string{"KOPIA_REPOSITORY_PATH=" + empty}, 1, "no kopia repository in " + empty},
		{"missing password file", []string{"KOPIA_PASSWORD_FILE=" + filepath.Join(w.base, "absent")}, 1, "kopia password: read secret file"},
		{"wrong password", []string{"KOPIA_PASSWORD_FILE=" + w.passwordFile(t, "wrong")}, 1, "invalid repository password"},
		{"identity settings that fit nothing", []string{"KOPIA_PATH=/mnt/data"}, 1, "none of them one the identity settings could have produced"},
		{"the explicit override opens, the layout fit still fails", []string{"KOPIA_PATH=/mnt/data", "ALLOW_EMPTY_INDEX=true"}, 1,
			"opened: 6 sources (0 fit the identity settings)"},
		{"wrong pin", []string{"KOPIA_REPOSITORY_ID=" + strings.Repeat("00", 32)}, 1, "but KOPIA_REPOSITORY_ID pins 0000"},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(oracleBin, "--check-config", "--open")
			cmd.Env = append([]string{"PATH=/usr/bin:/bin", "TMPDIR=" + os.TempDir(), "BACKEND_TYPE=kopia-fs",
				"KOPIA_REPOSITORY_PATH=" + w.cli.Path, "KOPIA_PASSWORD_FILE=" + good}, tc.env...)

			out, err := cmd.CombinedOutput()

			code := 0
			if err != nil {
				var exit *exec.ExitError
				require.ErrorAs(t, err, &exit, "%s", out)
				code = exit.ExitCode()
			}

			assert.Equal(t, tc.code, code, "%s", out)
			assert.Contains(t, string(out), tc.out)
			assert.Contains(t, string(out), "backend 1: kopia-fs (kopia-fs): repository /", "the repository location is printed")
			assert.NotContains(t, string(out), kopiaPassword)
		})
	}
}

// TestKopiaSnapshotsDeleted: kopia deletes a snapshot by writing a deletion marker, a later
// manifest entry for the same id; when every snapshot of a source is deleted, nothing
// restorable is left and the answer turns fresh.
func TestKopiaSnapshotsDeleted(t *testing.T) {
	w := newKopiaWorld(t)
	o := w.start(t, "KOPIA_PASSWORD_FILE="+w.passwordFile(t, kopiaPassword))
	o.WaitReady(t, 30*time.Second)
	require.Equal(t, "restore", decision(t, o, "/exists/web/app"))

	var list []struct {
		ID string `json:"id"`
	}

	require.NoError(t, json.Unmarshal([]byte(w.cli.Run("snapshot", "list", "--json", "app-backup@web:/data")), &list))
	require.Len(t, list, 2)

	w.cli.Run("snapshot", "delete", list[0].ID, "--delete")
	eventuallySnapshots(t, o, "/exists/web/app", 1, 20*time.Second)

	w.cli.Run("snapshot", "delete", list[1].ID, "--delete")
	eventually(t, o, "/exists/web/app", "fresh", 20*time.Second)
	assert.Equal(t, "restore", decision(t, o, "/exists/web/my.app.data"), "other sources are untouched")
}

func eventuallySnapshots(t *testing.T, o *harness.Oracle, path string, n float64, within time.Duration) {
	t.Helper()

	deadline := time.Now().Add(within)
	for {
		r := o.Get(t, path)
		if r.Body["snapshotCount"] == n {
			return
		}

		if time.Now().After(deadline) {
			t.Fatalf("%s: want %v snapshots within %s, last answer %v", path, n, within, r.Body)
		}

		time.Sleep(50 * time.Millisecond)
	}
}
