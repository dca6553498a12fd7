package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/repo"
	"github.com/backup-oracle/backup-oracle/server"
)

// fakeGate is a server.Gate returning its function's status.
type fakeGate func() repo.GateStatus

func (f fakeGate) Status() repo.GateStatus { return f() }

func disarmed() repo.GateStatus {
	return repo.GateStatus{
		State:     repo.GateDisarmed,
		Reason:    "the dry-run create of canary backup-oracle-canary/backup-oracle-canary-5eed was admitted: no policy refused it",
		LastCheck: now.Add(-time.Minute), Interval: 5 * time.Minute,
		Canary:    repo.PVC{Namespace: "backup-oracle-canary", Name: "backup-oracle-canary-5eed"},
		Uncovered: []repo.UncoveredNamespace{{Namespace: "kube-system", Sources: 2, Backends: []string{"kopia-fs"}}},
	}
}

func newGateServer(t *testing.T, o server.Oracle, g server.Gate) http.Handler {
	t.Helper()

	reg := prometheus.NewRegistry()
	h, err := server.New(server.Options{Oracle: o, Registerer: reg, Gatherer: reg, Now: func() time.Time { return now }, Gate: g})
	require.NoError(t, err)

	return h
}

// TestStatusShowsTheGate: /status carries the gate's state, reason, last check and the
// namespaces whose backups are never checked; /readyz ignores the gate (it must not depend on
// itself).
func TestStatusShowsTheGate(t *testing.T) {
	h := newGateServer(t, oracle(), fakeGate(disarmed))

	rec := get(h, http.MethodGet, "/status")
	require.Equal(t, http.StatusOK, rec.Code)
	golden(t, "status-gate.json", rec.Body.Bytes())

	rec = get(h, http.MethodGet, "/readyz")
	assert.Equal(t, http.StatusOK, rec.Code, "a disarmed gate does not make the oracle unready")

	before := fakeGate(func() repo.GateStatus {
		return repo.GateStatus{State: repo.GateUnchecked, Reason: "no check yet: the first runs once the server listens", Interval: 5 * time.Minute}
	})
	rec = get(newGateServer(t, oracle(), before), http.MethodGet, "/status")
	assert.Contains(t, rec.Body.String(), `"gate":{"state":"unchecked","reason":"no check yet: the first runs once the server listens","intervalSeconds":300,"uncoveredNamespaces":[]}`,
		"before the first check: no lastCheck, no canary, an empty list")

	rec = get(newGateServer(t, oracle(), nil), http.MethodGet, "/status")
	assert.NotContains(t, rec.Body.String(), `"gate"`, "no gate configured: no gate on /status")
}

// TestConsoleShowsTheGate: the console shows the state, why, when, and each namespace whose
// backups are never checked, escaped.
func TestConsoleShowsTheGate(t *testing.T) {
	st := disarmed()
	st.Uncovered = append(st.Uncovered, repo.UncoveredNamespace{Namespace: "<b>x</b>", Sources: 1, Backends: []string{"kopia-fs"}})

	page := get(newGateServer(t, oracle(), fakeGate(func() repo.GateStatus { return st })), http.MethodGet, "/").Body.String()

	assert.Contains(t, page, `<span id="gate-state" class="decision gate-disarmed">disarmed</span>`)
	assert.Contains(t, page, `last check 2026-11-21 11:59:00Z`)
	assert.Contains(t, page, `canary <code>backup-oracle-canary/backup-oracle-canary-5eed</code>`)
	assert.Contains(t, page, `<p id="gate-reason" class="error">the dry-run create of canary backup-oracle-canary/backup-oracle-canary-5eed was admitted`)
	assert.Contains(t, page, `backups exist for namespace kube-system, but its PVCs are never checked`)
	assert.Contains(t, page, `backups exist for namespace &lt;b&gt;x&lt;/b&gt;`)
	assert.NotContains(t, page, `<b>x</b>`)
	assert.Less(t, strings.Index(page, "Gate self-test"), strings.Index(page, "Will this PVC restore?"), "the gate comes first")

	armed := fakeGate(func() repo.GateStatus {
		return repo.GateStatus{State: repo.GateArmed, Reason: "refused with the oracle's canary answer", LastCheck: now, Interval: time.Minute}
	})
	page = get(newGateServer(t, oracle(), armed), http.MethodGet, "/").Body.String()
	assert.Contains(t, page, `class="decision gate-armed">armed</span>`)
	assert.Contains(t, page, `<p id="gate-reason" class="muted">`)
	assert.NotContains(t, page, "never checked")

	page = get(newGateServer(t, oracle(), nil), http.MethodGet, "/").Body.String()
	assert.NotContains(t, page, "Gate self-test", "no gate configured")
}
