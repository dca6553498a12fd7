//go:build e2e

package e2e

import (
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness"
	"github.com/backup-oracle/backup-oracle/integration/harness/kopiamover"
)

// TestRestoreAsCode runs every scenario of the shipped policies, the ClusterPolicy set then
// the CEL set, on every Kyverno version the Makefile pins, each on its own stack: real etcd,
// kube-apiserver and that version's Kyverno controllers, and its own real oracle on one
// repository written by the real kopia CLI. Every assertion is on what the API server stored
// (or refused); what differs between versions is an expectation of kyvernoReleases.
func TestRestoreAsCode(t *testing.T) {
	helm := harness.Tool(t, "helm")
	promtool := harness.Tool(t, "promtool")
	harness.Tool(t, "kopia")
	versions := kyvernoVersions(t)
	newest := versions[len(versions)-1].version

	sources := []string{kopiamover.ReplicationSource{Name: "probe-backup", Namespace: defaultsNamespace}.Source(),
		kopiamover.PolicySource(excludedWithBackups, "snapshot-store")} // a backup the policies never check
	for _, set := range policySets {
		for _, p := range append(restoredPVCs, struct{ name, label string }{comebackPVC, "hourly"}) {
			sources = append(sources, kopiamover.PolicySource(namespaceOf(set), p.name))
		}

		for _, a := range gitopsAppliers {
			sources = append(sources, kopiamover.PolicySource(namespaceOf(set), a.pvc()))
		}

		sources = append(sources, nearMissSource(namespaceOf(set)), namedSource(namespaceOf(set)))
	}

	sources = append(sources, kopiamover.PolicySource(predecessorNamespace, predecessorPVC),
		kopiamover.PolicySource(securedA, "data"), kopiamover.PolicySource(securedB, "data")) // whoMayAsk's

	dir := t.TempDir()
	repos := repositories{green: newKopiaRepository(t, dir, append(sources, greenLayoutSources()...))}
	written := time.Now()

	oracleBin, err := harness.BuildOracle(dir)
	require.NoError(t, err)

	// Blue's snapshots must be newer than green's: kopia's snapshot times have second resolution.
	time.Sleep(time.Until(written.Add(1100 * time.Millisecond)))
	repos.blue = newKopiaRepository(t, filepath.Join(dir, "blue"), blueLayoutSources())

	var results measurements

	// The versions run concurrently, each on its own stack with its own oracle: most of a
	// version's run is waiting (webhook deadlines, the cleanup minute), which they share.
	t.Run("versions", func(t *testing.T) {
		for _, k := range versions {
			t.Run("kyverno-"+k.version, func(t *testing.T) {
				t.Parallel()
				runVersion(t, helm, promtool, k, oracleBin, repos, &results, k.version == newest)
			})
		}
	})

	summary(t, &results)
}

// runVersion runs everything on one Kyverno version: the version's default HTTP flags, the
// chart's server-side dry run, then both policy sets; each set's cleanup policy stays installed
// after its set, so both cleanups are awaited together at the end (one cleanup minute, not two).
// With newest, the secured oracle's callers are checked too (whoMayAsk).
func runVersion(t *testing.T, helm, promtool string, k kyvernoUnderTest, oracleBin string, repos repositories, results *measurements, newest bool) {
	t.Run("controller-flags", func(t *testing.T) { controllerFlags(t, k) })

	s := startStack(t)
	s.installCRDs(t, k.bin("crds"))
	s.kube.apply(t, render(t, helm, "default", "--show-only", "templates/policies/kyverno-rbac.yaml"))

	o := newOracle(t, s, oracleBin, repos.green)
	o.start(t)

	prepareKyvernoClient(t, s) // as Kyverno's chart has it; the plain oracle ignores the token
	s.startKyverno(t, k, true)
	t.Run("default-http-flags", func(t *testing.T) { defaultHTTPFlags(t, s.kube, helm, k, o, results) })

	if k.hasHTTPBlocklist {
		s.restartAdmissionController(t, k)
	}

	// Before the chart's dry run: that holds a Role in the canary namespace, which a dry run
	// cannot create (its Namespace is not stored); helm creates the Namespace first.
	gate := setupGate(t, s, helm, promtool)

	t.Run("chart/server-side-dry-run", func(t *testing.T) { chartDryRun(t, s.kube, helm) })
	t.Run("chart/policy-set-auto", func(t *testing.T) { policySetAuto(t, s.kube, helm, k) })

	var cleanups []pendingCleanup

	for _, set := range policySets {
		policies, cleanup := set.render(t, helm, o.URL())
		t.Run(set.engine, func(t *testing.T) {
			t.Cleanup(func() { set.uninstall(t, s.kube, policies) }) // also after a failure: the next set runs alone
			cleanups = append(cleanups, runSet(t, s.kube, o, k, set, policies, cleanup, gate, results))
		})
	}

	// The layouts run while the sets' cleanups are pending: their own policies are installed
	// (and removed) one after the other, the cleanup policies stay.
	if k.layouts {
		t.Run("layouts", func(t *testing.T) { runLayouts(t, s, helm, k, oracleBin, repos, results) })
	}

	t.Run("predecessor-policy", func(t *testing.T) { predecessorPolicy(t, s, k, oracleBin, repos.green) })

	// While the cleanups are pending, as the layouts.
	t.Run("who-may-ask", func(t *testing.T) { whoMayAsk(t, s, helm, k, oracleBin, repos.green, newest) })

	// The restic scenarios, on upstream VolSync's controller (which runs from here on: it would
	// write status into the layouts' Kopia resources, which they compare).
	if k.restic {
		t.Run("restic", func(t *testing.T) { runRestic(t, s, helm, k, oracleBin, results) })
	}

	t.Run("cleanup", func(t *testing.T) {
		for _, c := range cleanups {
			t.Run(c.engine, func(t *testing.T) { c.check(t, s.kube) })
		}
	})
}

func namespaceOf(set policySet) string { return "e2e-" + set.engine }

// otherNamespace is the namespace of another policy set than set (its sources are in the
// repository too).
func otherNamespace(set policySet) string {
	for _, o := range policySets {
		if o.engine != set.engine {
			return namespaceOf(o)
		}
	}

	return "e2e-none"
}

func runSet(t *testing.T, k *kube, o *oracle, kv kyvernoUnderTest, set policySet, policies, cleanup string, gate *gateFixture,
	results *measurements,
) pendingCleanup {
	if o.proc.Exited() { // restarted by the previous set's outage, in that subtest, which stopped it
		o.start(t)
	}

	ns := namespaceOf(set)
	want := kv.sets[set.engine]
	k.mustOK(t, http.MethodPost, "/api/v1/namespaces", map[string]any{"metadata": map[string]any{"name": ns}}, "")
	set.install(t, k, yamlDocs(policies, cleanup))

	r := &run{t: t, maxCalls: want.maxCalls, k: k, o: o, set: kv.version + "/" + set.engine, engine: set.engine, ns: ns, results: results}
	step := func(name string, f func()) {
		t.Run(name, func(t *testing.T) { r.t = t; f() })
		r.t = t
	}

	var c pendingCleanup

	step("restore", r.restores)
	step("gitops", r.gitops)
	step("untouched", r.untouched)
	step("bound", func() {
		r.bound("postgres", "hourly")
		r.strictDryRun("replicationdestinations", "postgres-backup")
		r.strictDryRun("replicationsources", "postgres-backup")
	})
	step("near-miss", func() { r.nearMiss(want) })
	step("restore-source", func() { r.restoreSource(want, otherNamespace(set)) })
	step("cleanup-start", func() { c = r.cleanupStart() })
	step("oracle-unknown", func() { r.unknown(want) })
	step("oracle-stopped", func() { r.stopped(want) })
	step("oracle-hanging", func() { r.hanging(want) })
	step("oracle-back", r.back)
	step("gate-self-test", func() { r.selfTest(gate, kv, set, policies) })

	return c
}

// pendingCleanup is what a set's cleanup policy must delete and keep, from when it was due.
type pendingCleanup struct {
	set        string // version/engine
	engine     string
	since      time.Time
	gone, kept []string
}

// cleanupStart deletes the PVC my.app.data and removes the label of postgres; it returns what
// the cleanup policy must delete and what it must keep.
func (r *run) cleanupStart() pendingCleanup {
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

	return pendingCleanup{
		set: r.set, engine: r.engine, since: time.Now(),
		gone: []string{
			secret("my.app.data"), volsyncPath(r.ns, "replicationdestinations", "my.app.data-backup"),
			secret("postgres"), volsyncPath(r.ns, "replicationdestinations", "postgres-backup"),
			volsyncPath(r.ns, "replicationsources", "postgres-backup"),
		},
		kept: []string{
			secret(longPVC), volsyncPath(r.ns, "replicationdestinations", longPVC+"-backup"), secret("fresh-app"),
		},
	}
}

// check waits for the cleanup policy (every minute in this test) to delete gone, within 150 s
// of when it was due, and checks it kept what still belongs to a labelled PVC.
func (c pendingCleanup) check(t *testing.T, k *kube) {
	for _, p := range c.gone {
		took, ok := eventually(150*time.Second-time.Since(c.since), 200*time.Millisecond, func() bool { return !k.exists(t, p) })
		assert.True(t, ok, "%s: the cleanup policy did not delete %s within 150 s (waited %s)", c.set, p, took.Round(time.Second))
	}

	t.Logf("%s: cleanup removed %d generated resources within %s", c.set, len(c.gone), time.Since(c.since).Round(time.Second))

	for _, p := range c.kept {
		assert.True(t, k.exists(t, p), "%s: cleanup deleted %s, which belongs to a labelled PVC", c.set, p)
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
		{"default", nil}, // policies.engine auto, rendered without a cluster: the CEL set
		{"default", []string{"--set", "policies.engine=clusterpolicy"}},
		{"existing-claim-nfs-movers", nil},
	} {
		manifests := render(t, helm, c.values, c.args...)
		out, err := k.kubectlRun(manifests, "apply", "--server-side", "--dry-run=server", "--field-manager", "e2e", "-f", "-")
		require.NoError(t, err, "%s %v:\n%s", c.values, c.args, out)
		t.Logf("%s %v:\n%s", c.values, c.args, out)
	}
}
