package kube

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/backup-oracle/backup-oracle/repo"
)

// status is an API server's error answer as client-go decodes it from the wire.
func status(code int32, reason metav1.StatusReason, msg string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: code, Reason: reason, Message: msg}}
}

// TestClassify: the API server's answers to a dry-run create, worded as kube-apiserver v1.35
// words them (k8s.io/apiserver: webhook/errors.ToStatusErr, util/webhook.ErrCallingWebhook,
// the RBAC authorizer's Forbidden, NamespaceLifecycle's NotFound), and what each means.
func TestClassify(t *testing.T) {
	cases := []struct {
		name    string
		err     error
		verdict repo.DryRunVerdict
		failed  bool // the API server could not be asked, or refused the request itself
	}{
		{"admitted", nil, repo.DryRunAdmitted, false},
		{"a Kyverno denial (code 400)", status(http.StatusBadRequest, "",
			`admission webhook "validate.kyverno.svc-fail" denied the request: resource PersistentVolumeClaim/c/x was blocked`), repo.DryRunDenied, false},
		{"a webhook denial without a code (403)", status(http.StatusForbidden, metav1.StatusReasonForbidden,
			`admission webhook "deny.example.com" denied the request without explanation`), repo.DryRunDenied, false},
		{"a ValidatingAdmissionPolicy denial (422, as kube-apiserver v1.35 answered end to end)", status(http.StatusUnprocessableEntity, metav1.StatusReasonInvalid,
			`persistentvolumeclaims "rights-probe" is forbidden: ValidatingAdmissionPolicy 'backup-oracle-canary-dry-run-only' with binding `+
				`'backup-oracle-canary-dry-run-only' denied request: only server-side dry runs may create PVCs here`), repo.DryRunDenied, false},
		{"a ValidatingAdmissionPolicy denial (403)", status(http.StatusForbidden, metav1.StatusReasonForbidden,
			`persistentvolumeclaims "x" is forbidden: ValidatingAdmissionPolicy 'p' with binding 'b' denied request: no`), repo.DryRunDenied, false},
		{"an invalid object", status(http.StatusUnprocessableEntity, metav1.StatusReasonInvalid,
			`PersistentVolumeClaim "x" is invalid: spec.resources[storage]: Required value`), 0, true},
		{"a quota", status(http.StatusForbidden, metav1.StatusReasonForbidden,
			`persistentvolumeclaims "x" is forbidden: exceeded quota: q, requested: persistentvolumeclaims=1, used: persistentvolumeclaims=0, limited: persistentvolumeclaims=0`),
			repo.DryRunDenied, false},
		{"Kyverno down (failurePolicy Fail)", status(http.StatusInternalServerError, metav1.StatusReasonInternalError,
			`Internal error occurred: failed calling webhook "mutate.kyverno.svc-fail": failed to call webhook: Post "https://127.0.0.1:1/mutate": connect: connection refused`),
			repo.DryRunWebhookFailed, false},
		{"admission timed out", status(http.StatusGatewayTimeout, metav1.StatusReasonTimeout, "request did not complete within requested timeout"),
			repo.DryRunWebhookFailed, false},
		{"RBAC", status(http.StatusForbidden, metav1.StatusReasonForbidden,
			`persistentvolumeclaims is forbidden: User "system:serviceaccount:backup-oracle:backup-oracle" cannot create resource "persistentvolumeclaims" `+
				`in API group "" in the namespace "backup-oracle-canary"`), 0, true},
		{"the canary namespace is missing", status(http.StatusNotFound, metav1.StatusReasonNotFound, `namespaces "backup-oracle-canary" not found`), 0, true},
		{"a webhook without dry-run support", status(http.StatusBadRequest, metav1.StatusReasonBadRequest,
			`admission webhook "legacy.example.com" does not support dry run`), 0, true},
		{"unauthenticated", status(http.StatusUnauthorized, metav1.StatusReasonUnauthorized, "Unauthorized"), 0, true},
		{"unreachable", errors.New(`Post "https://10.0.0.1:443/api/v1/namespaces/c/persistentvolumeclaims?dryRun=All": dial tcp 10.0.0.1:443: i/o timeout`), 0, true},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := classify(tc.err)
			if tc.failed {
				require.Error(t, err)
				assert.Equal(t, repo.DryRun{}, d)

				return
			}

			require.NoError(t, err)
			assert.Equal(t, tc.verdict, d.Verdict)

			if tc.err != nil {
				assert.Equal(t, tc.err.Error(), d.Message, "the API server's message is kept whole")
			}
		})
	}
}

func TestNew(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")

	_, err := New(Config{})
	require.ErrorIs(t, err, ErrNoConfig, "outside a cluster without a kubeconfig")

	_, err = New(Config{Kubeconfig: filepath.Join(t.TempDir(), "missing")})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "read kubeconfig")

	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: secret}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600))

	c, err := New(Config{Kubeconfig: kubeconfig, UserAgent: "backup-oracle/test"})
	require.NoError(t, err)
	assert.Equal(t, "https://127.0.0.1:6443", c.Host())
}

func TestDryRunCreatePVCRule(t *testing.T) {
	r := DryRunCreatePVCRule("backup-oracle-canary")
	assert.Equal(t, Rule{Namespace: "backup-oracle-canary", APIGroups: []string{""}, Resources: []string{"persistentvolumeclaims"}, Verbs: []string{"create"}, Why: r.Why}, r,
		"create PVCs in the canary namespace, nothing else")
}
