//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/backup-oracle/backup-oracle/integration/harness"
	"github.com/backup-oracle/backup-oracle/integration/harness/kopiamover"
)

// upgradeNamespace is where the prober creates its PVCs.
const upgradeNamespace = "upgrade"

// upgradeFromPrevious installs, on a stack running Kyverno k, the released chart from oci:// as
// a server-side dry run, then the previous release's chart (from git) with a user's values,
// and upgrades it to the released chart with the same values. No kubelet runs here, so the
// Deployment's two replicas are processes behind a stand-in for the Service (service): two of
// the previous release's binary (built from git) before, replaced one at a time by the
// released image's amd64 binary as the Deployment's rolling update would (a new one ready
// before an old one goes; an old one stops on SIGTERM after the chart's shutdown delay). A
// prober creates PVCs throughout, and every create must be admitted, restored or denied as it
// should: before, during (the policies replaced by Helm, the replicas rolled) and after.
//
// The previous release installed the ClusterPolicy set by default; this chart's default
// (policies.engine auto) needs policies.kyverno.version on a cluster serving the CEL policies:
// the user's values alone are refused with the sentence naming it (the previous release stays),
// and with it stated the upgrade replaces the ClusterPolicy set by the version's autoSet.
func upgradeFromPrevious(t *testing.T, rel released, k kyvernoUnderTest) {
	rev := previousRelease(t)
	prevChart := filepath.Join(checkout(t, rev, "chart"), "chart")
	prevBin := buildPrevious(t, rev)
	newBin := exportedFile(t, rel, "linux/amd64", "backup-oracle")
	values := filepath.Join(prevChart, "testdata", "values", "default.yaml") // a user's values for the previous release

	repo := newKopiaRepository(t, t.TempDir(), []string{
		kopiamover.PolicySource(upgradeNamespace, "postgres"), nearMissSource(upgradeNamespace),
	})
	pw := filepath.Join(t.TempDir(), "password")
	require.NoError(t, os.WriteFile(pw, []byte(kopiaPassword+"\n"), 0o600))

	s := startStack(t)
	s.installCRDs(t, k.bin("crds"))
	s.startKyverno(t, k, false)
	s.kube.apply(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: "+release+"}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: "+upgradeNamespace+"}\n")

	svc := startService(t)
	userArgs := []string{"-n", release, "-f", values, "--set", "policies.oracleURL=" + svc.URL()}
	// 0.2.0 turns TLS and authentication on by default; the upgrade path tested is the one the
	// chart README's "Upgrading" gives for a rollout without a window: first with both off (the
	// policies keep calling http:// while the old replicas serve it), then on.
	newArgs := append(slices.Clone(userArgs), "--set", "policies.kyverno.version="+k.version, "--set", "tls.enabled=false", "--set", "auth.enabled=false")
	oci := []string{"oci://" + rel.chart, "--version", rel.version, "--plain-http"}

	t.Run("oci-server-side-dry-run", func(t *testing.T) {
		out, err := command(rel.env, "", harness.Tool(t, "helm"), append(append(append([]string{"install", release}, oci...), userArgs...),
			"--dry-run=server", "--kubeconfig", s.kube.kubeconfig)...)
		require.Error(t, err, "installed without policies.kyverno.version on a cluster serving the CEL policies:\n%s", out)
		assert.Contains(t, err.Error(), "Set policies.kyverno.version", "the refusal names the value")

		out = helmStep(t, rel, s.kube, append(append([]string{"install", release}, oci...), append(newArgs, "--dry-run=server")...)...)
		assert.Contains(t, out, "image: \""+rel.image+":"+rel.version+"\"", "the Deployment's image is the registry's")
	})

	prevEnv := replicaEnv(t, renderChart(t, rel, prevChart, userArgs...), repo, pw)
	newEnv := replicaEnv(t, renderChart(t, rel, oci[0], append(oci[1:], newArgs...)...), repo, pw)

	old := []*harness.Oracle{startReplica(t, svc, prevBin, prevEnv), startReplica(t, svc, prevBin, prevEnv)}

	helmStep(t, rel, s.kube, append([]string{"install", release, prevChart}, userArgs...)...)
	waitPolicies(t, s.kube, chartName(t, prevChart), "clusterpolicy")

	p := newProber(s.kube, upgradeNamespace, k.sets["clusterpolicy"].nearMissReason && k.sets[k.autoSet].nearMissReason)
	p.cycle() // before: the previous release admits as it should

	ctx, stop := context.WithCancel(context.Background())
	done := p.run(ctx)

	p.setPhase("helm upgrade")
	out, err := command(rel.env, "", harness.Tool(t, "helm"), append(append(append([]string{"upgrade", release}, oci...), userArgs...),
		"--kubeconfig", s.kube.kubeconfig)...)
	require.Error(t, err, "upgraded without policies.kyverno.version:\n%s", out)
	assert.Contains(t, err.Error(), "Set policies.kyverno.version", "the refusal names the value")
	helmStep(t, rel, s.kube, append(append([]string{"upgrade", release}, oci...), newArgs...)...)
	waitPolicies(t, s.kube, "backup-oracle-"+rel.version, k.autoSet)

	p.setPhase("rollout")
	rollOut(t, svc, old, newBin, newEnv)

	p.setPhase("after")
	waitCycles(p, "after", 2)
	stop()
	<-done

	cycles, wrong := p.results()
	t.Logf("prober cycles (restore, fresh, near miss each) per phase: %v", cycles)

	for _, phase := range []string{"before", "helm upgrade", "rollout", "after"} {
		assert.Positive(t, cycles[phase], "no probe completed in phase %q", phase)
		assert.Empty(t, wrong[phase], "admission went wrong in phase %q", phase)
	}

	// The previous release's replicas do not know /readyz?admission=true: a PVC whose admission
	// reached one in its shutdown delay is denied (safe, and said in the chart README's
	// "Upgrading"); only while they drain, never before or after.
	drained := p.drainedDenials()
	t.Logf("denials by a draining replica of the previous release, per phase: %v", drained)

	for _, phase := range []string{"before", "helm upgrade", "after"} {
		assert.Zero(t, drained[phase], "denied by a draining replica in phase %q", phase)
	}

	checkUpgraded(t, rel, s.kube, chartName(t, prevChart), k.autoSet)
}

// renderChart renders chart (a folder or an oci:// reference with its flags) as helm template.
func renderChart(t *testing.T, rel released, chart string, args ...string) []manifest {
	t.Helper()

	return splitManifests(t, mustCommand(t, rel.env, harness.Tool(t, "helm"), append([]string{"template", release, chart}, args...)...))
}

// chartName is the chart in dir as Helm names it in a release's history: <name>-<version>.
func chartName(t *testing.T, dir string) string {
	t.Helper()

	b, err := os.ReadFile(filepath.Join(dir, "Chart.yaml"))
	require.NoError(t, err)

	var meta struct{ Name, Version string }
	require.NoError(t, yaml.Unmarshal(b, &meta))

	return meta.Name + "-" + meta.Version
}

// startReplica starts one replica (bin with env) and puts it behind the service once ready.
func startReplica(t *testing.T, svc *service, bin string, env []string) *harness.Oracle {
	t.Helper()

	o := harness.StartOracle(t, harness.OracleOptions{Bin: bin, Env: env})
	o.WaitReady(t, 60*time.Second)
	svc.add(t, o.URL)

	_, ok := eventually(10*time.Second, 20*time.Millisecond, func() bool { return svc.isReady(o.URL) })
	require.True(t, ok, "the service does not see %s ready", o.URL)

	return o
}

// rollOut replaces each old replica by a new one as the Deployment's rolling update does with
// two replicas (maxSurge 1, maxUnavailable 0: the chart sets no strategy, these are
// Kubernetes' defaults rounded): the new one ready first, then the old one terminated; it
// leaves the service when its readiness fails, and exits after its shutdown delay.
func rollOut(t *testing.T, svc *service, old []*harness.Oracle, bin string, env []string) {
	t.Helper()

	for _, o := range old {
		startReplica(t, svc, bin, env)

		exited := make(chan struct{})

		go func() { o.Stop(t); close(exited) }()

		_, ok := eventually(10*time.Second, 20*time.Millisecond, func() bool { return !svc.isReady(o.URL) })
		assert.True(t, ok, "the terminating replica %s stays ready", o.URL)

		<-exited
		svc.remove(o.URL)
		assert.Equal(t, len(old), svc.readyCount(), "ready replicas after replacing %s", o.URL)
	}
}

// waitPolicies waits until, once Helm has applied chart (it returns when every object is
// stored), Kyverno reports every admission and generate policy of engine's set ready and its
// webhooks match PVCs.
func waitPolicies(t *testing.T, k *kube, chart, engine string) {
	t.Helper()

	i := slices.IndexFunc(policySets, func(p policySet) bool { return p.engine == engine })
	require.GreaterOrEqual(t, i, 0, "no policy set %q", engine)

	took, ok := eventually(90*time.Second, 100*time.Millisecond, func() bool {
		for _, kind := range policySets[i].kinds {
			if !policiesReady(t, k, kind) {
				return false
			}
		}

		return webhooksMatchPVCs(t, k)
	})
	require.True(t, ok, "the policies of %s are not ready", chart)
	t.Logf("policies of %s ready %s after helm returned", chart, took.Round(time.Millisecond))
}

// waitCycles waits until the prober has completed n cycles in phase.
func waitCycles(p *prober, phase string, n int) {
	eventually(2*time.Minute, 50*time.Millisecond, func() bool {
		c, _ := p.results()

		return c[phase] >= n
	})
}

// checkUpgraded checks the release after the upgrade: its history (the previous chart, then the
// released one), the stored Deployment (two replicas, the registry's image, which resolves
// there to the index of both platforms), the policies (engine's set, the other one removed by
// Helm) and the PodDisruptionBudget.
func checkUpgraded(t *testing.T, rel released, k *kube, previous, engine string) {
	t.Helper()

	var history []struct {
		Chart  string `json:"chart"`
		Status string `json:"status"`
	}
	require.NoError(t, json.Unmarshal([]byte(helmStep(t, rel, k, "history", release, "-n", release, "-o", "json")), &history))
	require.Len(t, history, 2)
	assert.Equal(t, previous, history[0].Chart)
	assert.Equal(t, "backup-oracle-"+rel.version, history[1].Chart)
	assert.Equal(t, "deployed", history[1].Status)
	assert.Equal(t, "superseded", history[0].Status)

	d := k.get(t, "/apis/apps/v1/namespaces/"+release+"/deployments/"+release)
	require.Equal(t, http.StatusOK, d.Code, d.Raw)
	assert.EqualValues(t, 2, nested(d.Body, "spec", "replicas"))

	containers, _ := nested(d.Body, "spec", "template", "spec", "containers").([]any)
	require.Len(t, containers, 1)

	image := str(containers[0].(map[string]any), "image") //nolint:forcetypeassert // a container
	assert.Equal(t, rel.image+":"+rel.version, image, "the Deployment's image")
	assert.Len(t, platformDigests(t, released{image: rel.image, version: rel.version, env: rel.env}), len(imagePlatforms),
		"the Deployment's image resolves in the registry")

	for set, path := range map[string]string{
		"clusterpolicy": "/apis/kyverno.io/v1/clusterpolicies/backup-oracle-admission",
		"cel":           "/apis/policies.kyverno.io/v1/validatingpolicies/backup-oracle-admission",
	} {
		want := http.StatusNotFound
		if set == engine {
			want = http.StatusOK
		}

		assert.Equal(t, want, k.get(t, path).Code, "%s after the upgrade to the %s set", path, engine)
	}

	pdb := k.get(t, "/apis/policy/v1/namespaces/"+release+"/poddisruptionbudgets/"+release)
	require.Equal(t, http.StatusOK, pdb.Code, pdb.Raw)
	assert.EqualValues(t, 1, nested(pdb.Body, "spec", "minAvailable"))
}
