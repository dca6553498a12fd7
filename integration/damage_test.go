package integration

import (
	"context"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness/kopiamover"
	"github.com/backup-oracle/backup-oracle/repo"
	"github.com/backup-oracle/backup-oracle/repo/kopia/kopiademo"
)

// ruleUnloadable is the rule the damaged-repository tests guard.
const ruleUnloadable = "rule: a source whose snapshot manifest cannot be loaded is unknown, never fresh (README: How a decision is made, step 3)"

// TestKopiaUnverifiableSources: a snapshot manifest the repository lists but whose payload does
// not load (see harness/kopiadamage.go), and a source holding only the checkpoint of an
// interrupted backup, make their PVCs unknown through the real program, while every other PVC is
// answered.
func TestKopiaUnverifiableSources(t *testing.T) {
	w := newKopiaWorld(t)
	w.cli.AddUndecodableSnapshotManifest(kopiamover.PolicySource("web", "broken")) // only this manifest
	w.cli.AddUndecodableSnapshotManifest(kopiamover.PolicySource("web", "app"))    // next to two good ones

	// A checkpoint, as kopia saves during a long upload and leaves behind when the mover is
	// killed; the CLI only leaves one when interrupted, so it is written with the kopia library.
	user, rest, _ := strings.Cut(kopiamover.PolicySource("web", "interrupted"), "@")
	host, path, _ := strings.Cut(rest, ":")
	require.NoError(t, kopiademo.Write(context.Background(), w.cli.Path, kopiaPassword, t.TempDir(), []kopiademo.Backup{
		{Source: repo.KopiaSource{UserName: user, Host: host, Path: path}, Dir: w.data, Incomplete: true},
	}))

	o := w.start(t, "KOPIA_PASSWORD_FILE="+w.passwordFile(t, kopiaPassword))
	o.WaitReady(t, 60*time.Second)

	for _, pvc := range []string{"broken", "app"} {
		r := o.Get(t, "/exists/web/"+pvc)
		assert.Equal(t, http.StatusServiceUnavailable, r.Code, "%s: %s", pvc, ruleUnloadable)
		assert.Equal(t, "unknown", r.Body["decision"], "%s: %s", pvc, ruleUnloadable)
		assert.Equal(t, false, r.Body["authoritative"])
		assert.Equal(t, kopiamover.PolicySource("web", pvc), r.Body["source"])
		assert.Contains(t, r.Body["error"], "decode snapshot manifest", "the reason names what failed")
	}

	r := o.Get(t, "/exists/web/interrupted")
	assert.Equal(t, "unknown", r.Body["decision"],
		"rule: a source with only incomplete snapshots is unknown, never fresh (README: How a decision is made, step 3)")
	assert.Contains(t, r.Body["error"], "incomplete")

	assert.Equal(t, "restore", decision(t, o, "/exists/web/my.app.data"), "other PVCs are answered")
	assert.Equal(t, "fresh", decision(t, o, "/exists/web/nothing"))
	assert.Equal(t, http.StatusOK, o.Get(t, "/readyz").Code, "one unloadable source does not make the service unready")
}

// TestKopiaCorruptManifestBlob: a manifest content whose bytes are damaged in its pack blob makes
// the whole manifest list unreadable: not ready, every PVC unknown, whatever kopia's environment
// says (KOPIA_IGNORE_MALFORMED_MANIFEST_CONTENTS would make kopia skip it, turning the damaged
// source into "no snapshot").
func TestKopiaCorruptManifestBlob(t *testing.T) {
	w := newKopiaWorld(t)
	w.cli.SnapshotWithCorruptManifest(w.data, kopiamover.PolicySource("web", "damaged"))

	for _, env := range [][]string{nil, {"KOPIA_IGNORE_MALFORMED_MANIFEST_CONTENTS=1"}} {
		t.Run(map[bool]string{true: "default", false: "kopia told to ignore malformed manifests"}[env == nil], func(t *testing.T) {
			o := w.start(t, append(env, "KOPIA_PASSWORD="+kopiaPassword)...)

			want := "manifest content unreadable"
			if env != nil {
				want = "KOPIA_IGNORE_MALFORMED_MANIFEST_CONTENTS is set"
			}

			eventuallyReason(t, o, want, 60*time.Second)

			for _, pvc := range []string{"damaged", "app", "nothing"} {
				r := o.Get(t, "/exists/web/"+pvc)
				assert.Equal(t, http.StatusServiceUnavailable, r.Code, "%s: %s", pvc, ruleUnloadable)
				assert.Equal(t, "unknown", r.Body["decision"], "%s: %s", pvc, ruleUnloadable)
			}

			assert.False(t, o.Exited())
		})
	}
}

// TestOracleBuiltWithRace: under `go test -race` the real program runs with the race detector.
func TestOracleBuiltWithRace(t *testing.T) {
	out, err := exec.Command("go", "version", "-m", oracleBin).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, raceEnabled, strings.Contains(string(out), "-race=true"), "go version -m:\n%s", out)
}
