//go:build e2e

package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/backup-oracle/backup-oracle/integration/harness/kopiamover"
)

// repositories are the two Kopia repositories of the test: green (every scenario's, this
// cluster's own in blue/green) and blue (the other colour's, the layouts only).
type repositories struct {
	green, blue string
}

// gateNamespace and blueGreenNamespace hold the layout scenarios of one policy set.
func gateNamespace(engine string) string      { return "e2e-gate-" + engine }
func blueGreenNamespace(engine string) string { return "e2e-bluegreen-" + engine }

// giteaSource is what the user's ReplicationSource "gitea" (kept in Git, the ${APP} layout)
// writes in namespace: the mover's rules, from the RS's name and namespace.
func giteaSource(namespace string) string {
	return kopiamover.ReplicationSource{Name: "gitea", Namespace: namespace}.Source()
}

// greenLayoutSources are the snapshots of the layouts in the green (own) repository: gitea as
// its own RS writes it, and in blue/green PVC app from the previous cycle (older than blue's)
// and own-only.
func greenLayoutSources() []string {
	var out []string

	for _, set := range policySets {
		out = append(out, giteaSource(gateNamespace(set.engine)),
			kopiamover.PolicySource(blueGreenNamespace(set.engine), "app"),
			kopiamover.PolicySource(blueGreenNamespace(set.engine), "own-only"))
	}

	return out
}

// blueLayoutSources are the snapshots in the blue repository: app, written after green's.
func blueLayoutSources() []string {
	var out []string
	for _, set := range policySets {
		out = append(out, kopiamover.PolicySource(blueGreenNamespace(set.engine), "app"))
	}

	return out
}

// manifest is one rendered document: its kind and name, its YAML, and the decoded object.
type manifest struct {
	kind, name, yaml string
	obj              map[string]any
}

// renderManifests renders the whole chart with a test values file and args, split into
// documents.
func renderManifests(t *testing.T, helm, values string, args ...string) []manifest {
	t.Helper()

	return splitManifests(t, render(t, helm, values, args...))
}

// splitManifests splits a rendering into its documents.
func splitManifests(t *testing.T, rendered string) []manifest {
	t.Helper()

	var out []manifest

	for _, doc := range strings.Split(rendered, "\n---\n") {
		var obj map[string]any
		require.NoError(t, yaml.Unmarshal([]byte(doc), &obj), doc)

		if obj == nil {
			continue
		}

		out = append(out, manifest{kind: str(obj, "kind"), name: str(obj, "metadata", "name"), yaml: doc, obj: obj})
	}

	return out
}

// policyKinds maps the kinds of Kyverno policies to the kubectl resource names policiesReady
// waits for; cleanup: the scheduled cleanup kinds.
var policyKinds = map[string]struct { //nolint:gochecknoglobals // test table
	resource string
	cleanup  bool
}{
	"ClusterPolicy":        {"clusterpolicies.kyverno.io", false},
	"ValidatingPolicy":     {"validatingpolicies.policies.kyverno.io", false},
	"MutatingPolicy":       {"mutatingpolicies.policies.kyverno.io", false},
	"GeneratingPolicy":     {"generatingpolicies.policies.kyverno.io", false},
	"ClusterCleanupPolicy": {"clustercleanuppolicies.kyverno.io", true},
	"DeletingPolicy":       {"deletingpolicies.policies.kyverno.io", true},
}

// admissionPolicies picks the admission and generate policies out of a rendering (the cleanup
// policies stay out: the default sets' are still installed and pending): the set to install,
// and "Kind/name" of each, sorted.
func admissionPolicies(docs []manifest, engine string) (policySet, string, []string) {
	set := policySet{engine: engine}

	var (
		yamls []string
		names []string
	)

	for _, d := range docs {
		k, ok := policyKinds[d.kind]
		if !ok || k.cleanup {
			continue
		}

		yamls = append(yamls, d.yaml)
		names = append(names, d.kind+"/"+d.name)

		if !slices.Contains(set.kinds, k.resource) {
			set.kinds = append(set.kinds, k.resource)
		}
	}

	slices.Sort(names)

	return set, yamlDocs(yamls...), names
}

// deploymentEnv is the oracle container's environment in the rendered Deployment.
func deploymentEnv(t *testing.T, docs []manifest) map[string]string {
	t.Helper()

	i := slices.IndexFunc(docs, func(d manifest) bool { return d.kind == "Deployment" })
	require.GreaterOrEqual(t, i, 0, "no Deployment rendered")

	containers, _ := nested(docs[i].obj, "spec", "template", "spec", "containers").([]any)
	require.NotEmpty(t, containers)

	c, _ := containers[0].(map[string]any)
	env, _ := c["env"].([]any)
	out := map[string]string{}

	for _, e := range env {
		m, _ := e.(map[string]any)
		v, _ := m["value"].(string)
		out[str(m, "name")] = v
	}

	return out
}

// runLayouts runs the layout scenarios on one Kyverno version, each with its own oracle
// configured from the chart's rendering, with both policy sets one after the other.
func runLayouts(t *testing.T, s *stack, helm string, kv kyvernoUnderTest, oracleBin string, repos repositories, results *measurements) {
	t.Run("app-layout", func(t *testing.T) { appLayout(t, s, helm, kv, oracleBin, repos, results) })
	t.Run("blue-green", func(t *testing.T) { blueGreen(t, s, helm, kv, oracleBin, repos, results) })
}

// installLayout installs the admission and generate policies of docs for one set, and
// uninstalls them when the test ends; it returns what was installed ("Kind/name").
func installLayout(t *testing.T, k *kube, docs []manifest, engine string) []string {
	t.Helper()

	set, policies, names := admissionPolicies(docs, engine)
	require.NotEmpty(t, names, "no policy rendered")
	t.Cleanup(func() { set.uninstall(t, k, policies) })
	set.install(t, k, policies)

	return names
}

// appLayout: the ${APP}/${APP}-dst layout in gate mode (chart testdata/values/app-layout.yaml).
// The user's RS gitea and RD gitea-dst (sourceIdentity gitea) are kept in Git; the oracle runs
// with the identity settings the chart renders into its Deployment. A labelled PVC gitea with
// a snapshot is stored with dataSourceRef to gitea-dst, whose identity (the mover's rules) is
// what the oracle looked up; a fresh PVC is admitted unchanged; nothing is generated, before or
// after binding, and the user's RS and RD are left as they were.
func appLayout(t *testing.T, s *stack, helm string, kv kyvernoUnderTest, oracleBin string, repos repositories, results *measurements) {
	env := deploymentEnv(t, renderManifests(t, helm, "app-layout"))
	require.Equal(t, "{pvc}", env["KOPIA_SOURCE_NAME_TEMPLATE"], "the values file's RS template reaches the oracle")
	require.Equal(t, "{pvc}-dst", env["DESTINATION_NAME_TEMPLATE"], "the values file's RD template reaches the oracle")

	pw := filepath.Join(t.TempDir(), "password")
	require.NoError(t, os.WriteFile(pw, []byte(kopiaPassword+"\n"), 0o600))

	oracleEnv := []string{"KOPIA_REPOSITORY_PATH=" + repos.green, "KOPIA_PASSWORD_FILE=" + pw, "REFRESH_INTERVAL=5s", "MAX_INDEX_AGE=1m"}
	for name, v := range env { // the identity settings, as the chart renders them
		if (strings.HasPrefix(name, "KOPIA_") || name == "BACKEND_TYPE" || name == "DESTINATION_NAME_TEMPLATE") &&
			name != "KOPIA_REPOSITORY_PATH" && name != "KOPIA_PASSWORD_FILE" {
			oracleEnv = append(oracleEnv, name+"="+v)
		}
	}

	o := newOracleEnv(t, s, oracleBin, oracleEnv)
	o.start(t)
	t.Cleanup(func() { o.stop(t) })

	for _, set := range policySets {
		t.Run(set.engine, func(t *testing.T) {
			ns := gateNamespace(set.engine)
			docs := renderManifests(t, helm, "app-layout", "--set", "policies.engine="+set.engine, "--set", "policies.oracleURL="+o.URL())
			names := installLayout(t, s.kube, docs, set.engine)

			want := map[string][]string{
				"clusterpolicy": {"ClusterPolicy/backup-oracle-admission"},
				"cel":           {"MutatingPolicy/backup-oracle-restore", "ValidatingPolicy/backup-oracle-admission"},
			}[set.engine]
			assert.Equal(t, want, names, "gate mode renders the admission policies only: nothing generated, nothing cleaned up")

			r := &run{t: t, maxCalls: kv.sets[set.engine].maxCalls, k: s.kube, o: o, set: kv.version + "/app-layout/" + set.engine,
				engine: set.engine, ns: ns, results: results}
			r.gate()
		})
	}
}

// gate is the app-layout scenario in r.ns.
func (r *run) gate() {
	t := r.t
	k := r.k
	k.mustOK(t, http.MethodPost, "/api/v1/namespaces", map[string]any{"metadata": map[string]any{"name": r.ns}}, "")

	// The user's own RS and RD, as kept in Git next to the app.
	kopia := map[string]any{"repository": "gitea-volsync-secret", "copyMethod": "Snapshot"}
	userRS := k.mustOK(t, http.MethodPost, volsyncPath(r.ns, "replicationsources", ""), map[string]any{
		"apiVersion": "volsync.backube/v1alpha1", "kind": "ReplicationSource",
		"metadata": map[string]any{"name": "gitea", "namespace": r.ns},
		"spec":     map[string]any{"sourcePVC": "gitea", "trigger": map[string]any{"schedule": "0 * * * *"}, "kopia": kopia},
	}, "")
	userRD := k.mustOK(t, http.MethodPost, volsyncPath(r.ns, "replicationdestinations", ""), map[string]any{
		"apiVersion": "volsync.backube/v1alpha1", "kind": "ReplicationDestination",
		"metadata": map[string]any{"name": "gitea-dst", "namespace": r.ns},
		"spec": map[string]any{"trigger": map[string]any{"manual": "restore-once"}, "kopia": map[string]any{
			"repository": "gitea-volsync-secret", "copyMethod": "Snapshot", "capacity": "1Gi", "accessModes": []string{"ReadWriteOnce"},
			"sourceIdentity": map[string]any{"sourceName": "gitea"},
		}},
	}, "")

	res := r.create("app-layout restore", r.ns, "gitea", "daily")
	require.Equal(t, http.StatusCreated, res.Code, res.Raw)
	assert.Equal(t, map[string]any{"apiGroup": "volsync.backube", "kind": "ReplicationDestination", "name": "gitea-dst"},
		nested(res.Body, "spec", "dataSourceRef"), "stored dataSourceRef of gitea: the user's RD")

	looked := r.o.lookup(t, r.ns, "gitea")
	assert.Equal(t, "restore", looked.Body["decision"], "%v", looked.Body)
	assert.Equal(t, giteaSource(r.ns), looked.Body["source"], "the oracle looks up what the user's RS writes")

	names := r.o.proc.Get(t, "/identity/"+r.ns+"/gitea")
	assert.Equal(t, "gitea", names.Body["replicationSource"], "/identity: the RS the layout names (the user's)")
	assert.Equal(t, str(res.Body, "spec", "dataSourceRef", "name"), names.Body["replicationDestination"],
		"/identity: the RD the policies set as dataSourceRef")

	restores, err := kopiamover.DestinationOf(userRD.Body).Source()
	require.NoError(t, err, "the Kopia mover refuses the user's RD gitea-dst")
	assert.Equal(t, restores, looked.Body["source"], "the user's RD gitea-dst (mover rules) must restore what the oracle looked up")

	rs := userRS.Body
	assert.Equal(t, kopiamover.ReplicationSource{Name: str(rs, "metadata", "name"), Namespace: str(rs, "metadata", "namespace")}.Source(),
		looked.Body["source"], "the user's RS gitea (mover rules) must write what the oracle looks up")

	res = r.create("app-layout fresh", r.ns, "newapp", "daily")
	require.Equal(t, http.StatusCreated, res.Code, res.Raw)
	assert.Nil(t, nested(res.Body, "spec", "dataSourceRef"), "fresh PVC: dataSourceRef")
	assert.Nil(t, nested(res.Body, "spec", "dataSource"), "fresh PVC: dataSource")

	r.markBound("gitea")
	r.markBound("newapp")

	// Nothing generated: the rendering holds no generate policy (asserted by the caller), no
	// generate request is left, no Secret exists, and the user's RS and RD are the only ones
	// and unchanged.
	r.waitGenerateSettled(30 * time.Second)

	secrets := k.get(t, "/api/v1/namespaces/"+r.ns+"/secrets")
	require.Equal(t, http.StatusOK, secrets.Code, secrets.Raw)
	assert.Empty(t, secrets.Body["items"], "gate mode: a Secret was generated")

	for kind, obj := range map[string]apiResult{"replicationsources": userRS, "replicationdestinations": userRD} {
		list := k.get(t, volsyncPath(r.ns, kind, ""))
		require.Equal(t, http.StatusOK, list.Code, list.Raw)

		items, _ := list.Body["items"].([]any)
		require.Len(t, items, 1, "gate mode: only the user's %s", kind)

		got, _ := items[0].(map[string]any)
		assert.Equal(t, str(obj.Body, "metadata", "name"), str(got, "metadata", "name"), kind)
		assert.Equal(t, str(obj.Body, "metadata", "resourceVersion"), str(got, "metadata", "resourceVersion"), "gate mode: the user's %s was changed", kind)
	}
}

// markBound does what the PV controller does when it binds a claim: the status, then the
// claim's volumeName and bind-completed annotation.
func (r *run) markBound(name string) {
	t := r.t

	r.k.mustOK(t, http.MethodPatch, pvcPath(r.ns, name)+"/status", map[string]any{
		"status": map[string]any{"phase": "Bound", "accessModes": []string{"ReadWriteOnce"},
			"capacity": map[string]string{"storage": "1Gi"}},
	}, "application/merge-patch+json")
	r.k.mustOK(t, http.MethodPatch, pvcPath(r.ns, name), map[string]any{
		"metadata": map[string]any{"annotations": map[string]string{
			"pv.kubernetes.io/bind-completed": "yes", "pv.kubernetes.io/bound-by-controller": "yes"}},
		"spec": map[string]any{"volumeName": "pv-" + r.ns + "-" + name},
	}, "application/merge-patch+json")
}

// blueGreenValues is chart testdata/values/blue-green.yaml made runnable here: both colours are
// kopia-fs repositories on NFS (the test's two repositories stand behind the paths the chart
// renders into BACKENDS_FILE), each with its VolSync repository Secret in volsync-system.
const blueGreenValues = `backends:
  - name: green
    role: own
    type: kopia-fs
    repository: {nfs: {server: nfs.green.example.internal, path: /volsync/kopia}}
    passwordSecret: {name: kopia-green, key: password}
    moverSecret: {sourceNamespace: volsync-system, sourceName: volsync-kopia-green}
  - name: blue
    role: restore
    type: kopia-fs
    repository: {nfs: {server: nfs.blue.example.internal, path: /volsync/kopia-blue}}
    passwordSecret: {name: kopia-blue, key: password}
    moverSecret: {sourceNamespace: volsync-system, sourceName: volsync-kopia-blue}
`

// blueGreenSecrets are the two colours' VolSync repository Secrets the policies clone. Both
// colours' movers mount their NFS export at /mnt/repository (moverVolumes mountPath
// "repository"), so that is where KOPIA_REPOSITORY points (kopiamover, R1 to R3).
const blueGreenSecrets = `apiVersion: v1
kind: Secret
metadata: {name: volsync-kopia-green, namespace: volsync-system}
stringData: {KOPIA_REPOSITORY: "filesystem:///mnt/repository", KOPIA_PASSWORD: green-password, COLOUR: green}
---
apiVersion: v1
kind: Secret
metadata: {name: volsync-kopia-blue, namespace: volsync-system}
stringData: {KOPIA_REPOSITORY: "filesystem:///mnt/repository", KOPIA_PASSWORD: blue-password, COLOUR: blue}
`

// blueGreen: this cluster is green (own: the first repository), blue is the cluster being
// replaced (the second). The oracle reads the BACKENDS_FILE the chart renders (its paths
// pointed at the test's repositories). PVC app has a snapshot in both, the newest in blue: it
// is stored with restore-backend blue, its RD restores from volsync-app-restore (a clone of
// blue's Secret) on blue's NFS export, and once bound its RS backs up to volsync-app (green's)
// on green's. PVC own-only, backed up in green only, restores from volsync-own-only. With
// blue's repository gone, the oracle answers unknown and a labelled PVC is denied.
func blueGreen(t *testing.T, s *stack, helm string, kv kyvernoUnderTest, oracleBin string, repos repositories, results *measurements) {
	dir := t.TempDir()
	values := filepath.Join(dir, "values.yaml")
	require.NoError(t, os.WriteFile(values, []byte(blueGreenValues), 0o600))

	docs := renderManifests(t, helm, "blue-green", "-f", values)
	i := slices.IndexFunc(docs, func(d manifest) bool { return d.kind == "ConfigMap" && strings.HasSuffix(d.name, "-backends") })
	require.GreaterOrEqual(t, i, 0, "no backends ConfigMap rendered")

	env := deploymentEnv(t, docs)
	require.Equal(t, "/config/backends.yaml", env["BACKENDS_FILE"])

	// This version's own copy of blue: the outage moves it away, and the versions run
	// concurrently on the same repositories.
	repos.blue = copyRepository(t, repos.blue, filepath.Join(dir, "blue"))

	file := writeBackendsFile(t, docs[i], dir, map[string]string{"green": repos.green, "blue": repos.blue},
		map[string]string{"green": kopiaPassword, "blue": kopiaPassword})

	o := newOracleEnv(t, s, oracleBin, []string{"BACKENDS_FILE=" + file, "REFRESH_INTERVAL=2s", "MAX_INDEX_AGE=20s"})
	o.start(t)
	t.Cleanup(func() { o.stop(t) })

	s.kube.apply(t, blueGreenSecrets)

	for _, set := range policySets {
		t.Run(set.engine, func(t *testing.T) {
			docs := renderManifests(t, helm, "blue-green", "-f", values, "--set", "policies.engine="+set.engine, "--set", "policies.oracleURL="+o.URL())
			installLayout(t, s.kube, docs, set.engine)

			r := &run{t: t, maxCalls: kv.sets[set.engine].maxCalls, k: s.kube, o: o, set: kv.version + "/blue-green/" + set.engine,
				engine: set.engine, ns: blueGreenNamespace(set.engine), results: results}
			r.blueGreen(repos.blue)
		})
	}
}

// writeBackendsFile writes the BACKENDS_FILE of the rendered backends ConfigMap cm into dir,
// with the mount paths the chart chose for each colour's repository and password pointed at the
// test's repository (repos) and a file holding its password (passwords); it returns its path.
func writeBackendsFile(t *testing.T, cm manifest, dir string, repos, passwords map[string]string) string {
	t.Helper()

	backends := str(cm.obj, "data", "backends.yaml")
	for colour, repo := range repos {
		pw := filepath.Join(dir, colour+"-password")
		require.NoError(t, os.WriteFile(pw, []byte(passwords[colour]+"\n"), 0o600))

		for from, to := range map[string]string{"/repositories/" + colour + "\n": repo + "\n", "/secrets/" + colour + "/repository/password\n": pw + "\n"} {
			require.Contains(t, backends, from, "the rendered BACKENDS_FILE")
			backends = strings.Replace(backends, from, to, 1)
		}
	}

	file := filepath.Join(dir, "backends.yaml")
	require.NoError(t, os.WriteFile(file, []byte(backends), 0o600))
	t.Logf("BACKENDS_FILE:\n%s", backends)

	return file
}

// copyRepository copies the repository at src to dst (a new folder) and returns dst.
func copyRepository(t *testing.T, src, dst string) string {
	t.Helper()

	require.NoError(t, os.CopyFS(dst, os.DirFS(src)), "copy %s", src)

	return dst
}

// blueGreen is the blue/green scenario in r.ns; blue is the blue repository's path.
func (r *run) blueGreen(blue string) {
	t := r.t
	k := r.k
	k.mustOK(t, http.MethodPost, "/api/v1/namespaces", map[string]any{"metadata": map[string]any{"name": r.ns}}, "")

	secretData := func(ns, name string) map[string]any {
		obj := r.waitFor("/api/v1/namespaces/"+ns+"/secrets/"+name, true, 15*time.Second)
		m, _ := obj["data"].(map[string]any)
		require.NotEmpty(t, m, "Secret %s/%s has no data", ns, name)

		return m
	}
	nfs := map[string]map[string]any{
		"green": {"server": "nfs.green.example.internal", "path": "/volsync/kopia"},
		"blue":  {"server": "nfs.blue.example.internal", "path": "/volsync/kopia-blue"},
	}

	for _, c := range []struct {
		pvc, backend, repository string
	}{
		{"app", "blue", "volsync-app-restore"},    // newest snapshot in blue
		{"own-only", "green", "volsync-own-only"}, // only in green, the own one
	} {
		looked := r.o.lookup(t, r.ns, c.pvc)
		require.Equal(t, "restore", looked.Body["decision"], "%v", looked.Body)
		assert.Equal(t, c.backend, looked.Body["backend"], "%s: the backend of the newest snapshot", c.pvc)

		res := r.create("blue-green restore", r.ns, c.pvc, "hourly")
		require.Equal(t, http.StatusCreated, res.Code, res.Raw)
		assert.Equal(t, c.backend, str(res.Body, "metadata", "annotations", "backup-oracle.io/restore-backend"), "%s: stored restore-backend", c.pvc)
		assert.Equal(t, c.pvc+"-backup", str(res.Body, "spec", "dataSourceRef", "name"), "%s: dataSourceRef", c.pvc)

		rd := r.waitFor(volsyncPath(r.ns, "replicationdestinations", c.pvc+"-backup"), true, 15*time.Second)
		assert.Equal(t, c.repository, str(rd, "spec", "kopia", "repository"), "%s: the RD's repository Secret", c.pvc)
		assert.Equal(t, []any{map[string]any{"mountPath": "repository", "volumeSource": map[string]any{"nfs": nfs[c.backend]}}},
			nested(rd, "spec", "kopia", "moverVolumes"), "%s: the RD mounts its backend's NFS export", c.pvc)
		restores, err := kopiamover.DestinationOf(rd).Source()
		require.NoError(t, err, "%s: the Kopia mover refuses the generated RD", c.pvc)
		assert.Equal(t, restores, looked.Body["source"], "%s: the RD's Kopia identity (mover rules) must be what the oracle looked up", c.pvc)

		assert.Equal(t, secretData("volsync-system", "volsync-kopia-"+c.backend), secretData(r.ns, c.repository),
			"%s: %s is a clone of %s's repository Secret", c.pvc, c.repository, c.backend)
		r.assertFindsRepository(rd)
		assert.Equal(t, secretData("volsync-system", "volsync-kopia-green"), secretData(r.ns, "volsync-"+c.pvc),
			"%s: volsync-%s is a clone of the own (green) repository Secret", c.pvc, c.pvc)

		r.markBound(c.pvc)

		rs := r.waitFor(volsyncPath(r.ns, "replicationsources", c.pvc+"-backup"), true, 15*time.Second)
		assert.Equal(t, "volsync-"+c.pvc, str(rs, "spec", "kopia", "repository"), "%s: the RS backs up to the own repository", c.pvc)
		r.assertFindsRepository(rs)
		assert.Equal(t, []any{map[string]any{"mountPath": "repository", "volumeSource": map[string]any{"nfs": nfs["green"]}}},
			nested(rs, "spec", "kopia", "moverVolumes"), "%s: the RS mounts the own NFS export", c.pvc)
		assert.Equal(t, kopiamover.ReplicationSource{Name: str(rs, "metadata", "name"), Namespace: str(rs, "metadata", "namespace"),
			Username: str(rs, "spec", "kopia", "username"), Hostname: str(rs, "spec", "kopia", "hostname")}.Source(),
			looked.Body["source"], "%s: the RS's Kopia identity (mover rules) must be what the oracle looked up", c.pvc)
	}

	r.waitGenerateSettled(30 * time.Second)
	assert.False(t, k.exists(t, "/api/v1/namespaces/"+r.ns+"/secrets/volsync-own-only-restore"),
		"a PVC restored from the own backend gets no restore Secret")

	// Blue unreadable: it could hold a newer snapshot of anything, so every answer is unknown.
	require.NoError(t, os.Rename(blue, blue+".away"))

	restored := false
	restore := func() {
		if !restored {
			restored = true
			require.NoError(t, os.Rename(blue+".away", blue))
		}
	}
	t.Cleanup(restore)

	var last map[string]any

	took, ok := eventually(40*time.Second, 200*time.Millisecond, func() bool {
		last = r.o.lookup(t, r.ns, "own-only").Body
		return last["decision"] == "unknown"
	})
	require.True(t, ok, "blue gone: the oracle still answers %v", last)
	t.Logf("blue gone: unknown after %s: %v", took.Round(time.Millisecond), last["error"])

	res := r.create("blue-green, blue gone", r.ns, "later", "hourly")
	assert.Contains(t, []int{http.StatusBadRequest, http.StatusForbidden}, res.Code, res.Raw)
	assert.False(t, k.exists(t, pvcPath(r.ns, "later")), "blue gone: the PVC was created")

	restore()

	took, ok = eventually(60*time.Second, 200*time.Millisecond, func() bool {
		last = r.o.lookup(t, r.ns, "app").Body
		return last["decision"] == "restore"
	})
	require.True(t, ok, "blue back: the oracle still answers %v", last)
	t.Logf("blue back: restore after %s", took.Round(time.Millisecond))
}
