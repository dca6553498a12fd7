package integration

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness"
)

// volsyncWorld is a repository written by the real kopia CLI under the predecessor's layout
// (RS and RD named "<pvc>-volsync"), hand-written sources.
func volsyncWorld(t *testing.T, extra ...string) *kopiaWorld {
	t.Helper()

	w := newEmptyKopiaWorld(t)

	for _, src := range append([]string{
		"data-volsync@media:/data", "jellyfin-config-volsync@media:/data", "sonarr-volsync@media:/data", "radarr-volsync@media:/data",
	}, extra...) {
		w.cli.Snapshot(w.data, src)
	}

	return w
}

// checkConfigOpen runs --check-config --open on w's repository and returns its exit code and
// output.
func checkConfigOpen(t *testing.T, w *kopiaWorld, env ...string) (int, string) {
	t.Helper()

	return runCheckConfigOpen(t, append([]string{"BACKEND_TYPE=kopia-fs",
		"KOPIA_REPOSITORY_PATH=" + w.cli.Path, "KOPIA_PASSWORD_FILE=" + w.passwordFile(t, kopiaPassword)}, env...)...)
}

// runCheckConfigOpen runs --check-config --open with only env (and PATH, TMPDIR) and returns its
// exit code and output.
func runCheckConfigOpen(t *testing.T, env ...string) (int, string) {
	t.Helper()

	cmd := exec.Command(oracleBin, "--check-config", "--open") //nolint:gosec // the binary under test
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "TMPDIR=" + os.TempDir()}, env...)

	out, err := cmd.CombinedOutput()
	if err != nil {
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit, "%s", out)

		return exit.ExitCode(), string(out)
	}

	return 0, string(out)
}

// TestNeverSilentByRule: the rows through the real program, on repositories written by
// the real kopia CLI: a layout nobody listed is a near miss naming the setting that fixes it,
// the settings' minority fit is reported (status, metric, --check-config --open), and the
// movers' default path is not read as a PVC name.
func TestNeverSilentByRule(t *testing.T) {
	t.Run("{pvc} over a <pvc>-volsync repository", func(t *testing.T) {
		w := volsyncWorld(t)
		env := []string{"KOPIA_PASSWORD_FILE=" + w.passwordFile(t, kopiaPassword), "KOPIA_SOURCE_NAME_TEMPLATE={pvc}"}
		o := w.start(t, env...)
		o.WaitReady(t, 30*time.Second)

		r := o.Get(t, "/exists/media/data")
		assert.Equal(t, http.StatusServiceUnavailable, r.Code)
		assert.Equal(t, "unknown", r.Body["decision"], "%v", r.Body)
		assert.Contains(t, r.Body["error"], "data-volsync@media:/data")
		assert.Contains(t, r.Body["error"], "KOPIA_SOURCE_NAME_TEMPLATE={pvc}-volsync")
		assert.Equal(t, "restore", decision(t, o, "/exists/media/data-volsync"), "PVC data-volsync's own identity")

		st := status(t, o)
		layout, ok := st["layout"].(map[string]any)
		require.True(t, ok, "%v", st)
		assert.Contains(t, layout["warning"], "KOPIA_SOURCE_NAME_TEMPLATE={pvc}-volsync")
		assert.Equal(t, "{pvc}-volsync", layout["otherSchemes"].([]any)[0].(map[string]any)["scheme"])

		_, metrics := get(t, o.URL+"/metrics")
		assert.Contains(t, metrics, `backup_oracle_index_layout_fit_ratio{backend="kopia-fs"} 0`)
		assert.Eventually(t, func() bool { return strings.Contains(o.Stderr(), "identity settings fit a minority of the sources") }, 10*time.Second, 50*time.Millisecond)

		code, out := checkConfigOpen(t, w, "KOPIA_SOURCE_NAME_TEMPLATE={pvc}")
		assert.Equal(t, 1, code, out)
		assert.Contains(t, out, "fit 0 of the 4 sources")
		assert.Contains(t, out, "set KOPIA_SOURCE_NAME_TEMPLATE={pvc}-volsync")

		code, out = checkConfigOpen(t, w, "KOPIA_SOURCE_NAME_TEMPLATE={pvc}-volsync")
		assert.Equal(t, 0, code, "the setting the message names: %s", out)
	})

	t.Run("default settings, the same repository and one stray fitting source", func(t *testing.T) {
		w := volsyncWorld(t, "paperless-backup@documents:/data")
		pw := "KOPIA_PASSWORD_FILE=" + w.passwordFile(t, kopiaPassword)
		o := w.start(t, pw)
		o.WaitReady(t, 30*time.Second)

		r := o.Get(t, "/exists/media/jellyfin-config")
		assert.Equal(t, "unknown", r.Body["decision"], "%v", r.Body)
		assert.Contains(t, r.Body["error"], "jellyfin-config-volsync@media:/data")
		assert.Equal(t, "fresh", decision(t, o, "/exists/media/jellyfin"), "a prefix of a stored name is not a near miss")
		assert.Equal(t, "restore", decision(t, o, "/exists/documents/paperless"))

		code, out := checkConfigOpen(t, w)
		assert.Equal(t, 1, code, out)
		assert.Contains(t, out, "fit 1 of the 5 sources")

		code, out = checkConfigOpen(t, w, "KOPIA_OTHER_SCHEMES={pvc}-volsync")
		assert.Equal(t, 0, code, "declared on purpose: %s", out)

		declared := w.start(t, pw, "KOPIA_OTHER_SCHEMES={pvc}-volsync")
		declared.WaitReady(t, 30*time.Second)
		assert.Equal(t, "unknown", decision(t, declared, "/exists/media/jellyfin-config"), "a declared layout still holds data: a near miss")
	})

	t.Run("a PVC named data among <app>@<ns>:/data sources", func(t *testing.T) {
		w := newEmptyKopiaWorld(t)
		for _, src := range []string{"redis@shop:/data", "postgres@shop:/data", "web@shop:/data"} {
			w.cli.Snapshot(w.data, src)
		}

		o := w.start(t, "KOPIA_PASSWORD_FILE="+w.passwordFile(t, kopiaPassword), "KOPIA_SOURCE_NAME_TEMPLATE={pvc}")
		o.WaitReady(t, 30*time.Second)

		r := o.Get(t, "/exists/shop/data")
		assert.Equal(t, "fresh", r.Body["decision"], "/data is the movers' default path, not a name: %v", r.Body)
		assert.Nil(t, r.Body["nearMiss"])
		assert.Equal(t, "restore", decision(t, o, "/exists/shop/redis"))
	})
}

// TestRefusalShowsTheSources: identity settings that fit no source make the backend not ready;
// /status then shows what was read (sources, the schemes they follow), not "sources: 0".
func TestRefusalShowsTheSources(t *testing.T) {
	w := volsyncWorld(t)
	o := w.start(t, "KOPIA_PASSWORD_FILE="+w.passwordFile(t, kopiaPassword))

	eventuallyReason(t, o, "none of them one the identity settings could have produced", 30*time.Second)

	st := status(t, o)
	refused, ok := st["refused"].(map[string]any)
	require.True(t, ok, "%v", st)
	assert.InDelta(t, 4, refused["sources"], 0)
	assert.InDelta(t, 0, refused["fittingSources"], 0)
	assert.Contains(t, refused["layout"].(map[string]any)["warning"], "KOPIA_SOURCE_NAME_TEMPLATE={pvc}-volsync")
}

// status returns the first backend of /status.
func status(t *testing.T, o *harness.Oracle) map[string]any {
	t.Helper()

	_, body := get(t, o.URL+"/status")

	var st struct {
		Backends []map[string]any `json:"backends"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &st), body)
	require.NotEmpty(t, st.Backends)

	return st.Backends[0]
}
