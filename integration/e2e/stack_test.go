//go:build e2e

package e2e

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
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

// stack is etcd, kube-apiserver and Kyverno's controllers, all on 127.0.0.1.
type stack struct {
	dir         string
	etcd        *proc
	apiserver   *proc
	controllers []*proc // Kyverno's admission, background and cleanup controllers
	webhookPort int     // the admission controller's
	all         []int   // every PID started, checked at the end
	kube        *kube
	// admissionReports: the admission controller writes admission reports (off but for the gate
	// self-test's check that its canary leaves none).
	admissionReports bool
	// kyvernoToken, when set, is the file holding the token the admission controller sends on
	// service calls (as Kyverno's chart projects it: a token of its service account for the
	// audience kyverno-svc.kyverno.io).
	kyvernoToken string
	// oracleCA, when set, signs the secured oracle's certificate; the admission controller
	// trusts it as its system trust store (SSL_CERT_FILE), as Kyverno's chart's
	// caCertificates.data has it: the CEL set's http library trusts nothing else.
	oracleCA *harness.TestCA
}

// startStack starts etcd and kube-apiserver and registers the cleanup that stops everything in
// the safe order (controllers, kube-apiserver and its exit, etcd), then checks no PID is left.
func startStack(t testing.TB) *stack {
	t.Helper()

	etcdBin, apiserverBin, kubectl := harness.Tool(t, "etcd"), harness.Tool(t, "kube-apiserver"), harness.Tool(t, "kubectl")

	dir, err := os.MkdirTemp("", "backup-oracle-e2e-")
	require.NoError(t, err)

	s := &stack{dir: dir}
	t.Cleanup(func() { s.stop(t) })

	clientPort, peerPort := freePort(t), freePort(t)
	s.etcd = startProc(t, dir, "etcd", etcdBin, nil,
		"--name=e2e", "--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls=http://"+hostPort(clientPort), "--advertise-client-urls=http://"+hostPort(clientPort),
		"--listen-peer-urls=http://"+hostPort(peerPort), "--initial-advertise-peer-urls=http://"+hostPort(peerPort),
		"--initial-cluster=e2e=http://"+hostPort(peerPort), "--unsafe-no-fsync", "--log-level=warn")
	s.all = append(s.all, s.etcd.pid())

	_, ok := eventually(30*time.Second, 100*time.Millisecond, func() bool {
		resp, err := http.Get("http://" + hostPort(clientPort) + "/health") //nolint:noctx // short poll
		if err != nil {
			return false
		}
		resp.Body.Close()

		return resp.StatusCode == http.StatusOK
	})
	require.True(t, ok, "etcd not healthy:\n%s", s.etcd.tail(20))

	token := randomHex(t)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tokens.csv"), []byte(token+`,admin,admin,"system:masters"`+"\n"), 0o600))
	writeServiceAccountKeys(t, dir)

	port := freePort(t)
	s.apiserver = startProc(t, dir, "kube-apiserver", apiserverBin, nil,
		"--etcd-servers=http://"+hostPort(clientPort), "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", port), "--cert-dir="+filepath.Join(dir, "certs"),
		"--token-auth-file="+filepath.Join(dir, "tokens.csv"), "--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+filepath.Join(dir, "sa.pub"),
		"--service-account-signing-key-file="+filepath.Join(dir, "sa.key"),
		"--service-cluster-ip-range=10.0.0.0/24", "--enable-priority-and-fairness=false")
	s.all = append(s.all, s.apiserver.pid())

	url := "https://" + hostPort(port)
	kubeconfig := filepath.Join(dir, "kubeconfig")
	require.NoError(t, os.WriteFile(kubeconfig, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: e2e, cluster: {server: %q, insecure-skip-tls-verify: true}}]
users: [{name: admin, user: {token: %q}}]
contexts: [{name: e2e, context: {cluster: e2e, user: admin}}]
current-context: e2e
`, url, token)), 0o600))
	s.kube = newKube(url, token, kubeconfig, kubectl)

	took, ok := eventually(60*time.Second, 100*time.Millisecond, func() bool {
		if s.apiserver.exited() {
			return false
		}

		r, err := s.kube.client.Get(url + "/readyz") //nolint:noctx // short poll
		if err != nil {
			return false
		}
		r.Body.Close()

		return r.StatusCode == http.StatusOK
	})
	require.True(t, ok, "kube-apiserver not ready:\n%s", s.apiserver.tail(30))
	t.Logf("kube-apiserver ready in %s", took.Round(time.Millisecond))

	return s
}

// stop stops the Kyverno controllers, then kube-apiserver (waiting for its exit), then etcd:
// stopped together, the API server hangs. Then it checks that no started process is left.
func (s *stack) stop(t testing.TB) {
	for _, p := range s.controllers {
		if !p.stop(20 * time.Second) {
			t.Logf("%s ignored SIGTERM for 20s: killed", p.name)
		}
	}

	if s.apiserver != nil && !s.apiserver.stop(30*time.Second) {
		t.Logf("kube-apiserver ignored SIGTERM for 30s: killed")
	}

	if s.etcd != nil && !s.etcd.stop(20*time.Second) {
		t.Logf("etcd ignored SIGTERM for 20s: killed")
	}

	for _, pid := range s.all {
		assert.True(t, pidGone(pid), "process %d is still running", pid)
	}

	if t.Failed() {
		t.Logf("logs kept in %s", s.dir)

		for _, p := range append(s.controllers, s.apiserver, s.etcd) {
			if p != nil {
				t.Logf("--- %s (last lines)\n%s", p.name, p.tail(15))
			}
		}

		return
	}

	_ = os.RemoveAll(s.dir)
}

func randomHex(t testing.TB) string {
	t.Helper()

	b := make([]byte, 16)
	_, err := rand.Read(b)
	require.NoError(t, err)

	return hex.EncodeToString(b)
}

// writeServiceAccountKeys writes sa.key and sa.pub, the key pair the API server signs and
// checks service account tokens with.
func writeServiceAccountKeys(t testing.TB, dir string) {
	t.Helper()

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)

	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	require.NoError(t, err)

	require.NoError(t, os.WriteFile(filepath.Join(dir, "sa.key"),
		pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "sa.pub"),
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600))
}

// yamlDocs joins manifests into one multi-document stream.
func yamlDocs(docs ...string) string { return strings.Join(docs, "\n---\n") }
