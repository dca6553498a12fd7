//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
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

// installCRDs applies Kyverno's CRDs (from kyvernoCRDs, the version's config/crds) and
// VolSync's, and waits until every CRD is Established.
func (s *stack) installCRDs(t *testing.T, kyvernoCRDs string) {
	t.Helper()

	for _, dir := range []string{kyvernoCRDs, volsyncCRDs()} {
		out, err := s.kube.kubectlRun("", "apply", "--server-side", "--field-manager", "e2e", "-R", "-f", dir)
		require.NoError(t, err, "apply CRDs from %s:\n%s", dir, out)
	}

	// The restic policies generate ExternalSecrets: Kyverno must know the kind when it starts
	// (its discovery of a CRD added later lags, and a generate policy naming an unknown kind is
	// refused).
	s.kube.apply(t, externalSecretCRD)

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

// e2eHTTPBlocklist is the test's --httpBlocklist (Kyverno 1.18+): the one the policies README
// recommends (link-local and metadata addresses, loopback) without loopback, where the oracle
// listens here. Kyverno exits at start-up on an entry it cannot parse.
const e2eHTTPBlocklist = "169.254.0.0/16,fe80::/10,metadata.google.internal,metadata.internal"

// kyvernoFlags are the flags every controller gets: --apiCallTimeout=5s (the README's
// requirement, where the version has it) and, unless defaultHTTP, e2eHTTPBlocklist.
func (s *stack) kyvernoFlags(t *testing.T, k kyvernoUnderTest, defaultHTTP bool) []string {
	t.Helper()

	flags := []string{"--kubeconfig=" + s.kube.kubeconfig, "--metricsHost=127.0.0.1", fmt.Sprintf("--metricsPort=%d", freePort(t)),
		"--loggingFormat=text"}
	if k.hasAPICallTimeout {
		flags = append(flags, "--apiCallTimeout=5s")
	}

	if k.hasHTTPBlocklist && !defaultHTTP {
		flags = append(flags, "--httpBlocklist="+e2eHTTPBlocklist)
	}

	return flags
}

func kyvernoEnv(name, svc string) []string {
	return []string{
		"KYVERNO_NAMESPACE=kyverno", "KYVERNO_ROLE_NAME=kyverno", "INIT_CONFIG=kyverno",
		"METRICS_CONFIG=kyverno-metrics", "KYVERNO_SERVICEACCOUNT_NAME=" + name,
		"KYVERNO_DEPLOYMENT=" + name, "KYVERNO_POD_NAME=" + name + "-e2e",
		"KYVERNO_SVC=" + svc,
	}
}

// startAdmissionController starts the admission controller with webhooks registered with URLs
// on 127.0.0.1:s.webhookPort.
func (s *stack) startAdmissionController(t *testing.T, k kyvernoUnderTest, defaultHTTP bool) *proc {
	t.Helper()

	env := kyvernoEnv("kyverno-admission-controller", "kyverno-svc")
	if s.oracleCA != nil {
		env = append(env, "SSL_CERT_FILE="+s.oracleCA.File)
	}

	bin, env, wrap := s.scopedToken(k, k.bin("kyverno"), env)
	p := startProc(t, s.dir, "kyverno-admission-controller", bin, env,
		append(wrap, append(s.kyvernoFlags(t, k, defaultHTTP), "--serverIP="+hostPort(s.webhookPort), "--webhookServerHost=127.0.0.1",
			fmt.Sprintf("--webhookServerPort=%d", s.webhookPort),
			"--caSecretName=kyverno-svc.kyverno.svc.kyverno-tls-ca",
			"--tlsSecretName=kyverno-svc.kyverno.svc.kyverno-tls-pair",
			"--backgroundServiceAccountName=system:serviceaccount:kyverno:kyverno-background-controller",
			"--reportsServiceAccountName=system:serviceaccount:kyverno:kyverno-reports-controller",
			"--controllerRuntimeMetricsAddress=0", fmt.Sprintf("--admissionReports=%t", s.admissionReports))...)...)
	s.all = append(s.all, p.pid())

	return p
}

// kyvernoTokenDir is where Kyverno 1.17.2 reads the token it sends on service calls, a path
// fixed in its code (pkg/engine/apicall/executor.go, getToken).
const kyvernoTokenDir = "/var/run/secrets/kyverno/apicall"

// scopedToken gives the admission controller s.kyvernoToken as Kyverno's chart does: from 1.18
// through KYVERNO_SCOPED_TOKEN_PATH; for 1.17.2, whose path is fixed, the controller runs in a
// private mount namespace (unshare, root) where a tmpfs over /run holds the token at that path,
// so nothing on the host changes. It returns the binary, environment and leading arguments.
func (s *stack) scopedToken(k kyvernoUnderTest, bin string, env []string) (string, []string, []string) {
	switch {
	case s.kyvernoToken == "":
		return bin, env, nil
	case k.scopedTokenEnv:
		return bin, append(env, "KYVERNO_SCOPED_TOKEN_PATH="+s.kyvernoToken), nil
	}

	script := `set -e; mount -t tmpfs tmpfs /run; mkdir -p ` + kyvernoTokenDir + `; cp "$1" ` + kyvernoTokenDir + `/token; shift; exec "$@"`

	return "unshare", env, []string{"--mount", "--propagation", "private", "sh", "-c", script, "sh", s.kyvernoToken, bin}
}

// startKyverno starts version k's admission, background and cleanup controllers (the
// admission controller with the version's default HTTP flags if admissionDefaultHTTP) and
// returns once all three are serving.
func (s *stack) startKyverno(t *testing.T, k kyvernoUnderTest, admissionDefaultHTTP bool) {
	t.Helper()

	s.kube.apply(t, kyvernoSetup)
	s.kube.apply(t, kyvernoBindings(release))

	s.webhookPort = freePort(t)
	admission := s.startAdmissionController(t, k, admissionDefaultHTTP)
	s.controllers = append(s.controllers, admission)

	background := startProc(t, s.dir, "kyverno-background-controller", k.bin("background-controller"),
		kyvernoEnv("kyverno-background-controller", "kyverno-background-controller"),
		append(s.kyvernoFlags(t, k, false), "--controllerRuntimeMetricsAddress=0")...)
	s.controllers = append(s.controllers, background)
	s.all = append(s.all, background.pid())

	cleanupPort := freePort(t)
	cleanup := startProc(t, s.dir, "kyverno-cleanup-controller", k.bin("cleanup-controller"),
		kyvernoEnv("kyverno-cleanup-controller", "kyverno-cleanup-controller"),
		append(s.kyvernoFlags(t, k, false), "--serverIP="+hostPort(cleanupPort), "--cleanupServerHost=127.0.0.1",
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

	s.waitAdmissionReady(t, admission)
	t.Logf("Kyverno %s controllers serving in %s", k.version, time.Since(start).Round(time.Millisecond))
}

// restartAdmissionController replaces the admission controller by one with the test's HTTP
// flags (e2eHTTPBlocklist), on the same webhook port, and waits until it serves.
func (s *stack) restartAdmissionController(t *testing.T, k kyvernoUnderTest) {
	t.Helper()

	start := time.Now()
	s.stopAdmissionController(t)
	s.startAdmissionControllerAgain(t, k)
	t.Logf("Kyverno %s admission controller restarted with --httpBlocklist=%s in %s", k.version, e2eHTTPBlocklist,
		time.Since(start).Round(time.Millisecond))
}

// stopAdmissionController stops the admission controller (SIGTERM, as a pod's deletion does); its
// webhook configurations stay registered.
func (s *stack) stopAdmissionController(t *testing.T) {
	t.Helper()

	old := s.controllers[0]
	require.True(t, old.stop(20*time.Second), "%s ignored SIGTERM", old.name)
}

// startAdmissionControllerAgain starts a stopped admission controller again with the test's HTTP
// flags (and s.admissionReports), on the same webhook port, and waits until it serves.
func (s *stack) startAdmissionControllerAgain(t *testing.T, k kyvernoUnderTest) {
	t.Helper()

	require.True(t, s.controllers[0].exited(), "the admission controller still runs")
	s.controllers[0] = s.startAdmissionController(t, k, false)
	s.waitAdmissionReady(t, s.controllers[0])
}

// waitAdmissionReady waits until the admission controller's webhook server answers its
// readiness path.
func (s *stack) waitAdmissionReady(t *testing.T, p *proc) {
	t.Helper()

	_, ok := eventually(90*time.Second, 200*time.Millisecond, func() bool {
		require.False(t, p.exited(), "%s exited:\n%s", p.name, p.tail(30))

		r, err := s.kube.client.Get("https://" + hostPort(s.webhookPort) + "/health/readiness") //nolint:noctx // short poll
		if err != nil {
			return false
		}
		r.Body.Close()

		return r.StatusCode == http.StatusOK
	})
	require.True(t, ok, "%s not ready:\n%s", p.name, p.tail(30))
}
