//go:build e2e

package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness"
)

// Who may ask (README, "Who may ask"), end to end: the oracle serves HTTPS and verifies callers
// with the real API server (TokenReview, SubjectAccessReview, through the chart's RBAC), and
// every Kyverno version's real admission controller gates PVCs with both policy sets over TLS,
// sending its projected token (ClusterPolicy set) or the chart's static token (CEL set).
const (
	securedA, securedB = "secured-a", "secured-b" // namespaces holding a backup of PVC "data"
	kyvernoAudience    = "kyverno-svc.kyverno.io"
	policyTokenSecret  = "backup-oracle-policy-token"
)

// securedStack is a stack with a secured oracle.
type securedStack struct {
	s      *stack
	k      kyvernoUnderTest
	helm   string
	ca     *harness.TestCA
	certs  [2]string // the oracle's certificate and key files
	oracle *harness.Oracle
	port   int
}

// whoMayAsk runs, on stack s of Kyverno version k (the suite's, whose admission controller
// already sends its projected token and trusts s.oracleCA: prepareKyvernoClient), both policy sets against a second,
// secured oracle on repository; with callers (the newest version) it also checks the oracle's
// answers to callers without a token, with a token of another audience, without RBAC, a
// namespace's viewer, an operator (API, console, CLI), and a certificate renewed on disk.
func whoMayAsk(t *testing.T, s *stack, helm string, k kyvernoUnderTest, oracleBin, repository string, callers bool) {
	start := time.Now()

	require.NotNil(t, s.oracleCA, "prepareKyvernoClient ran before Kyverno started")
	ss := &securedStack{s: s, k: k, helm: helm, ca: s.oracleCA, port: freePort(t)}
	ss.certs = [2]string{filepath.Join(s.dir, "tls.crt"), filepath.Join(s.dir, "tls.key")}
	ss.ca.Issue(t, ss.certs[0], ss.certs[1], 1)

	// The chart's RBAC: the oracle's auth-delegator role, the viewer, operator and policy-caller
	// roles, and Kyverno's admission controller's aggregated rules (here bound directly, as
	// kyvernoBindings does) for both sets.
	s.kube.apply(t, render(t, helm, "default", ss.chartArgs("cel", "--show-only", "templates/auth.yaml",
		"--show-only", "templates/policies/kyverno-rbac.yaml")...))

	for _, ns := range []string{release, securedA, securedB} {
		ss.create(t, "/api/v1/namespaces", ns)
	}

	policyToken := randomHex(t)
	s.kube.mustOK(t, http.MethodPost, "/api/v1/namespaces/"+release+"/secrets", map[string]any{"metadata": map[string]any{"name": policyTokenSecret},
		"stringData": map[string]any{"token": policyToken}}, "")
	tokenFile := filepath.Join(s.dir, "policy-token")
	require.NoError(t, os.WriteFile(tokenFile, []byte(policyToken+"\n"), 0o600))

	// The oracle asks the API server as its service account (the chart's auth-delegator role only).
	ss.create(t, "/api/v1/namespaces/"+release+"/serviceaccounts", release)
	kubeconfig := ss.kubeconfig(t, release, release)

	operator := ss.serviceAccountToken(t, "default", "e2e-operator", "ClusterRoleBinding", release+"-operator")
	ss.oracle = harness.StartOracle(t, harness.OracleOptions{
		Bin: oracleBin, CAFile: ss.ca.File, Token: operator,
		Args: []string{"--listen-address", hostPort(ss.port)},
		Env: []string{
			"BACKEND_TYPE=kopia-fs", "KOPIA_REPOSITORY_PATH=" + repository, "KOPIA_PASSWORD_FILE=" + writePassword(t, s.dir),
			"TLS_CERT_FILE=" + ss.certs[0], "TLS_KEY_FILE=" + ss.certs[1], "AUTH_MODE=kubernetes", "AUTH_TOKEN_FILE=" + tokenFile,
			"KUBECONFIG=" + kubeconfig, "GATE_CHECK_INTERVAL=0", "LOG_LEVEL=debug",
		},
	})
	s.all = append(s.all, ss.oracle.PID())
	require.True(t, strings.HasPrefix(ss.oracle.URL, "https://"), ss.oracle.URL)
	ss.oracle.WaitReady(t, time.Minute)

	for _, set := range policySets {
		t.Run(set.engine, func(t *testing.T) { ss.gates(t, set) })
	}

	if callers {
		t.Run("callers", ss.callers)
		t.Run("certificate-renewed", ss.renewal)
		t.Run("cli", func(t *testing.T) { ss.cli(t, oracleBin, operator) })
	}

	t.Logf("Kyverno %s: secured oracle checked in %s", k.version, time.Since(start).Round(time.Millisecond))
}

// prepareKyvernoClient makes the admission controller s starts next send, on service calls, a
// token of its service account for Kyverno's audience, as Kyverno's chart projects it
// (apiCallToken), and trust the CA of the secured oracle (s.oracleCA), as Kyverno's chart's
// caCertificates.data makes it.
func prepareKyvernoClient(t *testing.T, s *stack) {
	t.Helper()

	s.oracleCA = harness.NewTestCA(t, s.dir)

	s.kube.apply(t, kyvernoSetup)
	ss := &securedStack{s: s}
	s.kyvernoToken = filepath.Join(s.dir, "kyverno-apicall-token")
	require.NoError(t, os.WriteFile(s.kyvernoToken, []byte(ss.token(t, "kyverno", "kyverno-admission-controller", kyvernoAudience)), 0o600))
}

// create creates the object named name at collection path (a namespace, a service account)
// unless it exists: the suite's earlier steps may have made it.
func (ss *securedStack) create(t testing.TB, path, name string) {
	r := ss.s.kube.do(t, http.MethodPost, path, map[string]any{"metadata": map[string]any{"name": name}}, "")
	require.Contains(t, []int{http.StatusCreated, http.StatusConflict}, r.Code, "%s %s: %v", path, name, r.Body)
}

// chartArgs are the chart's arguments for the secured oracle: engine's policies calling it over
// TLS (its CA, as tls.caBundle with a certificate the chart does not make) with authentication.
func (ss *securedStack) chartArgs(engine string, args ...string) []string {
	return append([]string{"--set", "tls.enabled=true", "--set", "auth.enabled=true", "--set", "policies.engine=" + engine,
		"--set", "tls.existingSecret=e2e-tls", "--set-file", "tls.caBundle=" + ss.ca.File,
		"--set", "auth.policyToken.existingSecret=" + policyTokenSecret,
		"--set", "policies.oracleURL=https://" + hostPort(ss.port)}, args...)
}

// gates installs set's admission policies and dry-runs the creation of two labelled PVCs: the one
// with a backup is restored, the other admitted as fresh; the oracle saw the identity the set
// sends.
func (ss *securedStack) gates(t *testing.T, set policySet) {
	show := []string{}
	for _, tpl := range set.templates {
		if !strings.Contains(tpl, "generate") {
			show = append(show, "--show-only", "templates/policies/"+tpl+".yaml")
		}
	}

	policies := render(t, ss.helm, "default", ss.chartArgs(set.engine, show...)...)
	require.Contains(t, policies, "https://"+hostPort(ss.port))
	if set.engine == "clusterpolicy" { // the CEL set's client trusts the controller's trust store (prepareKyvernoClient)
		require.Contains(t, policies, "BEGIN CERTIFICATE", "the ClusterPolicies carry the oracle's CA")
	}
	ss.s.kube.apply(t, policies)

	t.Cleanup(func() {
		out, err := ss.s.kube.kubectlRun(policies, "delete", "--wait", "-f", "-")
		assert.NoError(t, err, out)
	})

	var got map[string]any

	if set.engine == "cel" && ss.k.mutatingNoResourceLib {
		ss.failSafe(t)
		return
	}

	took, ok := eventually(90*time.Second, 500*time.Millisecond, func() bool {
		got = ss.dryRunPVC(t, securedA, "data")
		return str(got, "spec", "dataSourceRef", "name") == "data-backup"
	})
	require.True(t, ok, "the PVC with a backup is not restored through the secured oracle: %v\n%s", got, ss.oracle.Stderr())
	t.Logf("%s: restored over TLS after %s", set.engine, took.Round(time.Millisecond))

	fresh := ss.dryRunPVC(t, securedA, "never-backed-up")
	assert.Equal(t, "never-backed-up", str(fresh, "metadata", "name"), "admitted: %v", fresh)
	assert.Empty(t, str(fresh, "spec", "dataSourceRef", "name"), "fresh: no data source")

	want := map[string]string{"clusterpolicy": "system:serviceaccount:kyverno:kyverno-admission-controller", "cel": "backup-oracle:static-token"}[set.engine]
	assert.Contains(t, ss.oracle.Stderr(), `user=`+want, "the oracle authorised the identity the %s set sends", set.engine)
}

// failSafe: on a version whose MutatingPolicy cannot read the token (mutatingNoResourceLib),
// the CEL set denies the PVC with a backup (the mutation did not apply) once its validation
// reached the oracle as the static token's caller; a PVC without backup is still admitted.
func (ss *securedStack) failSafe(t *testing.T) {
	var got map[string]any

	_, ok := eventually(90*time.Second, 500*time.Millisecond, func() bool {
		got = ss.dryRunPVC(t, securedA, "data")
		return strings.Contains(str(got, "message"), "the mutation did not apply")
	})
	require.True(t, ok, "the PVC with a backup is denied (no data source): %v\n%s", got, ss.oracle.Stderr())

	fresh := ss.dryRunPVC(t, securedA, "never-backed-up")
	assert.Equal(t, "never-backed-up", str(fresh, "metadata", "name"), "admitted: %v", fresh)
	assert.Contains(t, ss.oracle.Stderr(), "user=backup-oracle:static-token", "the validation asked as the static token's caller")
	t.Logf("Kyverno %s, CEL set with authentication: the PVC to restore denied, fail safe (%s)", ss.k.version, str(got, "message"))
}

// dryRunPVC sends a server-side dry-run create of a labelled PVC and returns what admission made
// of it (the object, or the refusal's status).
func (ss *securedStack) dryRunPVC(t *testing.T, ns, name string) map[string]any {
	r := ss.s.kube.do(t, http.MethodPost, "/api/v1/namespaces/"+ns+"/persistentvolumeclaims?dryRun=All", map[string]any{
		"apiVersion": "v1", "kind": "PersistentVolumeClaim",
		"metadata": map[string]any{"name": name, "namespace": ns, "labels": map[string]any{"backup": "daily"}},
		"spec":     map[string]any{"accessModes": []string{"ReadWriteOnce"}, "resources": map[string]any{"requests": map[string]any{"storage": "1Gi"}}},
	}, "")

	return r.Body
}

// token is a token of service account ns/name for audience (empty: the API server's).
func (ss *securedStack) token(t testing.TB, ns, name, audience string) string {
	spec := map[string]any{"expirationSeconds": 7200}
	if audience != "" {
		spec["audiences"] = []string{audience}
	}

	res := ss.s.kube.mustOK(t, http.MethodPost, "/api/v1/namespaces/"+ns+"/serviceaccounts/"+name+"/token",
		map[string]any{"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}, "")
	token := str(res.Body, "status", "token")
	require.NotEmpty(t, token)

	return token
}

// serviceAccountToken creates service account ns/name, binds it to ClusterRole role (kind
// ClusterRoleBinding, or RoleBinding in ns; no binding when role is empty) and returns a token of
// it for the service's own audience.
func (ss *securedStack) serviceAccountToken(t testing.TB, ns, name, kind, role string) string {
	k := ss.s.kube
	k.mustOK(t, http.MethodPost, "/api/v1/namespaces/"+ns+"/serviceaccounts", map[string]any{"metadata": map[string]any{"name": name}}, "")

	if role != "" {
		path := "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings"
		if kind == "RoleBinding" {
			path = "/apis/rbac.authorization.k8s.io/v1/namespaces/" + ns + "/rolebindings"
		}

		k.mustOK(t, http.MethodPost, path, map[string]any{
			"metadata": map[string]any{"name": "e2e-" + name},
			"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
			"subjects": []map[string]any{{"kind": "ServiceAccount", "name": name, "namespace": ns}},
		}, "")
	}

	return ss.token(t, ns, name, "backup-oracle")
}

func (ss *securedStack) kubeconfig(t testing.TB, ns, name string) string {
	path := filepath.Join(ss.s.dir, name+"-kubeconfig")
	require.NoError(t, os.WriteFile(path, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: e2e, cluster: {server: %q, insecure-skip-tls-verify: true}}]
users: [{name: sa, user: {token: %q}}]
contexts: [{name: e2e, context: {cluster: e2e, user: sa}}]
current-context: e2e
`, ss.s.kube.url, ss.token(t, ns, name, ""))), 0o600))

	return path
}

func writePassword(t testing.TB, dir string) string {
	pw := filepath.Join(dir, "kopia-password")
	require.NoError(t, os.WriteFile(pw, []byte(kopiaPassword+"\n"), 0o600))

	return pw
}

// ask sends GET path with token (none: no Authorization) and returns the status and body.
func (ss *securedStack) ask(t *testing.T, token, path string) (int, string) {
	pool := x509.NewCertPool()
	pem, err := os.ReadFile(ss.ca.File)
	require.NoError(t, err)
	pool.AppendCertsFromPEM(pem)

	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}

	req, err := http.NewRequest(http.MethodGet, ss.oracle.URL+path, nil) //nolint:noctx // bounded by the client's timeout
	require.NoError(t, err)

	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}

	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()

	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)

	return resp.StatusCode, string(b)
}

// callers: who gets what, each identity verified and authorised by the real API server.
func (ss *securedStack) callers(t *testing.T) {
	nobody := ss.serviceAccountToken(t, "default", "e2e-nobody", "", "")
	viewer := ss.serviceAccountToken(t, securedA, "e2e-viewer", "RoleBinding", release+"-viewer")
	operator := ss.token(t, "default", "e2e-operator", "backup-oracle")
	otherAudience := ss.token(t, "default", "e2e-operator", "vault")

	code, body := ss.ask(t, "", "/healthz")
	assert.Equal(t, http.StatusOK, code, "the probes are open: %s", body)

	code, body = ss.ask(t, "", "/exists/"+securedA+"/data")
	assert.Equal(t, http.StatusUnauthorized, code, body)
	assert.Contains(t, body, "no credentials")

	code, body = ss.ask(t, otherAudience, "/exists/"+securedA+"/data")
	assert.Equal(t, http.StatusUnauthorized, code, "a token for another audience: %s", body)
	assert.Contains(t, body, "audience", "the API server's reason is given")
	assert.NotContains(t, body, otherAudience, "the token is never echoed")

	code, body = ss.ask(t, nobody, "/exists/"+securedA+"/data")
	assert.Equal(t, http.StatusForbidden, code, body)
	assert.Contains(t, body, `may not get backups.backup-oracle.io in namespace \"`+securedA+`\"`)

	code, body = ss.ask(t, viewer, "/backups")
	require.Equal(t, http.StatusOK, code, body)

	var inv struct {
		Backups []struct {
			Namespace string `json:"namespace"`
		} `json:"backups"`
		VisibleNamespaces []string `json:"visibleNamespaces"`
	}

	require.NoError(t, json.Unmarshal([]byte(body), &inv))
	assert.Equal(t, []string{securedA}, inv.VisibleNamespaces, "a namespace's viewer sees that namespace")
	require.NotEmpty(t, inv.Backups)

	for _, b := range inv.Backups {
		assert.Equal(t, securedA, b.Namespace)
	}

	code, body = ss.ask(t, viewer, "/")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "<td>"+securedA+"</td>")
	assert.NotContains(t, body, "<td>"+securedB+"</td>", "the console shows the viewer's namespace only")
	assert.NotContains(t, body, `id="backends"`)

	code, _ = ss.ask(t, viewer, "/status")
	assert.Equal(t, http.StatusForbidden, code, "the repositories are for operators")

	code, body = ss.ask(t, operator, "/backups")
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, `"namespace":"`+securedB+`"`)
	assert.NotContains(t, body, "visibleNamespaces")

	for _, path := range []string{"/status", "/metrics", "/identity/" + securedA + "/data", "/"} {
		code, body = ss.ask(t, operator, path)
		assert.Equal(t, http.StatusOK, code, "%s: %s", path, body)
	}
}

// renewal: a certificate renewed on disk is served without a restart.
func (ss *securedStack) renewal(t *testing.T) {
	served := func() int64 {
		conn, err := tls.Dial("tcp", hostPort(ss.port), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // reading the served certificate
		if err != nil {
			return 0
		}
		defer conn.Close()

		return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}

	require.Equal(t, int64(1), served())

	pid := ss.oracle.PID()
	ss.ca.Issue(t, ss.certs[0], ss.certs[1], 2)

	took, ok := eventually(90*time.Second, 200*time.Millisecond, func() bool { return served() == 2 })
	require.True(t, ok, "the renewed certificate is not served:\n%s", ss.oracle.Stderr())
	assert.Equal(t, pid, ss.oracle.PID())
	assert.False(t, ss.oracle.Exited(), "served by the same process")
	t.Logf("renewed certificate served after %s", took.Round(time.Millisecond))

	code, _ := ss.ask(t, ss.token(t, "default", "e2e-operator", "backup-oracle"), "/exists/"+securedA+"/data")
	assert.Equal(t, http.StatusOK, code)
}

// cli: backup-oracle check against the secured server, with --ca-file and --token.
func (ss *securedStack) cli(t *testing.T, bin, token string) {
	run := func(args ...string) (string, int) {
		cmd := exec.Command(bin, append([]string{"check", "--server", ss.oracle.URL, "--ca-file", ss.ca.File}, args...)...) //nolint:gosec // the binary under test
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + ss.s.dir}

		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()

		code := 0
		if ee, ok := err.(*exec.ExitError); ok { //nolint:errorlint // the command's exit status
			code = ee.ExitCode()
		}

		return out.String(), code
	}

	out, code := run("--token", token, securedA+"/data")
	assert.Equal(t, 0, code, "restore: %s", out)

	out, code = run(securedA + "/data")
	assert.NotEqual(t, 0, code)
	assert.True(t, slices.ContainsFunc([]string{"no credentials", "refused the credentials"}, func(s string) bool { return strings.Contains(out, s) }), out)
}
