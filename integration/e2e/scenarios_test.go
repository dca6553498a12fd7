//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness/kopiamover"
)

// longPVC has 61 characters: its Kopia username is cut to 50 (and it fits the CEL set's 63).
const longPVC = "analytics-warehouse-clickhouse-data-volume-claim-replica-0001"

// comebackPVC has a backup too; it is created once the oracle is back after the outage.
const comebackPVC = "comeback"

// restoredPVCs have a snapshot in the repository in every test namespace.
var restoredPVCs = []struct{ name, label string }{ //nolint:gochecknoglobals // test table
	{"postgres", "hourly"}, {"my.app.data", "daily"}, {longPVC, "daily"},
}

// hangBound is the documented bound on a create while the oracle hangs: one service call per
// webhook, each cut at Kyverno's --apiCallTimeout (5 s), so 5 s in the mutating and 5 s in the
// validating webhook (measured: 10.0 s), plus a margin for a loaded 2-core machine. (With the
// CEL set, the mutating webhook's 10 s timeout.) It stays below 20 s, what two webhooks each
// running into the API server's 10 s webhook timeout would take: that failure still shows.
const hangBound = 18 * time.Second

// measurement is one create through the API server.
type measurement struct {
	set, scenario, pvc string
	code               int
	latency            time.Duration
	calls              int
}

// measurements collects the creates of every version, run concurrently.
type measurements struct {
	mu    sync.Mutex
	items []measurement
}

func (m *measurements) add(x measurement) {
	m.mu.Lock()
	defer m.mu.Unlock()

	m.items = append(m.items, x)
}

// run holds what one policy set's scenarios share.
type run struct {
	t        *testing.T
	maxCalls int
	k        *kube
	o        *oracle
	set      string // version/engine, for the measurements
	engine   string
	ns       string
	results  *measurements
	last     measurement // the last create
}

func pvcPath(ns, name string) string {
	return "/api/v1/namespaces/" + ns + "/persistentvolumeclaims/" + name
}

func volsyncPath(ns, kind, name string) string {
	return "/apis/volsync.backube/v1alpha1/namespaces/" + ns + "/" + kind + "/" + name
}

// create POSTs a 1Gi ReadWriteOnce PVC (label empty: unlabelled) and records latency and the
// service calls it cost.
func (r *run) create(scenario, ns, name, label string) apiResult {
	r.t.Helper()

	return r.createAnnotated(scenario, ns, name, label, nil)
}

// createAnnotated is create with metadata.annotations (nil: none).
func (r *run) createAnnotated(scenario, ns, name, label string, annotations map[string]string) apiResult {
	r.t.Helper()

	pvc := map[string]any{
		"apiVersion": "v1", "kind": "PersistentVolumeClaim",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"spec": map[string]any{
			"accessModes": []string{"ReadWriteOnce"},
			"resources":   map[string]any{"requests": map[string]any{"storage": "1Gi"}},
		},
	}
	if label != "" {
		pvc["metadata"].(map[string]any)["labels"] = map[string]string{"backup": label} //nolint:forcetypeassert // built above
	}

	if annotations != nil {
		pvc["metadata"].(map[string]any)["annotations"] = annotations //nolint:forcetypeassert // built above
	}

	before := -1
	if !r.o.proc.Exited() {
		before = r.o.calls(r.t)
	}

	res := r.k.do(r.t, http.MethodPost, "/api/v1/namespaces/"+ns+"/persistentvolumeclaims", pvc, "")

	m := measurement{set: r.set, scenario: scenario, pvc: name, code: res.Code, latency: res.Elapsed, calls: -1}
	if before >= 0 && !r.o.proc.Exited() {
		m.calls = r.o.calls(r.t) - before
	}

	r.results.add(m)
	r.last = m

	if label != "" {
		assert.LessOrEqual(r.t, m.calls, r.maxCalls, "%s: service calls for one PVC", name)
	}
	r.t.Logf("%s: create %s/%s (%s): %d in %s, %d service calls", scenario, ns, name, label, res.Code,
		res.Elapsed.Round(time.Millisecond), m.calls)

	if res.Code != http.StatusCreated {
		r.t.Logf("%s: %s", scenario, res.Message())
	}

	return res
}

// waitFor polls GET path until it exists (or, want false, is gone).
func (r *run) waitFor(path string, want bool, within time.Duration) map[string]any {
	r.t.Helper()

	var obj map[string]any

	took, ok := eventually(within, 100*time.Millisecond, func() bool {
		res := r.k.get(r.t, path)
		obj = res.Body

		return (res.Code == http.StatusOK) == want
	})
	require.True(r.t, ok, "%s: exists=%v not reached within %s", path, want, within)
	r.t.Logf("%s: exists=%v after %s", path, want, took.Round(time.Millisecond))

	return obj
}

// restores: labelled PVCs with a backup are created with dataSourceRef to their RD, the RD is
// generated, and its Kopia identity is the one the oracle looked up and kopia wrote.
func (r *run) restores() {
	t := r.t
	for _, p := range restoredPVCs {
		res := r.create("restore", r.ns, p.name, p.label)
		require.Equal(t, http.StatusCreated, res.Code, res.Raw)

		want := map[string]any{"apiGroup": "volsync.backube", "kind": "ReplicationDestination", "name": p.name + "-backup"}
		assert.Equal(t, want, nested(res.Body, "spec", "dataSourceRef"), "stored dataSourceRef of %s", p.name)

		uid := str(res.Body, "metadata", "uid")
		rd := r.waitFor(volsyncPath(r.ns, "replicationdestinations", p.name+"-backup"), true, 15*time.Second)
		assert.Equal(t, wantRDSpec(t, r.ns, p.name, uid), rd["spec"], "RD spec of %s (a field unknown to the CRD would be pruned)", p.name)
		assert.Equal(t, uid, str(rd, "metadata", "labels", "backup-oracle.io/pvc-uid"))
		assert.Equal(t, p.name, str(rd, "metadata", "annotations", "backup-oracle.io/pvc"))

		looked := r.o.lookup(t, r.ns, p.name)
		assert.Equal(t, "restore", looked.Body["decision"])
		restores, err := kopiamover.DestinationOf(rd).Source()
		require.NoError(t, err, "the Kopia mover refuses the generated RD of %s", p.name)
		assert.Equal(t, restores, looked.Body["source"], "the RD's Kopia identity (mover rules) must be what the oracle looked up")

		r.waitFor("/api/v1/namespaces/"+r.ns+"/secrets/volsync-"+p.name, true, 15*time.Second)
		r.assertFindsRepository(rd)
	}
}

// untouched: a labelled PVC without backup is created unchanged; an unlabelled PVC and a
// labelled one in an excluded namespace are untouched and cost no service call.
func (r *run) untouched() {
	t := r.t

	for _, c := range []struct{ scenario, ns, name, label string }{
		{"fresh", r.ns, "fresh-app", "daily"},
		{"unlabelled", r.ns, "plain", ""},
		{"excluded namespace", "volsync-system", "system-" + r.engine, "hourly"},
	} {
		res := r.create(c.scenario, c.ns, c.name, c.label)
		require.Equal(t, http.StatusCreated, res.Code, res.Raw)
		assert.Nil(t, nested(res.Body, "spec", "dataSourceRef"), "%s: dataSourceRef", c.name)
		assert.Nil(t, nested(res.Body, "spec", "dataSource"), "%s: dataSource", c.name)

		if c.label == "" || c.ns == "volsync-system" {
			assert.Equal(t, 0, r.last.calls, "%s: service calls", c.name)
		}
	}

	// Generation is asynchronous: the Secret of the fresh PVC proves the background controller
	// has taken up its generate requests, and no request left pending proves it has finished
	// them (Kyverno deletes a completed UpdateRequest); only then is "no RD" meaningful.
	r.waitFor("/api/v1/namespaces/"+r.ns+"/secrets/volsync-fresh-app", true, 15*time.Second)
	r.waitGenerateSettled(60 * time.Second)
	assert.False(t, r.k.exists(t, volsyncPath(r.ns, "replicationdestinations", "fresh-app-backup")), "RD for a fresh PVC")
	assert.False(t, r.k.exists(t, "/api/v1/namespaces/"+r.ns+"/secrets/volsync-plain"), "Secret for an unlabelled PVC")
	assert.False(t, r.k.exists(t, "/api/v1/namespaces/volsync-system/secrets/volsync-system-"+r.engine), "Secret in an excluded namespace")
}

// bound: no ReplicationSource before the PVC is bound; once bound, it is generated with the
// expected schedule and the identity the oracle looked up.
func (r *run) bound(name, label string) {
	t := r.t
	rsPath := volsyncPath(r.ns, "replicationsources", name+"-backup")
	assert.False(t, r.k.exists(t, rsPath), "RS before the PVC is bound")

	// Marked Bound through the status subresource first. Kyverno's webhooks do not match the
	// status subresource (the policies match PersistentVolumeClaim, not its /status), so this
	// alone generates nothing; the PV controller also updates the claim itself when it binds it
	// (spec.volumeName and the bind-completed annotation), and that update, whose object is now
	// Bound, generates the RS.
	r.k.mustOK(t, http.MethodPatch, pvcPath(r.ns, name)+"/status", map[string]any{
		"status": map[string]any{"phase": "Bound", "accessModes": []string{"ReadWriteOnce"},
			"capacity": map[string]string{"storage": "1Gi"}},
	}, "application/merge-patch+json")

	r.statusAloneGeneratesNothing(rsPath)

	r.k.mustOK(t, http.MethodPatch, pvcPath(r.ns, name), map[string]any{
		"metadata": map[string]any{"annotations": map[string]string{
			"pv.kubernetes.io/bind-completed": "yes", "pv.kubernetes.io/bound-by-controller": "yes"}},
		"spec": map[string]any{"volumeName": "pv-" + r.engine + "-" + name},
	}, "application/merge-patch+json")

	rs := r.waitFor(rsPath, true, 15*time.Second)
	assert.Equal(t, wantRSSpec(t, r.ns, name, label), rs["spec"], "RS spec (a field unknown to the CRD would be pruned)")
	assert.Equal(t, r.o.lookup(t, r.ns, name).Body["source"],
		kopiamover.ReplicationSource{Name: str(rs, "metadata", "name"), Namespace: str(rs, "metadata", "namespace"),
			Username: str(rs, "spec", "kopia", "username"), Hostname: str(rs, "spec", "kopia", "hostname")}.Source(),
		"the RS's Kopia identity (mover rules) must be what the oracle looked up")
}

// statusAloneGeneratesNothing asserts the README's claim that marking a PVC Bound through the
// status subresource generates nothing, with both its cause and its effect:
//   - cause: no admission webhook registered on the API server (Kyverno's included) matches the
//     PVC status subresource, while some webhook matches PVCs (the policies are in effect);
//   - effect, with a positive control: a labelled PVC created after the status update gets its
//     Secret, and once no generate request is left pending, everything admitted before it has
//     been processed; the RS must still be absent.
func (r *run) statusAloneGeneratesNothing(rsPath string) {
	t := r.t

	matchesPVCs := false

	for _, kind := range []string{"mutatingwebhookconfigurations", "validatingwebhookconfigurations"} {
		res := r.k.get(t, "/apis/admissionregistration.k8s.io/v1/"+kind)
		require.Equal(t, http.StatusOK, res.Code, res.Raw)

		items, _ := res.Body["items"].([]any)
		for _, item := range items {
			cfg, _ := item.(map[string]any)
			hooks, _ := cfg["webhooks"].([]any)

			for _, h := range hooks {
				hook, _ := h.(map[string]any)
				rules, _ := hook["rules"].([]any)

				for _, rl := range rules {
					rule, _ := rl.(map[string]any)
					resources, _ := rule["resources"].([]any)

					for _, res := range resources {
						switch res {
						case "persistentvolumeclaims/status", "persistentvolumeclaims/*", "*/*", "*/status":
							t.Errorf("webhook %s/%s matches %v: the PVC status subresource reaches admission", str(cfg, "metadata", "name"), hook["name"], res)
						case "persistentvolumeclaims", "*":
							matchesPVCs = true
						}
					}
				}
			}
		}
	}

	assert.True(t, matchesPVCs, "no admission webhook matches PVCs: the policies are not in effect, the check below would be vacuous")

	res := r.create("positive control", r.ns, "status-probe-"+r.engine, "daily")
	require.Equal(t, http.StatusCreated, res.Code, res.Raw)
	r.waitFor("/api/v1/namespaces/"+r.ns+"/secrets/volsync-status-probe-"+r.engine, true, 15*time.Second)
	r.waitGenerateSettled(60 * time.Second)
	assert.False(t, r.k.exists(t, rsPath), "the RS was generated on the status update alone (README: the status subresource alone generates nothing)")
}

// waitGenerateSettled waits until Kyverno has no generate request left for this run's namespace
// (it deletes an UpdateRequest once completed): everything admitted before has then been
// generated, or not. A request whose trigger is in another namespace is not waited for.
func (r *run) waitGenerateSettled(within time.Duration) {
	r.t.Helper()

	var pending []string

	took, ok := eventually(within, 100*time.Millisecond, func() bool {
		res := r.k.get(r.t, "/apis/kyverno.io/v2/namespaces/kyverno/updaterequests")
		if res.Code != http.StatusOK {
			pending = []string{res.Raw}
			return false
		}

		items, _ := res.Body["items"].([]any)
		pending = pending[:0]

		for _, it := range items {
			ur, _ := it.(map[string]any)
			if ns := str(ur, "spec", "resource", "namespace"); ns != "" && ns != r.ns {
				continue
			}

			pending = append(pending, fmt.Sprintf("%s (%s %s: %s)", str(ur, "metadata", "name"), str(ur, "spec", "policy"),
				str(ur, "status", "state"), str(ur, "status", "message")))
		}

		return len(pending) == 0
	})
	require.True(r.t, ok, "generate requests still pending after %s: %v", within, pending)
	r.t.Logf("generate requests settled after %s", took.Round(time.Millisecond))
}

// strictDryRun re-creates each generated RS/RD's spec under strict field validation (server-
// side dry run): the API server validates it against the VolSync CRDs and rejects any field
// they do not define.
func (r *run) strictDryRun(kind, name string) {
	t := r.t
	obj := r.k.get(t, volsyncPath(r.ns, kind, name))
	require.Equal(t, http.StatusOK, obj.Code, obj.Raw)

	body := map[string]any{
		"apiVersion": obj.Body["apiVersion"], "kind": obj.Body["kind"],
		"metadata": map[string]any{"name": name + "-strict", "namespace": r.ns},
		"spec":     obj.Body["spec"],
	}
	res := r.k.do(t, http.MethodPost, volsyncPath(r.ns, kind, "")+"?dryRun=All&fieldValidation=Strict", body, "")
	assert.Equal(t, http.StatusCreated, res.Code, "strict dry-run of %s %s: %s", kind, name, res.Raw)

	// The same check rejects what the CRD does not define.
	bad := map[string]any{"apiVersion": body["apiVersion"], "kind": body["kind"], "metadata": body["metadata"],
		"spec": map[string]any{"kopia": map[string]any{"repositry": "typo"}}}
	res = r.k.do(t, http.MethodPost, volsyncPath(r.ns, kind, "")+"?dryRun=All&fieldValidation=Strict", bad, "")
	assert.Contains(t, []int{http.StatusBadRequest, http.StatusUnprocessableEntity}, res.Code, "a misspelt field must be rejected: %s", res.Raw)
}

// unknown: the oracle is up but cannot read the repository, and answers unknown (503).
func (r *run) unknown(want setExpectations) {
	t := r.t

	r.o.stop(t)
	r.o.waitDown(t)
	r.o.startUnknown(t)

	res := r.create("oracle unknown", r.ns, "unknown-app", "hourly")
	assert.Contains(t, []int{http.StatusBadRequest, http.StatusForbidden}, res.Code, res.Raw)
	assert.Contains(t, res.Message(), want.unknownMessage, "oracle answering unknown: the policy's message")

	// The oracle's reason with a wrong password: the index is not loaded (the first refresh has
	// not finished) or the refresh failed on the password.
	reason := regexp.MustCompile(`index not loaded|invalid repository password`)
	if want.unknownReason {
		assert.Regexp(t, reason, res.Message(), "oracle answering unknown: the oracle's reason")
	} else {
		// A known limit (see kyvernoReleases): if this starts failing, the version now carries
		// the reason: switch it to unknownReason.
		assert.NotRegexp(t, reason, res.Message(), "oracle answering unknown: the reason reached the denial")
	}
	assert.False(t, r.k.exists(t, pvcPath(r.ns, "unknown-app")), "oracle answering unknown: the PVC was created")
	res = r.create("oracle unknown, unlabelled", r.ns, "unknown-plain", "")
	assert.Equal(t, http.StatusCreated, res.Code, res.Raw)
}

// stopped: nothing listens on the oracle's port.
func (r *run) stopped(want setExpectations) {
	t := r.t

	r.o.stop(t)
	r.o.waitDown(t)

	res := r.create("oracle stopped", r.ns, "down-app", "hourly")
	assert.Contains(t, []int{http.StatusBadRequest, http.StatusForbidden}, res.Code, res.Raw)
	assert.Contains(t, res.Message(), want.downMessage, "oracle stopped: the policy's message")
	res = r.create("oracle stopped, unlabelled", r.ns, "down-plain", "")
	assert.Equal(t, http.StatusCreated, res.Code, res.Raw)
}

// hanging: a server on the oracle's port accepts connections and never answers.
func (r *run) hanging(want setExpectations) {
	t := r.t

	r.o.stop(t)
	r.o.waitDown(t)

	stopHang := r.o.hang(t)
	res := r.create("oracle hanging", r.ns, "hang-app", "hourly")
	assert.Less(t, res.Elapsed, hangBound, "hanging oracle: refused within the documented bound")
	assert.False(t, r.k.exists(t, pvcPath(r.ns, "hang-app")), "hanging oracle: the PVC was created")

	if want.hangDeniedCleanly {
		assert.NotEqual(t, http.StatusInternalServerError, res.Code, "hanging oracle: API-server error instead of a deny: %s", res.Raw)
		assert.Contains(t, []int{http.StatusBadRequest, http.StatusForbidden}, res.Code, res.Raw)
		assert.Contains(t, res.Message(), want.downMessage, "oracle hanging: the policy's message")
	} else {
		// A known limit of this Kyverno version with this set (see kyvernoReleases): if this
		// starts passing cleanly, switch it to hangDeniedCleanly.
		assert.Equal(t, http.StatusInternalServerError, res.Code, res.Raw)
		assert.Contains(t, res.Message(), "context deadline exceeded", res.Raw)
	}
	res = r.create("oracle hanging, unlabelled", r.ns, "hang-plain", "")
	assert.Equal(t, http.StatusCreated, res.Code, res.Raw)
	stopHang()
}

// back: the oracle runs again; creates pass, restores too.
func (r *run) back() {
	t := r.t

	r.o.start(t)
	res := r.create("oracle back, fresh", r.ns, "down-app", "hourly")
	assert.Equal(t, http.StatusCreated, res.Code, res.Raw)
	res = r.create("oracle back, restore", r.ns, comebackPVC, "hourly")
	assert.Equal(t, http.StatusCreated, res.Code, res.Raw)
	assert.Equal(t, comebackPVC+"-backup", str(res.Body, "spec", "dataSourceRef", "name"))
}

// nearMissPVC has no snapshot under its own identity, but one under the same username and
// hostname with another path (nearMissSource) in every test namespace: a near miss.
const nearMissPVC = "redis"

// nearMissSource is the near miss of nearMissPVC in namespace: what an RS redis-backup with
// sourcePathOverride /var/lib/redis writes (the mover's rules).
func nearMissSource(namespace string) string {
	return kopiamover.ReplicationSource{Name: nearMissPVC + "-backup", Namespace: namespace, SourcePathOverride: "/var/lib/redis"}.Source()
}

// acceptNearMiss is the annotation with which an operator acknowledges a near miss.
const acceptNearMiss = "backup-oracle.io/accept-near-miss"

// nearMiss: a labelled PVC whose only snapshots are a near miss is denied (with the oracle's
// reason where the version and set carry it); acknowledged without a reason (empty or blank)
// it is still denied; with a reason it is admitted unchanged, and the oracle counts the
// acceptance and echoes it.
func (r *run) nearMiss(want setExpectations) {
	t := r.t
	path := pvcPath(r.ns, nearMissPVC)

	looked := r.o.lookup(t, r.ns, nearMissPVC)
	require.Equal(t, http.StatusServiceUnavailable, looked.Code, "the oracle must see the near miss: %v", looked.Body)
	require.Equal(t, "unknown", looked.Body["decision"], "%v", looked.Body)

	denied := r.o.guards(t, "denied")
	res := r.create("near miss", r.ns, nearMissPVC, "daily")
	assert.Contains(t, []int{http.StatusBadRequest, http.StatusForbidden}, res.Code, res.Raw)
	assert.False(t, r.k.exists(t, path), "near miss: the PVC was created")
	assert.Greater(t, r.o.guards(t, "denied"), denied, "near miss: backup_oracle_guard_total{outcome=denied}")

	if want.nearMissReason {
		assert.Contains(t, res.Message(), "near miss: no snapshot under "+kopiamover.PolicySource(r.ns, nearMissPVC), "near miss: the oracle's reason")
		assert.Contains(t, res.Message(), nearMissSource(r.ns), "near miss: the near miss named")
	} else {
		// A known limit (see kyvernoReleases): the denial does not carry the oracle's reason. If
		// this starts failing, the version now carries it: switch it to nearMissReason.
		assert.Contains(t, res.Message(), want.unknownMessage, "near miss: the policy's message")
		assert.NotContains(t, res.Message(), "near miss", "near miss: the reason reached the denial")
	}

	for _, reason := range []string{"", "  "} {
		res = r.createAnnotated("near miss, no reason", r.ns, nearMissPVC, "daily", map[string]string{acceptNearMiss: reason})
		assert.Contains(t, []int{http.StatusBadRequest, http.StatusForbidden}, res.Code, res.Raw)
		assert.Contains(t, res.Message(), "its value must say why", "near miss acknowledged with %q: the policy's message", reason)
		assert.False(t, r.k.exists(t, path), "near miss acknowledged with %q: the PVC was created", reason)
	}

	accepted := r.o.guards(t, "accepted")
	res = r.createAnnotated("near miss, acknowledged", r.ns, nearMissPVC, "daily",
		map[string]string{acceptNearMiss: "e2e: redis starts empty, its old snapshots are kept for audit"})
	require.Equal(t, http.StatusCreated, res.Code, res.Raw)
	assert.Nil(t, nested(res.Body, "spec", "dataSourceRef"), "acknowledged near miss: dataSourceRef")
	assert.Nil(t, nested(res.Body, "spec", "dataSource"), "acknowledged near miss: dataSource")
	assert.Greater(t, r.o.guards(t, "accepted"), accepted, "acknowledged near miss: backup_oracle_guard_total{outcome=accepted}")

	acc := r.o.proc.Get(t, "/exists/"+r.ns+"/"+nearMissPVC+"?accept=near-miss")
	assert.Equal(t, "fresh", acc.Body["decision"], "%v", acc.Body)
	assert.Equal(t, "near-miss", acc.Body["accepted"], "%v", acc.Body)
}

// summary prints the numbers: create latency per case and service calls per PVC.
func summary(t *testing.T, all *measurements) {
	t.Helper()

	results := slices.Clone(all.items)
	slices.SortStableFunc(results, func(a, b measurement) int { return strings.Compare(a.set, b.set) })

	var b strings.Builder
	fmt.Fprintf(&b, "\n%-22s %-28s %-64s %5s %9s %6s\n", "set", "scenario", "pvc", "code", "latency", "calls")

	for _, m := range results {
		calls := "n/a"
		if m.calls >= 0 {
			calls = fmt.Sprint(m.calls)
		}

		fmt.Fprintf(&b, "%-22s %-28s %-64s %5d %8.0fms %6s\n", m.set, m.scenario, m.pvc, m.code,
			float64(m.latency.Microseconds())/1000, calls)
	}

	t.Log(b.String())
}
