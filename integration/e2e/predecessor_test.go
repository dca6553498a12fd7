//go:build e2e

package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// predecessorNamespace and predecessorPVC: the repository holds a snapshot of this PVC (so an
// empty PVC is exactly the harm), and the oracle the scenario asks cannot read it.
const (
	predecessorNamespace = "e2e-predecessor"
	predecessorPVC       = "postgres"
)

// predecessorMatch is the match block of the scenario's policies: CREATE of labelled PVCs.
const predecessorMatch = `  matchConstraints:
    resourceRules:
      - apiGroups: [""]
        apiVersions: [v1]
        operations: ["CREATE"]
        resources: [persistentvolumeclaims]
    objectSelector:
      matchExpressions:
        - {key: backup, operator: In, values: [daily, hourly]}
  variables:
    - name: oracle
      expression: http.Get("ORACLE/exists/" + object.metadata.namespace + "/" + object.metadata.name)
`

// predecessorPolicies are the policies of the scenario's first step:
//   - a MutatingPolicy in the predecessor's style: it asks /exists (no ?unknownStatus=200) and
//     sets dataSourceRef when the answer says exists, reading nothing else; failurePolicy Fail,
//     so its author expects a failed call to deny;
//   - a probe (failurePolicy Ignore) that writes what its http.Get returned into annotations:
//     the status code, decision and exists the policy can read.
const predecessorPolicies = `apiVersion: policies.kyverno.io/v1
kind: MutatingPolicy
metadata: {name: e2e-predecessor-restore}
spec:
  failurePolicy: Fail
  evaluation: {mutateExisting: {enabled: false}}
` + predecessorMatch + `  mutations:
    - patchType: JSONPatch
      jsonPatch:
        expression: >-
          variables.oracle.exists == true ? [JSONPatch{op: 'add', path: '/spec/dataSourceRef', value: {
          'apiGroup': 'volsync.backube', 'kind': 'ReplicationDestination', 'name': object.metadata.name + '-backup'}}] : []
---
apiVersion: policies.kyverno.io/v1
kind: MutatingPolicy
metadata: {name: e2e-predecessor-probe}
spec:
  failurePolicy: Ignore
  evaluation: {mutateExisting: {enabled: false}}
` + predecessorMatch + `  mutations:
    - patchType: JSONPatch
      jsonPatch:
        expression: >-
          [JSONPatch{op: 'add', path: '/metadata/annotations', value: {
          'e2e.backup-oracle.io/status-code': string(variables.oracle.statusCode),
          'e2e.backup-oracle.io/decision': string(variables.oracle.decision),
          'e2e.backup-oracle.io/exists': string(variables.oracle.exists)}}]
`

// predecessorFix is the replacement the README names short of the shipped policies: deny
// unless the oracle's decision is restore or fresh.
const predecessorFix = `apiVersion: policies.kyverno.io/v1
kind: ValidatingPolicy
metadata: {name: e2e-predecessor-fix}
spec:
  validationActions: [Deny]
  failurePolicy: Fail
  evaluation: {background: {enabled: false}}
` + predecessorMatch + `  validations:
    - expression: "'decision' in variables.oracle && variables.oracle.decision in ['restore', 'fresh']"
      message: backup-oracle cannot say whether this PVC has a backup
`

// predecessorPolicy: a CEL policy that reads only exists, with the oracle answering unknown
// (503), admits a labelled PVC whose backup exists empty: the hazard the README warns of,
// asserted as such. On Kyverno 1.18+ the 503 body reaches the policy with a statusCode key
// (exists is false, so nothing is set); on 1.17 http.Get errors and a MutatingPolicy's error
// does not deny. A ValidatingPolicy that admits only the decisions restore and fresh denies it.
func predecessorPolicy(t *testing.T, s *stack, kv kyvernoUnderTest, oracleBin, repository string) {
	k := s.kube
	o := newOracle(t, s, oracleBin, repository)
	o.startUnknown(t)
	t.Cleanup(func() { o.stop(t) })

	looked := o.lookup(t, predecessorNamespace, predecessorPVC)
	require.Equal(t, http.StatusServiceUnavailable, looked.Code, "%v", looked.Body)
	require.Equal(t, "unknown", looked.Body["decision"], "%v", looked.Body)

	k.mustOK(t, http.MethodPost, "/api/v1/namespaces", map[string]any{"metadata": map[string]any{"name": predecessorNamespace}}, "")

	policies := strings.ReplaceAll(predecessorPolicies, "ORACLE", o.URL())
	fix := strings.ReplaceAll(predecessorFix, "ORACLE", o.URL())

	t.Cleanup(func() { uninstallPredecessor(t, k, yamlDocs(policies, fix)) })
	installPredecessor(t, k, policies, "mutatingpolicies.policies.kyverno.io", "mutatingwebhookconfigurations/kyverno-resource-mutating-webhook-cfg")

	// maxCalls is not what this scenario measures (Kyverno may call again when it re-invokes
	// the mutating webhook); it only bounds runaway calls.
	r := &run{t: t, maxCalls: 10, k: k, o: o, set: kv.version + "/predecessor", engine: "cel", ns: predecessorNamespace, results: &measurements{}}
	res := r.create("predecessor policy, oracle unknown", predecessorNamespace, predecessorPVC, "daily")
	require.Equal(t, http.StatusCreated, res.Code, "the predecessor-style policy no longer admits an unknown PVC: %s", res.Raw)
	assert.Nil(t, nested(res.Body, "spec", "dataSourceRef"), "hazard: admitted without dataSourceRef")
	assert.Nil(t, nested(res.Body, "spec", "dataSource"), "hazard: admitted without dataSource")

	annotations, _ := nested(res.Body, "metadata", "annotations").(map[string]any)
	if kv.celNon2xxBody {
		assert.Equal(t, map[string]any{"e2e.backup-oracle.io/status-code": "503", "e2e.backup-oracle.io/decision": "unknown",
			"e2e.backup-oracle.io/exists": "false"}, annotations, "what http.Get hands the policy for a 503")
	} else {
		assert.Empty(t, annotations, "http.Get handed the policy a 503 body (this version used to error): switch celNon2xxBody")
	}

	deletePVC(t, k, predecessorNamespace, predecessorPVC)

	installPredecessor(t, k, fix, "validatingpolicies.policies.kyverno.io", "validatingwebhookconfigurations/kyverno-resource-validating-webhook-cfg")

	res = r.create("decision checked, oracle unknown", predecessorNamespace, predecessorPVC, "daily")
	assert.Contains(t, []int{http.StatusBadRequest, http.StatusForbidden}, res.Code, res.Raw)
	assert.False(t, k.exists(t, pvcPath(predecessorNamespace, predecessorPVC)), "a policy checking decision admitted an unknown PVC")

	if kv.celNon2xxBody {
		assert.Contains(t, res.Message(), "backup-oracle cannot say whether this PVC has a backup", "the fix's message")
	}
}

// installPredecessor applies policies and waits until every policy of kind is ready and the
// webhook configuration cfg has a rule for PVCs.
func installPredecessor(t *testing.T, k *kube, policies, kind, cfg string) {
	t.Helper()

	k.apply(t, policies)

	took, ok := eventually(60*time.Second, 100*time.Millisecond, func() bool {
		return policiesReady(t, k, kind) && webhookMatchesPVCs(t, k, cfg)
	})
	require.True(t, ok, "%s not ready or %s without PVCs", kind, cfg)
	t.Logf("%s ready and in %s after %s", kind, cfg, took.Round(time.Millisecond))
}

// uninstallPredecessor deletes the scenario's policies and waits until no Kyverno resource
// webhook matches PVCs.
func uninstallPredecessor(t *testing.T, k *kube, manifests string) {
	t.Helper()

	out, err := k.kubectlRun(manifests, "delete", "--ignore-not-found", "--wait", "-f", "-")
	require.NoError(t, err, out)

	_, ok := eventually(60*time.Second, 200*time.Millisecond, func() bool {
		return !webhookMatchesPVCs(t, k, "mutatingwebhookconfigurations/kyverno-resource-mutating-webhook-cfg") &&
			!webhookMatchesPVCs(t, k, "validatingwebhookconfigurations/kyverno-resource-validating-webhook-cfg")
	})
	require.True(t, ok, "Kyverno's webhooks still match PVCs after the predecessor policies were deleted")
}

// webhookMatchesPVCs reports whether the webhook configuration cfg has a rule for PVCs.
func webhookMatchesPVCs(t *testing.T, k *kube, cfg string) bool {
	t.Helper()

	r := k.get(t, "/apis/admissionregistration.k8s.io/v1/"+cfg)

	return r.Code == http.StatusOK && strings.Contains(r.Raw, `"persistentvolumeclaims"`)
}

// deletePVC deletes a PVC and, as kube-controller-manager's pvc-protection controller does for
// a claim no pod uses, removes its finalizer; it returns once the PVC is gone.
func deletePVC(t *testing.T, k *kube, ns, name string) {
	t.Helper()

	k.mustOK(t, http.MethodDelete, pvcPath(ns, name), nil, "")
	k.mustOK(t, http.MethodPatch, pvcPath(ns, name), map[string]any{"metadata": map[string]any{"finalizers": nil}},
		"application/merge-patch+json")

	_, ok := eventually(10*time.Second, 100*time.Millisecond, func() bool { return !k.exists(t, pvcPath(ns, name)) })
	require.True(t, ok, "%s/%s not gone", ns, name)
}
