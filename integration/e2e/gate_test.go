//go:build e2e

package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// gateInterval is the self-test's interval in the test (the chart's is 5 minutes).
const gateInterval = 2 * time.Second

// canaryPrefix is the reserved canary name prefix (README, "The gate self-test"), stated here
// independently of the code.
const canaryPrefix = "backup-oracle-canary-"

// excludedWithBackups is a namespace the policies exclude (the chart's default list) in which the
// repository holds a backup: the oracle must report that its PVCs are never checked.
const excludedWithBackups = "volsync-system"

// gateFixture is what the self-test scenarios of one stack share: the oracle's service account,
// bound to the chart's rendered Role only, and the chart's settings for the oracle.
type gateFixture struct {
	s              *stack
	helm, promtool string
	canary         string   // the canary namespace, as the chart renders it
	kubeconfig     string   // the oracle's service account's token
	env            []string // GATE_* and POLICIES_* as the chart's Deployment sets them, the interval shortened
	alerts         alertRules
}

// setupGate applies what the chart renders for the self-test (the ServiceAccount, the canary
// Namespace, the Role and RoleBinding, the dry-run-only ValidatingAdmissionPolicy), gives the
// oracle a token of that service account, and checks its rights are those and no more.
func setupGate(t *testing.T, s *stack, helm, promtool string) *gateFixture {
	t.Helper()

	s.kube.apply(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: "+release+"}\n")
	s.kube.apply(t, render(t, helm, "default", "--show-only", "templates/serviceaccount.yaml"), "-n", release)
	s.kube.apply(t, render(t, helm, "default", "--show-only", "templates/gate.yaml"))

	env := deploymentEnv(t, renderManifests(t, helm, "default"))
	require.Equal(t, "5m", env["GATE_CHECK_INTERVAL"], "the chart's default interval")

	g := &gateFixture{s: s, helm: helm, promtool: promtool, canary: env["GATE_CANARY_NAMESPACE"], alerts: renderAlerts(t, helm)}
	require.Equal(t, "backup-oracle-canary", g.canary)

	for _, name := range []string{"GATE_CANARY_NAMESPACE", "POLICIES_LABEL_KEY", "POLICIES_LABEL_VALUES", "POLICIES_EXCLUDED_NAMESPACES"} {
		require.NotEmpty(t, env[name], name)
		g.env = append(g.env, name+"="+env[name])
	}

	g.env = append(g.env, "GATE_CHECK_INTERVAL="+gateInterval.String())

	res := s.kube.mustOK(t, http.MethodPost, "/api/v1/namespaces/"+release+"/serviceaccounts/"+release+"/token",
		map[string]any{"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": map[string]any{"expirationSeconds": 7200}}, "")
	token := str(res.Body, "status", "token")
	require.NotEmpty(t, token)

	g.kubeconfig = filepath.Join(s.dir, "oracle-kubeconfig")
	require.NoError(t, os.WriteFile(g.kubeconfig, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: e2e, cluster: {server: %q, insecure-skip-tls-verify: true}}]
users: [{name: backup-oracle, user: {token: %q}}]
contexts: [{name: e2e, context: {cluster: e2e, user: backup-oracle}}]
current-context: e2e
`, s.kube.url, token)), 0o600))

	t.Run("gate/rights", func(t *testing.T) { g.rights(t, newKube(s.kube.url, token, "", "")) })

	return g
}

// rights: with the oracle's token, a dry-run create of a PVC in the canary namespace reaches
// admission; in any other namespace, reading, or a real create is refused (the last by the
// chart's dry-run-only policy, RBAC cannot say "dry runs only").
func (g *gateFixture) rights(t *testing.T, sa *kube) {
	pvc := func(ns, name string) map[string]any {
		return map[string]any{"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": map[string]any{"name": name, "namespace": ns},
			"spec": map[string]any{"accessModes": []string{"ReadWriteOnce"}, "resources": map[string]any{"requests": map[string]any{"storage": "1Mi"}}}}
	}

	path := "/api/v1/namespaces/" + g.canary + "/persistentvolumeclaims"
	dryRunOnly := "only server-side dry runs may create PVCs here"

	// The API server takes up a new ValidatingAdmissionPolicy shortly after it is stored: until a
	// real create (as cluster admin) is refused, whatever got created is removed again.
	var last apiResult

	took, ok := eventually(30*time.Second, 200*time.Millisecond, func() bool {
		last = g.s.kube.do(t, http.MethodPost, path, pvc(g.canary, "rights-probe"), "")
		if last.Code == http.StatusCreated {
			g.s.kube.mustOK(t, http.MethodPatch, path+"/rights-probe", map[string]any{"metadata": map[string]any{"finalizers": nil}},
				"application/merge-patch+json")
			g.s.kube.mustOK(t, http.MethodDelete, path+"/rights-probe", nil, "")
		}

		return refusedByPolicy(last) && strings.Contains(last.Message(), dryRunOnly)
	})
	require.True(t, ok, "a real create in the canary namespace, as cluster admin, is not refused by the dry-run-only policy: %s", last.Raw)
	t.Logf("the dry-run-only policy refuses real creates %s after it was applied", took.Round(time.Millisecond))

	// Unlabelled: no Kyverno policy is involved, only RBAC and the dry-run-only policy.
	res := sa.do(t, http.MethodPost, path+"?dryRun=All", pvc(g.canary, "rights-probe"), "")
	assert.Equal(t, http.StatusCreated, res.Code, "a dry run in the canary namespace: %s", res.Raw)

	res = sa.do(t, http.MethodPost, path, pvc(g.canary, "rights-probe"), "")
	assert.True(t, refusedByPolicy(res), "a real create in the canary namespace: %s", res.Raw)
	assert.Contains(t, res.Message(), dryRunOnly, "refused by the chart's dry-run-only policy")

	for _, r := range []struct{ method, path string }{
		{http.MethodPost, "/api/v1/namespaces/" + release + "/persistentvolumeclaims?dryRun=All"},
		{http.MethodGet, "/api/v1/namespaces/" + g.canary + "/persistentvolumeclaims"},
		{http.MethodGet, "/api/v1/namespaces/" + release + "/secrets"},
		{http.MethodGet, "/apis/kyverno.io/v1/clusterpolicies"},
	} {
		var body any
		if r.method == http.MethodPost {
			body = pvc(release, "rights-probe")
		}

		res := sa.do(t, r.method, r.path, body, "")
		assert.Equal(t, http.StatusForbidden, res.Code, "%s %s with the oracle's token: %s", r.method, r.path, res.Raw)
	}
}

// refusedByPolicy: a ValidatingAdmissionPolicy's denial, which kube-apiserver v1.35 answers with
// 422 Invalid (seen here), or a 403.
func refusedByPolicy(res apiResult) bool {
	return res.Code == http.StatusUnprocessableEntity || res.Code == http.StatusForbidden
}

// gateStatus is /status's gate.
type gateStatus struct {
	State, Reason, Canary string
	LastCheck             time.Time
	Uncovered             []any
}

func (r *run) gateStatus() gateStatus {
	r.t.Helper()

	res := r.o.proc.Get(r.t, "/status")
	require.Equal(r.t, http.StatusOK, res.Code)

	g, _ := res.Body["gate"].(map[string]any)
	require.NotNil(r.t, g, "no gate on /status: %v", res.Body)

	st := gateStatus{State: str(g, "state"), Reason: str(g, "reason"), Canary: str(g, "canary")}
	st.Uncovered, _ = g["uncoveredNamespaces"].([]any)

	if s := str(g, "lastCheck"); s != "" {
		var err error
		st.LastCheck, err = time.Parse(time.RFC3339Nano, s)
		require.NoError(r.t, err)
	}

	return st
}

// checkAfter waits for the first self-test that started after since (one starts every
// gateInterval) and returns its result.
func (r *run) checkAfter(since time.Time) gateStatus {
	r.t.Helper()

	var st gateStatus

	_, ok := eventually(time.Minute, 100*time.Millisecond, func() bool {
		st = r.gateStatus()
		return st.LastCheck.After(since)
	})
	require.True(r.t, ok, "no self-test started after %s (last: %+v)", since.Format(time.RFC3339Nano), st)
	r.t.Logf("self-test %s after the event: %s (%s)", st.LastCheck.Sub(since).Round(time.Millisecond), st.State, st.Reason)

	return st
}

// armedAgain waits until a self-test finds the gate armed.
func (r *run) armedAgain(within time.Duration) gateStatus {
	r.t.Helper()

	var st gateStatus

	took, ok := eventually(within, 200*time.Millisecond, func() bool { st = r.gateStatus(); return st.State == "armed" })
	require.True(r.t, ok, "the gate is not armed within %s: %+v", within, st)
	r.t.Logf("armed after %s: %s", took.Round(time.Millisecond), st.Reason)

	return st
}

// probe sends, as cluster admin, a server-side dry-run create of a labelled PVC whose name looks
// like a canary (the oracle answers it unknown; it is not the oracle's nonce) until want says
// admission answered as expected; it returns when that was first seen.
func (r *run) probe(g *gateFixture, what string, want func(apiResult) bool) time.Time {
	r.t.Helper()

	var last apiResult

	_, ok := eventually(time.Minute, 200*time.Millisecond, func() bool {
		b := make([]byte, 4)
		_, _ = rand.Read(b)

		pvc := map[string]any{
			"apiVersion": "v1", "kind": "PersistentVolumeClaim",
			"metadata": map[string]any{"name": canaryPrefix + "e2e" + hex.EncodeToString(b), "namespace": g.canary, "labels": map[string]string{"backup": "daily"}},
			"spec":     map[string]any{"accessModes": []string{"ReadWriteOnce"}, "resources": map[string]any{"requests": map[string]any{"storage": "1Mi"}}},
		}
		last = r.k.do(r.t, http.MethodPost, "/api/v1/namespaces/"+g.canary+"/persistentvolumeclaims?dryRun=All", pvc, "")

		return want(last)
	})
	require.True(r.t, ok, "a probe is not %s: %d %s", what, last.Code, last.Raw)

	return time.Now()
}

func admitted(res apiResult) bool { return res.Code == http.StatusCreated }

func webhookFailed(res apiResult) bool {
	return res.Code >= 500 && strings.Contains(res.Message(), "failed calling webhook")
}

func deniedByPolicies(res apiResult) bool {
	return (res.Code == http.StatusBadRequest || res.Code == http.StatusForbidden) && strings.Contains(res.Message(), "gate self-test canary e2e")
}

// selfTest is the gate self-test (README, "The gate self-test") on this version and set, with the
// oracle configured as the chart's Deployment configures it (its interval shortened): armed with
// the policies; refusing while Kyverno's admission controller is stopped; disarmed once the
// policies are deleted, and once they no longer cover the canary namespace; armed again when they
// are back. Each failure is reported by the first self-test that starts after admission is seen
// to behave so (a probe of the test's own), i.e. within one interval, and the chart's alert
// expressions agree with /metrics. The canary's dry runs leave no object, generated resource or
// report behind.
func (r *run) selfTest(g *gateFixture, kv kyvernoUnderTest, set policySet, policies string) {
	t := r.t
	o := r.o

	o.stop(t)
	o.waitDown(t)
	o.extraEnv = append(slices.Clone(g.env), "KUBECONFIG="+g.kubeconfig)
	o.start(t)

	ready := time.Now() // start returns once the index is ready

	defer func() { // the next scenarios run without the self-test (it calls the oracle every interval)
		o.stop(t)
		o.waitDown(t)
		o.extraEnv = nil
		o.start(t)
	}()

	// Armed, with the policies as installed. (The first check runs as soon as the oracle listens,
	// maybe before its index is ready: the CEL set then refuses with "not ready", after asking the
	// oracle, which is armed too.)
	st := r.checkAfter(ready)
	assert.Equal(t, "armed", st.State, st.Reason)
	assert.Contains(t, st.Reason, "refused with the oracle's canary answer (this oracle answered it)")
	assert.True(t, strings.HasPrefix(st.Canary, g.canary+"/"+canaryPrefix), st.Canary)
	r.assertCoverage(st)
	g.alerts.check(t, g.promtool, r.metrics(), map[string]bool{
		"BackupOracleGateDisarmed": false, "BackupOracleGateRefusing": false, "BackupOracleGateUnchecked": false, "BackupOracleBackupsNeverChecked": true,
	})

	// Refusing: Kyverno's admission controller stopped, its webhooks (failurePolicy Fail) still registered.
	g.s.stopAdmissionController(t)
	st = r.checkAfter(r.probe(g, "refused by a failing webhook", webhookFailed))
	assert.Equal(t, "refusing", st.State, st.Reason)
	assert.Contains(t, st.Reason, "failed calling webhook")
	g.alerts.check(t, g.promtool, r.metrics(), map[string]bool{"BackupOracleGateDisarmed": false, "BackupOracleGateRefusing": true})

	g.s.admissionReports = true // from now on, a report would show
	g.s.startAdmissionControllerAgain(t, kv)
	r.probe(g, "denied by the policies", deniedByPolicies)
	r.armedAgain(time.Minute)
	r.reportsControl()

	// Disarmed: the policies deleted.
	set.uninstall(t, r.k, policies)
	st = r.checkAfter(r.probe(g, "admitted", admitted))
	assert.Equal(t, "disarmed", st.State, st.Reason)
	assert.Contains(t, st.Reason, "was admitted")
	g.alerts.check(t, g.promtool, r.metrics(), map[string]bool{"BackupOracleGateDisarmed": true, "BackupOracleGateRefusing": false})

	set.install(t, r.k, policies)
	r.probe(g, "denied by the policies", deniedByPolicies)
	r.armedAgain(time.Minute)

	// Disarmed: the admission policies no longer cover the canary namespace (Kyverno refuses to
	// change a generate rule's match in place; dry runs generate nothing anyway).
	excluded := render(t, g.helm, "default", append(set.showOnly("generate"), "--set", "policies.engine="+set.engine, "--set", "policies.oracleURL="+o.URL(),
		"--set", "gate.enabled=false", "--set", "policies.excludedNamespaces={kube-system,volsync-system,kyverno,"+g.canary+"}")...)
	r.k.apply(t, excluded)
	st = r.checkAfter(r.probe(g, "admitted once the canary namespace is excluded", admitted))
	assert.Equal(t, "disarmed", st.State, st.Reason)

	r.k.apply(t, policies)
	r.probe(g, "denied by the policies", deniedByPolicies)
	r.armedAgain(time.Minute)

	r.noTrace(g)

	g.s.admissionReports = false
	g.s.restartAdmissionController(t, kv)
}

// showOnly lists the set's admission and generate templates as helm --show-only arguments, but
// those whose name contains without.
func (p policySet) showOnly(without string) []string {
	var args []string

	for _, tpl := range p.templates {
		if !strings.Contains(tpl, without) {
			args = append(args, "--show-only", "templates/policies/"+tpl+".yaml")
		}
	}

	return args
}

// assertCoverage: the excluded namespace holding a backup is reported as never checked.
func (r *run) assertCoverage(st gateStatus) {
	r.t.Helper()

	var names []string

	for _, u := range st.Uncovered {
		m, _ := u.(map[string]any)
		names = append(names, str(m, "namespace"))

		if str(m, "namespace") == excludedWithBackups {
			assert.Equal(r.t, "backups exist for namespace "+excludedWithBackups+", but its PVCs are never checked: the policies exclude it (1 backup source(s) on kopia-fs)",
				str(m, "reason"))
		}
	}

	assert.Equal(r.t, []string{excludedWithBackups}, names, "the excluded namespaces holding backups")
}

// metrics scrapes the oracle's /metrics.
func (r *run) metrics() string {
	r.t.Helper()

	resp, err := http.Get(r.o.URL() + "/metrics") //nolint:noctx // local scrape
	require.NoError(r.t, err)

	defer resp.Body.Close()

	b, err := io.ReadAll(resp.Body)
	require.NoError(r.t, err)
	require.Equal(r.t, http.StatusOK, resp.StatusCode)

	return string(b)
}

// reportsControl: with admission reports on, a labelled PVC created for real gets one (the
// control: reports are written), while no report anywhere names a canary.
func (r *run) reportsControl() {
	t := r.t

	res := r.k.do(t, http.MethodPost, "/api/v1/namespaces/"+r.ns+"/persistentvolumeclaims", map[string]any{
		"apiVersion": "v1", "kind": "PersistentVolumeClaim",
		"metadata": map[string]any{"name": "report-control", "namespace": r.ns, "labels": map[string]string{"backup": "daily"}},
		"spec":     map[string]any{"accessModes": []string{"ReadWriteOnce"}, "resources": map[string]any{"requests": map[string]any{"storage": "1Gi"}}},
	}, "")
	require.Equal(t, http.StatusCreated, res.Code, res.Raw)

	uid := str(res.Body, "metadata", "uid")
	took, ok := eventually(30*time.Second, 200*time.Millisecond, func() bool {
		return strings.Contains(r.k.get(t, "/apis/reports.kyverno.io/v1/namespaces/"+r.ns+"/ephemeralreports").Raw, uid)
	})
	require.True(t, ok, "no admission report for the control PVC: reports are not written, the check below would be vacuous")
	t.Logf("admission report of the control PVC after %s", took.Round(time.Millisecond))
}

// noTrace: after every self-test of the scenario, nothing names a canary: no PVC, no generated
// Secret, RS or RD, no generate request, no admission or policy report, no event about a PVC.
// Kyverno records each refusal as an event on the refusing policy (as for any refused request):
// those name the reserved canary and are counted in the log.
func (r *run) noTrace(g *gateFixture) {
	t := r.t

	for _, path := range []string{
		"/api/v1/namespaces/" + g.canary + "/persistentvolumeclaims",
		"/api/v1/namespaces/" + g.canary + "/secrets",
		volsyncPath(g.canary, "replicationsources", ""),
		volsyncPath(g.canary, "replicationdestinations", ""),
	} {
		res := r.k.get(t, path)
		require.Equal(t, http.StatusOK, res.Code, res.Raw)
		items, _ := res.Body["items"].([]any)
		assert.Empty(t, items, "%s: the canary left an object", path)
	}

	for _, path := range []string{
		"/apis/kyverno.io/v2/updaterequests",
		"/apis/reports.kyverno.io/v1/ephemeralreports",
		"/apis/reports.kyverno.io/v1/clusterephemeralreports",
		"/apis/wgpolicyk8s.io/v1alpha2/policyreports",
		"/apis/wgpolicyk8s.io/v1alpha2/clusterpolicyreports",
	} {
		var res apiResult

		// A resource listed for the first time may answer 429 while its watch cache initialises.
		eventually(10*time.Second, 200*time.Millisecond, func() bool { res = r.k.get(t, path); return res.Code != http.StatusTooManyRequests })

		if res.Code == http.StatusNotFound && !strings.Contains(path, "updaterequests") && !strings.Contains(path, "/ephemeralreports") {
			t.Logf("%s is not served by this Kyverno's CRDs", path)
			continue
		}

		require.Equal(t, http.StatusOK, res.Code, "%s: %s", path, res.Raw)
		assert.NotContains(t, res.Raw, canaryPrefix, "%s names a canary", path)
		assert.NotContains(t, res.Raw, `"`+g.canary+`"`, "%s names the canary namespace", path)
	}

	res := r.k.get(t, "/api/v1/events")
	require.Equal(t, http.StatusOK, res.Code, res.Raw)

	items, _ := res.Body["items"].([]any)
	onPolicies := map[string]int{}

	for _, it := range items {
		ev, _ := it.(map[string]any)
		if !strings.Contains(str(ev, "message"), canaryPrefix) && str(ev, "involvedObject", "namespace") != g.canary {
			continue
		}

		kind := str(ev, "involvedObject", "kind")
		assert.NotEqual(t, "PersistentVolumeClaim", kind, "an event about a canary PVC: %v", ev)
		onPolicies[kind+"/"+str(ev, "involvedObject", "name")]++
	}

	t.Logf("events naming a canary, by the object they are about (Kyverno's refusals, on the policy): %v", onPolicies)
}
