//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness"
	"github.com/backup-oracle/backup-oracle/integration/harness/kopiamover"
)

// The cutover test's cluster: one colour is a stack (etcd, kube-apiserver, Kyverno) with its own
// oracle configured from the chart's rendering of its values, and its policies.

// blueLeavingValues are the colour being left's values (chart testdata/values/
// blue-green-cutover-leaving.yaml made runnable here): blue lists only its own repository, a
// kopia-fs repository on NFS (the test's blue repository stands behind the path the chart renders).
const blueLeavingValues = `backends:
  - name: blue
    role: own
    type: kopia-fs
    repository: {nfs: {server: nfs.blue.example.internal, path: /volsync/kopia-blue}}
    passwordSecret: {name: kopia-blue, key: password}
    moverSecret: {sourceNamespace: volsync-system, sourceName: volsync-kopia-blue}
`

// colour is one cluster of the migration.
type colour struct {
	name   string
	s      *stack
	o      *oracle
	helm   string
	values string            // its values file (without a cutover)
	repos  map[string]string // backend name -> the test's repository behind it
	dir    string
}

// startColour starts a stack with Kyverno k, the chart's Kyverno RBAC and both colours' VolSync
// repository Secrets, and prepares (does not start) its oracle.
func startColour(t *testing.T, name, helm, values string, k kyvernoUnderTest, bin string, repos map[string]string) *colour {
	t.Helper()

	c := &colour{name: name, helm: helm, repos: repos, dir: t.TempDir()}
	c.values = filepath.Join(c.dir, "values.yaml")
	require.NoError(t, os.WriteFile(c.values, []byte(values), 0o600))

	c.s = startStack(t)
	c.s.installCRDs(t, k.bin("crds"))
	c.s.kube.apply(t, render(t, helm, "default", "--show-only", "templates/policies/kyverno-rbac.yaml"))
	c.s.startKyverno(t, k, false)
	c.s.kube.apply(t, blueGreenSecrets)
	c.s.kube.apply(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: "+release+"}\n")
	c.o = newOracleEnv(t, c.s, bin, nil)

	return c
}

// render renders the colour's chart with args (e.g. the cutover) added to its values.
func (c *colour) render(t *testing.T, args ...string) []manifest {
	t.Helper()

	return renderManifests(t, c.helm, "default", append([]string{"-f", c.values, "--set", "policies.oracleURL=" + c.o.URL()}, args...)...)
}

// runOracle (re)starts the colour's oracle as the rendering docs configures it: its
// BACKENDS_FILE, with the paths the chart chose pointed at the test's repositories, and the
// cutover settings the Deployment carries (none on the colour being left).
func (c *colour) runOracle(t *testing.T, docs []manifest) map[string]string {
	t.Helper()

	i := slices.IndexFunc(docs, func(d manifest) bool { return d.kind == "ConfigMap" && strings.HasSuffix(d.name, "-backends") })
	require.GreaterOrEqual(t, i, 0, "no backends ConfigMap rendered")

	backends := str(docs[i].obj, "data", "backends.yaml")
	for name, repo := range c.repos {
		pw := filepath.Join(c.dir, name+"-password")
		require.NoError(t, os.WriteFile(pw, []byte(kopiaPassword+"\n"), 0o600))

		for from, to := range map[string]string{"/repositories/" + name + "\n": repo + "\n", "/secrets/" + name + "/repository/password\n": pw + "\n"} {
			require.Contains(t, backends, from, "%s: the rendered BACKENDS_FILE", c.name)
			backends = strings.Replace(backends, from, to, 1)
		}
	}

	file := filepath.Join(c.dir, "backends.yaml")
	require.NoError(t, os.WriteFile(file, []byte(backends), 0o600))

	env := deploymentEnv(t, docs)
	c.o.env = []string{"BACKENDS_FILE=" + file, "REFRESH_INTERVAL=1s", "MAX_INDEX_AGE=20s"}

	for _, name := range []string{"CUTOVER_AT", "CUTOVER_FROM"} {
		if v, ok := env[name]; ok {
			c.o.env = append(c.o.env, name+"="+v)
		}
	}

	if c.o.proc != nil && !c.o.proc.Exited() {
		c.o.stop(t)
	}

	c.o.start(t)

	return env
}

// job is the cutover Job a rendering holds: its arguments and environment, with its service
// account's objects applied to the colour's API server and a kubeconfig holding a token of it.
type job struct {
	name       string
	args, env  []string
	kubeconfig string
}

// cutoverJob applies the rendering's cutover ServiceAccount, ClusterRole and ClusterRoleBinding
// and returns its Job, to be run as a process with exactly those rights.
func (c *colour) cutoverJob(t *testing.T, docs []manifest) job {
	t.Helper()

	var (
		j        job
		identity []string
		sa       string
	)

	for _, d := range docs {
		switch {
		case d.kind == "Job":
			j.name = d.name
			spec, _ := nested(d.obj, "spec", "template", "spec").(map[string]any)
			sa = str(spec, "serviceAccountName")
			containers, _ := spec["containers"].([]any)
			ctr, _ := containers[0].(map[string]any)

			for _, a := range ctr["args"].([]any) { //nolint:forcetypeassert // the chart's Job
				j.args = append(j.args, a.(string)) //nolint:forcetypeassert // strings
			}

			for _, e := range ctr["env"].([]any) { //nolint:forcetypeassert // the chart's Job
				m, _ := e.(map[string]any)
				j.env = append(j.env, str(m, "name")+"="+str(m, "value"))
			}
		case nested(d.obj, "metadata", "labels", "app.kubernetes.io/component") == "cutover" && d.kind != "PodMonitor":
			identity = append(identity, d.yaml)
		}
	}

	require.NotEmpty(t, j.name, "%s: no cutover Job rendered", c.name)
	require.Len(t, identity, 3, "%s: the Job's ServiceAccount, ClusterRole and ClusterRoleBinding", c.name)
	c.s.kube.apply(t, yamlDocs(identity...), "-n", release)

	res := c.s.kube.mustOK(t, http.MethodPost, "/api/v1/namespaces/"+release+"/serviceaccounts/"+sa+"/token",
		map[string]any{"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": map[string]any{"expirationSeconds": 3600}}, "")
	token := str(res.Body, "status", "token")
	require.NotEmpty(t, token)

	// The process authenticates as the Job's service account, and as nothing more.
	who := newKube(c.s.kube.url, token, "", "").mustOK(t, http.MethodPost, "/apis/authentication.k8s.io/v1/selfsubjectreviews",
		map[string]any{"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}, "")
	require.Equal(t, "system:serviceaccount:"+release+":"+sa, str(who.Body, "status", "userInfo", "username"))

	j.kubeconfig = filepath.Join(c.dir, sa+"-kubeconfig")
	require.NoError(t, os.WriteFile(j.kubeconfig, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: e2e, cluster: {server: %q, insecure-skip-tls-verify: true}}]
users: [{name: cutover, user: {token: %q}}]
contexts: [{name: e2e, context: {cluster: e2e, user: cutover}}]
current-context: e2e
`, c.s.kube.url, token)), 0o600))

	return j
}

// start runs the Job's command as a process, as the Job's pod would (its arguments and
// environment, its service account's token), with the test's pass interval and a termination
// log and metrics address of its own.
func (j job) start(t *testing.T, c *colour, bin string) (*proc, string) {
	t.Helper()

	term := filepath.Join(c.dir, j.name+".termination-log")

	var args []string

	for _, a := range j.args {
		switch {
		case strings.HasPrefix(a, "--metrics-address="):
			a = "--metrics-address=" + hostPort(freePort(t))
		case strings.HasPrefix(a, "--termination-log="):
			a = "--termination-log=" + term
		}

		args = append(args, a)
	}

	if args[1] == "run" {
		args = append(args, "--interval=200ms")
	}

	p := startProc(t, c.dir, j.name, bin, append(slices.Clone(j.env), "KUBECONFIG="+j.kubeconfig), args...)
	c.s.all = append(c.s.all, p.pid())
	t.Cleanup(func() { p.stop(10 * time.Second) })

	return p, term
}

// finalBackup is one backup the VolSync stand-in took.
type finalBackup struct {
	rs, source, trigger, id string
	start                   time.Time
}

// volsyncStandIn plays VolSync's ReplicationSource controller with the Kopia mover for the
// sources of namespace ns: when spec.trigger.manual differs from status.lastManualSync, it marks
// the synchronization started (lastSyncStartTime, the Synchronizing condition), snapshots data
// with the real kopia CLI as the RS's source into repo, and records it done as VolSync does
// (statemachine/machine.go, transitionToCleaningUp: lastSyncTime, lastManualSync = the trigger,
// lastSyncStartTime cleared; the mover status; the condition waiting for a manual trigger).
type volsyncStandIn struct {
	k    *kube
	ns   string
	data string
	cli  *harness.KopiaCLI

	mu    sync.Mutex
	taken []finalBackup
	errs  []string
}

func (v *volsyncStandIn) run(ctx context.Context, t *testing.T) {
	for ctx.Err() == nil {
		list := v.k.get(t, volsyncPath(v.ns, "replicationsources", ""))
		items, _ := list.Body["items"].([]any)

		for _, it := range items {
			rs, _ := it.(map[string]any)
			if manual := str(rs, "spec", "trigger", "manual"); manual != "" && manual != str(rs, "status", "lastManualSync") {
				v.sync(t, rs, manual)
			}
		}

		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (v *volsyncStandIn) sync(t *testing.T, rs map[string]any, manual string) {
	name := str(rs, "metadata", "name")
	status := volsyncPath(v.ns, "replicationsources", name) + "/status"
	source := kopiamover.ReplicationSource{Name: name, Namespace: v.ns, Username: str(rs, "spec", "kopia", "username"),
		Hostname: str(rs, "spec", "kopia", "hostname")}.Source()

	start := time.Now().UTC()
	v.patch(t, status, map[string]any{"status": map[string]any{
		"lastSyncStartTime": start.Format(time.RFC3339),
		"conditions": []any{map[string]any{"type": "Synchronizing", "status": "True", "reason": "SyncInProgress",
			"message": "Synchronization in-progress", "lastTransitionTime": start.Format(time.RFC3339)}},
	}})

	out, err := v.cli.Try("snapshot", "create", v.data, "--override-source", source, "--description", "volsync stand-in: "+manual)
	if err != nil {
		v.fail("kopia snapshot create %s: %v\n%s", source, err, out)
		return
	}

	id, started := v.newest(source)
	end := time.Now().UTC()
	v.patch(t, status, map[string]any{"status": map[string]any{
		"lastSyncStartTime": nil, "lastSyncTime": end.Format(time.RFC3339), "lastManualSync": manual,
		"lastSyncDuration":  end.Sub(start).Round(time.Second).String(),
		"latestMoverStatus": map[string]any{"result": "Successful", "logs": "snapshot " + id + " created"},
		"conditions": []any{map[string]any{"type": "Synchronizing", "status": "False", "reason": "WaitingForManual",
			"message": "Waiting for manual trigger", "lastTransitionTime": end.Format(time.RFC3339)}},
	}})

	v.mu.Lock()
	v.taken = append(v.taken, finalBackup{rs: name, source: source, trigger: manual, id: id, start: started})
	v.mu.Unlock()
}

// patch merge-patches the RS's status subresource as VolSync's controller does.
func (v *volsyncStandIn) patch(t *testing.T, path string, body map[string]any) {
	if res := v.k.do(t, http.MethodPatch, path, body, "application/merge-patch+json"); res.Code != http.StatusOK {
		v.fail("PATCH %s: %d %s", path, res.Code, res.Raw)
	}
}

// newest is the ID and start of source's newest snapshot, from the kopia CLI.
func (v *volsyncStandIn) newest(source string) (string, time.Time) {
	out, err := v.cli.Try("snapshot", "list", source, "--json")
	if err != nil {
		v.fail("kopia snapshot list %s: %v\n%s", source, err, out)
		return "", time.Time{}
	}

	snaps, err := kopiaSnapshots(out)
	if err != nil || len(snaps) == 0 {
		v.fail("kopia snapshot list %s: %v: %s", source, err, out)
		return "", time.Time{}
	}

	last := snaps[len(snaps)-1]

	return last.ID, last.StartTime
}

// kopiaSnapshot is an entry of `kopia snapshot list --json`.
type kopiaSnapshot struct {
	ID        string    `json:"id"`
	StartTime time.Time `json:"startTime"`
}

// kopiaSnapshots decodes `kopia snapshot list --json`, oldest first.
func kopiaSnapshots(out string) ([]kopiaSnapshot, error) {
	var snaps []kopiaSnapshot
	if err := json.Unmarshal([]byte(out), &snaps); err != nil {
		return nil, fmt.Errorf("decode %s: %w", out, err)
	}

	slices.SortFunc(snaps, func(a, b kopiaSnapshot) int { return a.StartTime.Compare(b.StartTime) })

	return snaps, nil
}

func (v *volsyncStandIn) fail(format string, a ...any) {
	v.mu.Lock()
	defer v.mu.Unlock()

	v.errs = append(v.errs, fmt.Sprintf(format, a...))
}

func (v *volsyncStandIn) results() ([]finalBackup, []string) {
	v.mu.Lock()
	defer v.mu.Unlock()

	return slices.Clone(v.taken), slices.Clone(v.errs)
}

// replicaSetStandIn plays kube-controller-manager's Deployment and ReplicaSet controllers for the
// app's one pod: once the Deployment is at zero replicas, the pod is deleted (the API server
// deletes an unscheduled pod at once).
func replicaSetStandIn(ctx context.Context, t *testing.T, k *kube, ns, deployment, pod string) {
	for ctx.Err() == nil {
		d := k.get(t, "/apis/apps/v1/namespaces/"+ns+"/deployments/"+deployment)
		if replicas, ok := nested(d.Body, "spec", "replicas").(float64); ok && replicas == 0 {
			res := k.do(t, http.MethodDelete, "/api/v1/namespaces/"+ns+"/pods/"+pod, nil, "")
			assert.Contains(t, []int{http.StatusOK, http.StatusNotFound}, res.Code, res.Raw)
		}

		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// urPath is the collection of Kyverno's UpdateRequests.
const urPath = "/apis/kyverno.io/v2/namespaces/kyverno/updaterequests"

// generated runs change (an operation on the PVC ns/pvc) and waits until Kyverno has processed
// the UpdateRequest it made for policy: the admission webhook creates it in the background after
// answering (v1.19.1 pkg/webhooks/updaterequest/generator.go, Apply), the background controller
// deletes it once completed (pkg/background/update_request_controller.go, reconcileURStatus). It
// watches from before the change, so no event is missed; it returns how long that took.
func (k *kube) generated(t *testing.T, policy, ns, pvc string, change func()) time.Duration {
	t.Helper()

	list := k.get(t, urPath)
	require.Equal(t, http.StatusOK, list.Code, list.Raw)

	rv := str(list.Body, "metadata", "resourceVersion")
	start := time.Now()

	change()

	var (
		name    string
		history []string
	)

	ok := k.watchUntil(t, urPath, rv, 60*time.Second, func(typ string, ur map[string]any) bool {
		if str(ur, "spec", "policy") != policy || !triggeredBy(ur, ns, pvc) {
			return false
		}

		history = append(history, fmt.Sprintf("%s %s %s %s", typ, str(ur, "metadata", "name"), str(ur, "status", "state"), str(ur, "status", "message")))

		if typ == "ADDED" && name == "" {
			name = str(ur, "metadata", "name")
		}

		return typ == "DELETED" && str(ur, "metadata", "name") == name
	})
	require.True(t, ok, "%s: no UpdateRequest for %s/%s processed within 60s: %v", policy, ns, pvc, history)

	return time.Since(start)
}

// triggeredBy reports whether the UpdateRequest ur was made for the PVC ns/pvc.
func triggeredBy(ur map[string]any, ns, pvc string) bool {
	rules, _ := nested(ur, "spec", "ruleContext").([]any)
	for _, r := range rules {
		rc, _ := r.(map[string]any)
		if str(rc, "trigger", "kind") == "PersistentVolumeClaim" && str(rc, "trigger", "namespace") == ns && str(rc, "trigger", "name") == pvc {
			return true
		}
	}

	return false
}

// watchUntil watches the collection path from resourceVersion rv and hands each object event to
// seen until it returns true (true) or within passes (false). An ERROR event fails the test.
func (k *kube) watchUntil(t *testing.T, path, rv string, within time.Duration, seen func(typ string, obj map[string]any) bool) bool {
	t.Helper()

	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url+path+"?watch=true&resourceVersion="+rv, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+k.token)
	req.Header.Set("Accept", "application/json")

	resp, err := (&http.Client{Transport: k.client.Transport}).Do(req) // bounded by ctx, not the client's timeout
	require.NoError(t, err, "watch %s", path)

	defer resp.Body.Close()

	require.Equal(t, http.StatusOK, resp.StatusCode, "watch %s", path)

	dec := json.NewDecoder(resp.Body)

	for {
		var ev struct {
			Type   string         `json:"type"`
			Object map[string]any `json:"object"`
		}
		if err := dec.Decode(&ev); err != nil {
			return false // within passed (or the API server closed the watch)
		}

		require.NotEqual(t, "ERROR", ev.Type, "watch %s: %v", path, ev.Object)

		if seen(ev.Type, ev.Object) {
			return true
		}
	}
}
