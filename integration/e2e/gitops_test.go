//go:build e2e

package e2e

import (
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// gitopsApplier is one way a GitOps engine puts a manifest on the cluster.
type gitopsApplier struct {
	name       string // the subtest, and the PVC gitops-<name>
	manager    string // the field manager the engine's applies are recorded under
	serverSide bool
}

// gitopsAppliers are the engines' ways of applying, as their sources state them:
//   - Flux's kustomize-controller applies server-side as field manager "kustomize-controller",
//     always forcing conflicts, after a server-side dry run that decides whether the object
//     drifted (fluxcd/pkg ssa/manager_apply.go: dryRunApply and apply with
//     client.ForceOwnership and client.FieldOwner);
//   - Argo CD with the sync option ServerSideApply=true applies as "argocd-controller"
//     (argo-cd common/common.go, ArgoCDSSAManager), forcing conflicts (gitops-engine
//     pkg/utils/kube/resource_ops.go, newApplyOptions: ForceConflicts when server-side);
//   - kubectl apply without --server-side: client-side, a three-way patch against the
//     kubectl.kubernetes.io/last-applied-configuration annotation, recorded as an Update by
//     kubectl's default manager.
var gitopsAppliers = []gitopsApplier{ //nolint:gochecknoglobals // test table
	{"flux", "kustomize-controller", true},
	{"argocd", "argocd-controller", true},
	{"kubectl", "kubectl-client-side-apply", false},
}

func (a gitopsApplier) pvc() string { return "gitops-" + a.name }

// applyArgs are the kubectl arguments that apply as the engine does; diffArgs those of the
// matching dry-run diff (a server-side dry-run apply compared with the live object).
func (a gitopsApplier) applyArgs() []string { return a.args("apply") }
func (a gitopsApplier) diffArgs() []string  { return a.args("diff") }

func (a gitopsApplier) args(verb string) []string {
	if a.serverSide {
		return []string{verb, "--server-side", "--force-conflicts", "--field-manager", a.manager, "-f", "-"}
	}

	return []string{verb, "-f", "-"}
}

// gitopsManifest is the PVC as kept in Git: labelled for backups, no data source; extraLabel
// ("key: value", or empty) is the unrelated change of a later commit.
func gitopsManifest(ns, name, extraLabel string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: %s
  namespace: %s
  labels:
    backup: daily
    %s
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
`, name, ns, extraLabel)
}

// gitopsRevisionLabel is the unrelated change of the manifest's second commit.
const gitopsRevisionLabel = `app.kubernetes.io/version: "2"`

// gitops: each applier creates a labelled PVC that has a backup; the policies restore it.
// Re-applying the unchanged manifest (which has no data source) succeeds, changes nothing and
// leaves dataSourceRef and dataSource as they were (and calls no oracle); the dry-run diff the engines' drift
// detection is built on reports nothing; a changed label is applied, and the diff shows that
// label and no data source. Kubernetes copies dataSourceRef into dataSource at create; both
// are owned by no field manager (the webhook's mutation and the API server's copy happen after
// the request's fields are recorded), which is why a re-apply without them keeps them. Last,
// kubectl replace (Argo CD's Replace=true) of the manifest is refused.
func (r *run) gitops() {
	parent := r.t

	for _, a := range gitopsAppliers {
		parent.Run(a.name, func(t *testing.T) { r.t = t; r.gitopsApply(a) })
	}

	parent.Run("replace", func(t *testing.T) { r.t = t; r.gitopsReplace(gitopsAppliers[1]) })

	r.t = parent
}

// gitopsApply is the gitops scenario of one applier, on its own PVC.
func (r *run) gitopsApply(a gitopsApplier) {
	t := r.t
	name := a.pvc()
	path := pvcPath(r.ns, name)
	manifest := gitopsManifest(r.ns, name, "")

	out := r.k.kubectlOK(t, manifest, a.applyArgs()...)
	t.Logf("%s: first apply: %s", a.name, out)

	created := r.k.get(t, path)
	require.Equal(t, http.StatusOK, created.Code, created.Raw)
	r.assertRestored(a, created.Body, "first apply")
	r.waitFor(volsyncPath(r.ns, "replicationdestinations", name+"-backup"), true, 15*time.Second)

	calls := r.o.calls(t)

	out = r.k.kubectlOK(t, manifest, a.applyArgs()...)
	t.Logf("%s: unchanged re-apply: %s", a.name, out)

	again := r.k.get(t, path)
	require.Equal(t, http.StatusOK, again.Code, again.Raw)
	r.assertRestored(a, again.Body, "unchanged re-apply")
	assertSameContent(t, created.Body, again.Body, "unchanged re-apply")

	// The first server-side re-apply after a server-side create is written once, with the
	// same content: a new resourceVersion (seen on kube-apiserver v1.35.0 for an unlabelled PVC
	// no webhook sees, too). From then on an identical apply writes nothing.
	out = r.k.kubectlOK(t, manifest, a.applyArgs()...)
	t.Logf("%s: unchanged re-apply, again: %s", a.name, out)

	third := r.k.get(t, path)
	require.Equal(t, http.StatusOK, third.Code, third.Raw)
	assert.Equal(t, str(again.Body, "metadata", "resourceVersion"), str(third.Body, "metadata", "resourceVersion"),
		"a second unchanged re-apply wrote the PVC")

	diff, code := r.k.kubectlExit(t, manifest, a.diffArgs()...)
	assert.Equal(t, 0, code, "%s: dry-run diff of the unchanged manifest reports a difference:\n%s", a.name, diff)
	assert.Empty(t, diff, "dry-run diff of the unchanged manifest")

	changed := gitopsManifest(r.ns, name, gitopsRevisionLabel)
	diff, code = r.k.kubectlExit(t, changed, a.diffArgs()...)
	t.Logf("%s: dry-run diff of the changed manifest (exit %d):\n%s", a.name, code, diff)
	assert.Equal(t, 1, code, "dry-run diff of a changed label: exit 1 (differences found)")
	assert.Contains(t, diff, "app.kubernetes.io/version", "dry-run diff of a changed label")
	assert.NotContains(t, diff, "dataSource", "dry-run diff of a changed label shows the data source")

	out = r.k.kubectlOK(t, changed, a.applyArgs()...)
	t.Logf("%s: changed re-apply: %s", a.name, out)

	updated := r.k.get(t, path)
	require.Equal(t, http.StatusOK, updated.Code, updated.Raw)
	assert.Equal(t, "2", str(updated.Body, "metadata", "labels", "app.kubernetes.io/version"), "changed re-apply: the label")
	r.assertRestored(a, updated.Body, "changed re-apply")

	diff, code = r.k.kubectlExit(t, changed, a.diffArgs()...)
	assert.Equal(t, 0, code, "dry-run diff after the changed re-apply:\n%s", diff)

	assert.Equal(t, calls, r.o.calls(t), "re-applies call the oracle (the admission rules match CREATE only)")
}

// gitopsReplace: Argo CD's sync option Replace=true syncs with kubectl replace (argo-cd
// docs/user-guide/sync-options.md), a full update with the manifest from Git, which has no data
// source: the API server refuses it (a PVC's spec is immutable after creation) and the PVC
// stays as it was. The PVC is the one applier a created.
func (r *run) gitopsReplace(a gitopsApplier) {
	t := r.t
	path := pvcPath(r.ns, a.pvc())

	before := r.k.get(t, path)
	require.Equal(t, http.StatusOK, before.Code, before.Raw)

	out, code := r.k.kubectlExit(t, gitopsManifest(r.ns, a.pvc(), gitopsRevisionLabel), "replace", "-f", "-")
	t.Logf("kubectl replace (exit %d):\n%s", code, out)
	assert.NotEqual(t, 0, code, "kubectl replace of the manifest without data source succeeded")
	assert.Contains(t, out, "immutable", "kubectl replace: the API server's reason")

	after := r.k.get(t, path)
	require.Equal(t, http.StatusOK, after.Code, after.Raw)
	assert.Equal(t, str(before.Body, "metadata", "resourceVersion"), str(after.Body, "metadata", "resourceVersion"), "kubectl replace wrote the PVC")
	r.assertRestored(a, after.Body, "after kubectl replace")
}

// assertRestored checks a stored PVC created by applier a: dataSourceRef to its RD, the same
// reference copied into dataSource, neither owned by any field manager, and the applier the
// only manager.
func (r *run) assertRestored(a gitopsApplier, pvc map[string]any, when string) {
	t := r.t
	ref := map[string]any{"apiGroup": "volsync.backube", "kind": "ReplicationDestination", "name": a.pvc() + "-backup"}

	assert.Equal(t, ref, nested(pvc, "spec", "dataSourceRef"), "%s: dataSourceRef", when)
	assert.Equal(t, ref, nested(pvc, "spec", "dataSource"), "%s: dataSource (Kubernetes copies dataSourceRef)", when)
	assert.Empty(t, fieldOwners(pvc, "dataSourceRef"), "%s: managers owning spec.dataSourceRef", when)
	assert.Empty(t, fieldOwners(pvc, "dataSource"), "%s: managers owning spec.dataSource", when)

	operation := "Update"
	if a.serverSide {
		operation = "Apply"
	}

	assert.Equal(t, []string{a.manager + "/" + operation}, managers(pvc), "%s: managedFields", when)
}

// fieldOwners returns "manager/operation" of every managedFields entry that holds spec.<field>.
func fieldOwners(obj map[string]any, field string) []string {
	var out []string

	entries, _ := nested(obj, "metadata", "managedFields").([]any)
	for _, e := range entries {
		m, _ := e.(map[string]any)
		if nested(m, "fieldsV1", "f:spec", "f:"+field) != nil {
			out = append(out, str(m, "manager")+"/"+str(m, "operation"))
		}
	}

	return out
}

// assertSameContent checks that a re-apply left the PVC as it was: the same object (uid), spec,
// labels, annotations and managers.
func assertSameContent(t *testing.T, before, after map[string]any, when string) {
	t.Helper()

	assert.Equal(t, str(before, "metadata", "uid"), str(after, "metadata", "uid"), "%s: the PVC was re-created", when)

	for _, keys := range [][]string{{"spec"}, {"metadata", "labels"}, {"metadata", "annotations"}} {
		assert.Equal(t, nested(before, keys...), nested(after, keys...), "%s: %v changed", when, keys)
	}

	assert.Equal(t, managers(before), managers(after), "%s: managedFields", when)
}

// managers returns "manager/operation" of every managedFields entry.
func managers(obj map[string]any) []string {
	var out []string

	entries, _ := nested(obj, "metadata", "managedFields").([]any)
	for _, e := range entries {
		m, _ := e.(map[string]any)
		out = append(out, str(m, "manager")+"/"+str(m, "operation"))
	}

	return out
}

// kubectlOK runs kubectl with args on yaml and fails the test on error.
func (k *kube) kubectlOK(t *testing.T, yaml string, args ...string) string {
	t.Helper()

	out, err := k.kubectlRun(yaml, args...)
	require.NoError(t, err, "kubectl %v:\n%s", args, out)

	return out
}

// kubectlExit runs kubectl with args on stdin and returns its output and exit code; a failure
// to run it at all fails the test.
func (k *kube) kubectlExit(t *testing.T, stdin string, args ...string) (string, int) {
	t.Helper()

	out, err := k.kubectlRun(stdin, args...)

	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return out, exit.ExitCode()
	}

	require.NoError(t, err, "kubectl %v", args)

	return out, 0
}
