package integration

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness"
)

// replica is a StatefulSet replica's PVC name without its ordinal: "<pvc>-backup" of "-0" and
// "-1" share their first 50 characters.
const replica = "prometheus-kube-prometheus-stack-prometheus-db-prometheus-kube-prometheus-stack-prometheus-"

// nearMissWorld is a repository written by the real kopia CLI under the identities of other
// naming schemes (hand-written strings), next to the default ones.
func nearMissWorld(t *testing.T) *kopiaWorld {
	t.Helper()

	w := newKopiaWorld(t)
	for _, src := range []string{
		"prometheus-kube-prometheus-stack-prometheus-db-pro@monitoring:/data", // replica 0, cut by the mover: shared
		"redis-backup@shop:/var/lib/redis",                                    // sourcePathOverride
		"postgres-backup@staging:/data",                                       // the same PVC name in another namespace
		"gitea@dev:/data",                                                     // RS ${APP}
		"daily@media.cluster-b:/pvc/jellyfin",                                 // kopiur
	} {
		w.cli.Snapshot(w.data, src)
	}

	return w
}

// TestNearMissGuard: the three kinds of silent wrong answer of the issue, and the precision
// case, through the real program on a repository written by the real kopia CLI.
func TestNearMissGuard(t *testing.T) {
	w := nearMissWorld(t)
	pw := "KOPIA_PASSWORD_FILE=" + w.passwordFile(t, kopiaPassword)

	deny := w.start(t, pw)
	deny.WaitReady(t, 30*time.Second)

	cases := []struct {
		path     string
		decision string
		near     string // the near miss named, "" for none
	}{
		{"/exists/monitoring/" + replica + "0", "unknown", "prometheus-kube-prometheus-stack-prometheus-db-pro@monitoring:/data"},
		{"/exists/monitoring/" + replica + "1", "unknown", "prometheus-kube-prometheus-stack-prometheus-db-pro@monitoring:/data"},
		{"/exists/shop/redis", "unknown", "redis-backup@shop:/var/lib/redis"},
		{"/exists/dev/gitea", "unknown", "gitea@dev:/data"},
		{"/exists/media/jellyfin", "unknown", "daily@media.cluster-b:/pvc/jellyfin"},
		{"/exists/shop/postgres", "fresh", ""}, // precision: staging/postgres's backup is not shop/postgres's
		{"/exists/web/nothing", "fresh", ""},
		{"/exists/web/app", "restore", ""},
	}

	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			r := deny.Get(t, tc.path)
			assert.Equal(t, tc.decision, r.Body["decision"], "%v", r.Body)

			if tc.near == "" {
				assert.Nil(t, r.Body["nearMiss"])
				return
			}

			assert.Equal(t, http.StatusServiceUnavailable, r.Code)
			assert.Contains(t, r.Body["error"], "near miss: ")
			assert.Contains(t, r.Body["error"], tc.near)
			assert.Contains(t, r.Body["error"], "backup-oracle.io/accept-near-miss")

			accepted := deny.Get(t, tc.path+"?accept=near-miss")
			assert.Equal(t, http.StatusOK, accepted.Code)
			assert.Equal(t, "fresh", accepted.Body["decision"])
			assert.Equal(t, "near-miss", accepted.Body["accepted"])
		})
	}

	assert.Equal(t, http.StatusBadRequest, deny.Get(t, "/exists/shop/redis?accept=all").Code)
	assert.Contains(t, deny.Stderr(), "near miss accepted", "an acceptance is logged")

	_, metrics := get(t, deny.URL+"/metrics")
	assert.Contains(t, metrics, `backup_oracle_guard_total{guard="near-miss",outcome="denied"}`)
	assert.Contains(t, metrics, `backup_oracle_guard_total{guard="near-miss",outcome="accepted"}`)

	t.Run("NEAR_MISS=warn answers fresh and says why", func(t *testing.T) {
		o := w.start(t, pw, "NEAR_MISS=warn")
		o.WaitReady(t, 30*time.Second)

		r := o.Get(t, "/exists/shop/redis")
		assert.Equal(t, "fresh", r.Body["decision"])
		assert.NotNil(t, r.Body["nearMiss"])
		assert.Contains(t, r.Body["warnings"], "near miss (NEAR_MISS=warn, answered fresh): redis-backup@shop:/var/lib/redis (same username and hostname, another path, backend kopia-fs)")
	})

	t.Run("NEAR_MISS=off", func(t *testing.T) {
		o := w.start(t, pw, "NEAR_MISS=off")
		o.WaitReady(t, 30*time.Second)

		r := o.Get(t, "/exists/shop/redis")
		assert.Equal(t, "fresh", r.Body["decision"])
		assert.Nil(t, r.Body["nearMiss"])
	})
}

// TestExpectedBackupsLedger: a listed PVC without backup is never fresh; a malformed ledger
// makes no PVC fresh; both are re-read while running.
func TestExpectedBackupsLedger(t *testing.T) {
	w := newKopiaWorld(t)
	ledgerFile := filepath.Join(t.TempDir(), "expected-backups.yaml")
	require.NoError(t, os.WriteFile(ledgerFile, []byte("pvcs:\n  - web/app\n  - web/lost\n"), 0o600))

	o := w.start(t, "KOPIA_PASSWORD_FILE="+w.passwordFile(t, kopiaPassword), "EXPECTED_BACKUPS_FILE="+ledgerFile)
	o.WaitReady(t, 30*time.Second)

	lost := o.Get(t, "/exists/web/lost")
	assert.Equal(t, http.StatusServiceUnavailable, lost.Code)
	assert.Contains(t, lost.Body["error"], "expected a backup: web/lost is listed in the expected-backups ledger, but no snapshot was found under lost-backup@web:/data")
	assert.Equal(t, "restore", decision(t, o, "/exists/web/app"), "a listed PVC with a backup restores")
	assert.Equal(t, "fresh", decision(t, o, "/exists/web/nothing"), "an unlisted PVC without backup is fresh")

	require.NoError(t, os.WriteFile(ledgerFile, []byte("pvcs: [web/app\n"), 0o600))
	eventually(t, o, "/exists/web/nothing", "unknown", 20*time.Second)
	assert.Contains(t, o.Get(t, "/exists/web/nothing").Body["error"], "the expected-backups ledger cannot be read")
	assert.Equal(t, "restore", decision(t, o, "/exists/web/app"), "restore does not depend on the ledger")

	_, metrics := get(t, o.URL+"/metrics")
	assert.Contains(t, metrics, "backup_oracle_expected_backups_error 1")

	require.NoError(t, os.WriteFile(ledgerFile, []byte("pvcs: [web/app]\n"), 0o600))
	eventually(t, o, "/exists/web/lost", "fresh", 20*time.Second)

	_, metrics = get(t, o.URL+"/metrics")
	assert.Contains(t, metrics, "backup_oracle_expected_backups 1")
	assert.Contains(t, metrics, "backup_oracle_guard_total{guard=\"expected-backup\",outcome=\"denied\"}")
}

// TestRepositoryPinAndRecreation: a repository wiped and re-created at the same path (holding
// another PVC's snapshot, so neither empty nor identity-less) is refused, pinned or not; the
// right pin is accepted, a wrong one refused.
func TestRepositoryPinAndRecreation(t *testing.T) {
	w := newKopiaWorld(t)
	pw := "KOPIA_PASSWORD_FILE=" + w.passwordFile(t, kopiaPassword)

	unpinned := w.start(t, pw)
	unpinned.WaitReady(t, 30*time.Second)

	st := unpinned.Get(t, "/status").Body["backends"].([]any)[0].(map[string]any)
	id, _ := st["repositoryID"].(string)
	require.Len(t, id, 64, "/status shows the repository id: %v", st)
	assert.Contains(t, unpinned.Stderr(), "KOPIA_REPOSITORY_ID="+id, "the log says how to pin it")

	pinned := w.start(t, pw, "KOPIA_REPOSITORY_ID="+id)
	pinned.WaitReady(t, 30*time.Second)
	assert.Equal(t, "restore", decision(t, pinned, "/exists/web/app"))

	wrong := w.start(t, pw, "KOPIA_REPOSITORY_ID="+strings.Repeat("ab", 32))
	eventuallyReason(t, wrong, "but KOPIA_REPOSITORY_ID pins "+strings.Repeat("ab", 32), 20*time.Second)
	assert.Equal(t, "unknown", decision(t, wrong, "/exists/web/nothing"))

	require.NoError(t, os.RemoveAll(w.cli.Path))
	cli := harness.NewKopiaRepository(t, w.cli.Path, kopiaPassword)
	cli.Snapshot(w.data, "other-backup@web:/data")

	for name, o := range map[string]*harness.Oracle{"unpinned": unpinned, "pinned": pinned} {
		eventuallyReason(t, o, "repository mismatch", 20*time.Second)

		r := o.Get(t, "/exists/web/nothing")
		assert.Equal(t, "unknown", r.Body["decision"], name)
		assert.Contains(t, r.Body["error"], id, name+": the answer names the expected id")
		assert.Equal(t, "unknown", decision(t, o, "/exists/web/app"), name+": nothing is answered from another repository")

		_, metrics := get(t, o.URL+"/metrics")
		assert.Contains(t, metrics, `backup_oracle_repository_mismatch{backend="kopia-fs"} 1`, name)
	}
}
