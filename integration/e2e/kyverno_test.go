//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness"
)

// volsyncCRDs are the Kopia fork's CRDs (what the policies generate for the Kopia mover),
// vendored under chart/test/testdata/crds (see its README for source and version).
func volsyncCRDs() string {
	if d := os.Getenv("VOLSYNC_CRDS"); d != "" {
		return d
	}

	return filepath.Join("..", "..", "chart", "test", "testdata", "crds", "volsync-kopia-fork-v0.17.11")
}

// kyvernoSetup is what Kyverno's Helm chart would install besides the controllers: its
// namespace and ConfigMaps (updateRequestThreshold: without it generate rules are skipped),
// the controllers' service accounts, and the source Secret the policies clone.
const kyvernoSetup = `apiVersion: v1
kind: Namespace
metadata: {name: kyverno}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: kyverno, namespace: kyverno}
data: {updateRequestThreshold: "1000"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: kyverno-metrics, namespace: kyverno}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: kyverno-admission-controller, namespace: kyverno}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: kyverno-background-controller, namespace: kyverno}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: kyverno-cleanup-controller, namespace: kyverno}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: kyverno-reports-controller, namespace: kyverno}
---
# Kyverno's own chart lets its reports controller read every resource; a CEL policy is not Ready
# until it may read what the policy matches.
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: e2e-kyverno-reports-controller}
rules: [{apiGroups: ["*"], resources: ["*"], verbs: [get, list, watch]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: e2e-kyverno-reports-controller}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: e2e-kyverno-reports-controller}
subjects: [{kind: ServiceAccount, name: kyverno-reports-controller, namespace: kyverno}]
---
apiVersion: v1
kind: Namespace
metadata: {name: volsync-system}
---
apiVersion: v1
kind: Secret
metadata: {name: volsync-kopia, namespace: volsync-system}
stringData:
  KOPIA_REPOSITORY: filesystem:///mnt/repository
  KOPIA_FS_PATH: /mnt/repository
  KOPIA_PASSWORD: e2e-password
`

// kyvernoBindings bind each controller's service account to the chart's ClusterRole for it. In a
// cluster those roles are aggregated into Kyverno's own; aggregation is kube-controller-manager's
// job, which does not run here, so direct bindings stand in for it. Kyverno checks these
// permissions (SubjectAccessReview) when a generate or cleanup policy is created.
func kyvernoBindings(release string) string {
	docs := make([]string, 0, 3)
	for _, c := range []string{"admission", "background", "cleanup"} {
		docs = append(docs, fmt.Sprintf(`apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: e2e-%[1]s}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "%[2]s:kyverno-%[1]s-controller"}
subjects: [{kind: ServiceAccount, name: kyverno-%[1]s-controller, namespace: kyverno}]`, c, release))
	}

	return yamlDocs(docs...)
}

// installCRDs applies Kyverno's and VolSync's CRDs and waits until every CRD is Established.
func (s *stack) installCRDs(t *testing.T) {
	t.Helper()

	crds := os.Getenv("KYVERNO_CRDS")
	if crds == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("KYVERNO_CRDS is not set (run through `make e2e`)")
		}

		t.Skip("KYVERNO_CRDS is not set; run `make e2e`")
	}

	for _, dir := range []string{crds, volsyncCRDs()} {
		out, err := s.kube.kubectlRun("", "apply", "--server-side", "--field-manager", "e2e", "-R", "-f", dir)
		require.NoError(t, err, "apply CRDs from %s:\n%s", dir, out)
	}

	took, ok := eventually(60*time.Second, 200*time.Millisecond, func() bool {
		r := s.kube.get(t, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
		items, _ := r.Body["items"].([]any)
		for _, it := range items {
			if !conditionTrue(it, "Established") {
				return false
			}
		}

		return len(items) > 0
	})
	require.True(t, ok, "CRDs not established")
	t.Logf("CRDs established in %s", took.Round(time.Millisecond))
}

func conditionTrue(obj any, condition string) bool {
	m, _ := obj.(map[string]any)
	conds, _ := nested(m, "status", "conditions").([]any)

	for _, c := range conds {
		cm, _ := c.(map[string]any)
		if cm["type"] == condition && cm["status"] == "True" {
			return true
		}
	}

	return false
}

// startKyverno starts the admission, background and cleanup controllers with
// --apiCallTimeout=5s, loopback allowed as a service-call target, and webhooks registered with
// URLs on 127.0.0.1; it returns once all three are serving.
func (s *stack) startKyverno(t *testing.T, release string) {
	t.Helper()

	admissionBin := harness.Tool(t, "kyverno-admission-controller")
	backgroundBin := harness.Tool(t, "kyverno-background-controller")
	cleanupBin := harness.Tool(t, "kyverno-cleanup-controller")

	s.kube.apply(t, kyvernoSetup)
	s.kube.apply(t, kyvernoBindings(release))

	env := func(name, svc string) []string {
		return []string{
			"KYVERNO_NAMESPACE=kyverno", "KYVERNO_ROLE_NAME=kyverno", "INIT_CONFIG=kyverno",
			"METRICS_CONFIG=kyverno-metrics", "KYVERNO_SERVICEACCOUNT_NAME=" + name,
			"KYVERNO_DEPLOYMENT=" + name, "KYVERNO_POD_NAME=" + name + "-e2e",
			"KYVERNO_SVC=" + svc,
		}
	}
	common := func() []string {
		return []string{
			"--kubeconfig=" + s.kube.kubeconfig, "--metricsHost=127.0.0.1", fmt.Sprintf("--metricsPort=%d", freePort(t)),
			"--httpBlocklist=169.254.169.254/32", "--apiCallTimeout=5s", "--loggingFormat=text",
		}
	}

	webhookPort := freePort(t)
	admission := startProc(t, s.dir, "kyverno-admission-controller", admissionBin, env("kyverno-admission-controller", "kyverno-svc"),
		append(common(), "--serverIP="+hostPort(webhookPort), "--webhookServerHost=127.0.0.1",
			fmt.Sprintf("--webhookServerPort=%d", webhookPort),
			"--caSecretName=kyverno-svc.kyverno.svc.kyverno-tls-ca",
			"--tlsSecretName=kyverno-svc.kyverno.svc.kyverno-tls-pair",
			"--backgroundServiceAccountName=system:serviceaccount:kyverno:kyverno-background-controller",
			"--reportsServiceAccountName=system:serviceaccount:kyverno:kyverno-reports-controller",
			"--controllerRuntimeMetricsAddress=0", "--admissionReports=false")...)
	s.controllers = append(s.controllers, admission)
	s.all = append(s.all, admission.pid())

	background := startProc(t, s.dir, "kyverno-background-controller", backgroundBin, env("kyverno-background-controller", "kyverno-background-controller"),
		append(common(), "--controllerRuntimeMetricsAddress=0")...)
	s.controllers = append(s.controllers, background)
	s.all = append(s.all, background.pid())

	cleanupPort := freePort(t)
	cleanup := startProc(t, s.dir, "kyverno-cleanup-controller", cleanupBin, env("kyverno-cleanup-controller", "kyverno-cleanup-controller"),
		append(common(), "--serverIP="+hostPort(cleanupPort), "--cleanupServerHost=127.0.0.1",
			fmt.Sprintf("--cleanupServerPort=%d", cleanupPort),
			"--caSecretName=kyverno-cleanup-controller.kyverno.svc.kyverno-tls-ca",
			"--tlsSecretName=kyverno-cleanup-controller.kyverno.svc.kyverno-tls-pair")...)
	s.controllers = append(s.controllers, cleanup)
	s.all = append(s.all, cleanup.pid())

	start := time.Now()
	for _, w := range []struct {
		p    *proc
		path string
		what string
	}{
		{admission, "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/kyverno-policy-validating-webhook-cfg", "policy webhook"},
		{background, "/apis/coordination.k8s.io/v1/namespaces/kyverno/leases/kyverno-background-controller", "leader lease"},
		{cleanup, "/apis/coordination.k8s.io/v1/namespaces/kyverno/leases/kyverno-cleanup-controller", "leader lease"},
		{cleanup, "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/kyverno-cleanup-validating-webhook-cfg", "policy webhook"},
	} {
		_, ok := eventually(90*time.Second, 200*time.Millisecond, func() bool {
			require.False(t, w.p.exited(), "%s exited:\n%s", w.p.name, w.p.tail(30))

			r := s.kube.get(t, w.path)

			return r.Code == 200 && (str(r.Body, "spec", "holderIdentity") != "" || strings.Contains(w.path, "webhook"))
		})
		require.True(t, ok, "%s: no %s:\n%s", w.p.name, w.what, w.p.tail(30))
	}

	t.Logf("Kyverno controllers serving in %s", time.Since(start).Round(time.Millisecond))
}
