//go:build e2e

package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness"
	"github.com/backup-oracle/backup-oracle/integration/harness/kopiamover"
)

// TestRestoreAsCode runs every scenario of the shipped policies, first the ClusterPolicy set,
// then the CEL set, on one stack: real etcd, kube-apiserver and Kyverno controllers, the real
// oracle on a repository written by the real kopia CLI. Every assertion is on what the API
// server stored (or refused).
func TestRestoreAsCode(t *testing.T) {
	helm := harness.Tool(t, "helm")
	harness.Tool(t, "kopia")

	s := startStack(t)
	s.installCRDs(t)
	s.kube.apply(t, render(t, helm, "default", "--show-only", "templates/policies/kyverno-rbac.yaml"))
	s.startKyverno(t, release)

	var sources []string
	for _, set := range policySets {
		for _, p := range append(restoredPVCs, struct{ name, label string }{comebackPVC, "hourly"}) {
			sources = append(sources, kopiamover.PolicySource(namespaceOf(set), p.name))
		}
	}

	dir := t.TempDir()
	o := newOracle(t, s, dir, newKopiaRepository(t, dir, sources))
	o.start(t)

	t.Run("chart/server-side-dry-run", func(t *testing.T) { chartDryRun(t, s.kube, helm) })

	var results []measurement

	for _, set := range policySets {
		manifests := set.render(t, helm, o.URL())
		t.Run(set.engine, func(t *testing.T) { runSet(t, s.kube, o, set, manifests, &results) })
		set.uninstall(t, s.kube, manifests)
	}

	summary(t, results)
}

func namespaceOf(set policySet) string { return "e2e-" + set.engine }

func runSet(t *testing.T, k *kube, o *oracle, set policySet, manifests string, results *[]measurement) {
	if o.proc.Exited() { // restarted by the previous set's outage, in that subtest, which stopped it
		o.start(t)
	}

	ns := namespaceOf(set)
	k.mustOK(t, http.MethodPost, "/api/v1/namespaces", map[string]any{"metadata": map[string]any{"name": ns}}, "")
	set.install(t, k, manifests)

	r := &run{t: t, maxCalls: set.maxCalls, k: k, o: o, set: set.engine, ns: ns, results: results}
	r.restores()
	r.untouched()
	r.bound("postgres", "hourly")
	r.strictDryRun("replicationdestinations", "postgres-backup")
	r.strictDryRun("replicationsources", "postgres-backup")

	gone, kept := r.cleanupStart()
	r.outage(set)
	r.cleanupCheck(gone, kept)
}

// cleanupStart deletes the PVC my.app.data and removes the label of postgres; it returns what
// the cleanup policy must delete and what it must keep.
func (r *run) cleanupStart() (gone, kept []string) {
	t := r.t

	r.k.mustOK(t, http.MethodDelete, pvcPath(r.ns, "my.app.data"), nil, "")
	// No kube-controller-manager: do what its pvc-protection controller does for a claim no pod
	// uses, so that the PVC is really gone.
	r.k.mustOK(t, http.MethodPatch, pvcPath(r.ns, "my.app.data"), map[string]any{"metadata": map[string]any{"finalizers": nil}},
		"application/merge-patch+json")
	r.k.mustOK(t, http.MethodPatch, pvcPath(r.ns, "postgres"), map[string]any{"metadata": map[string]any{"labels": map[string]any{"backup": nil}}},
		"application/merge-patch+json")
	r.waitFor(pvcPath(r.ns, "my.app.data"), false, 10*time.Second)

	secret := func(pvc string) string { return "/api/v1/namespaces/" + r.ns + "/secrets/volsync-" + pvc }

	return []string{
			secret("my.app.data"), volsyncPath(r.ns, "replicationdestinations", "my.app.data-backup"),
			secret("postgres"), volsyncPath(r.ns, "replicationdestinations", "postgres-backup"),
			volsyncPath(r.ns, "replicationsources", "postgres-backup"),
		}, []string{
			secret(longPVC), volsyncPath(r.ns, "replicationdestinations", longPVC+"-backup"), secret("fresh-app"),
		}
}

// cleanupCheck waits for the cleanup policy (every minute in this test) to delete gone, and
// checks it kept what still belongs to a labelled PVC.
func (r *run) cleanupCheck(gone, kept []string) {
	start := time.Now()
	for _, p := range gone {
		r.waitFor(p, false, 150*time.Second-time.Since(start))
	}

	r.t.Logf("cleanup removed %d generated resources within %s", len(gone), time.Since(start).Round(time.Second))

	for _, p := range kept {
		assert.True(r.t, r.k.exists(r.t, p), "cleanup deleted %s, which belongs to a labelled PVC", p)
	}
}

// chartDryRun sends the chart's rendered manifests to the API server as a server-side dry run:
// schemas, admission (Kyverno validates its policies in its webhook) and defaulting, nothing
// stored.
func chartDryRun(t *testing.T, k *kube, helm string) {
	k.apply(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: "+release+"}\n")

	for _, c := range []struct {
		values string
		args   []string
	}{
		{"default", nil},
		{"default", []string{"--set", "policies.engine=cel"}},
		{"existing-claim-nfs-movers", nil},
	} {
		manifests := render(t, helm, c.values, c.args...)
		out, err := k.kubectlRun(manifests, "apply", "--server-side", "--dry-run=server", "--field-manager", "e2e", "-f", "-")
		require.NoError(t, err, "%s %v:\n%s", c.values, c.args, out)
		t.Logf("%s %v:\n%s", c.values, c.args, out)
	}
}
