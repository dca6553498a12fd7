//go:build e2e

package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// resticBlueGreenValues: this cluster is green (own: bucket volsync, where the other restic
// scenarios back up), blue is the cluster being replaced (bucket volsync-blue), both restic-s3
// on the test's S3 server; each colour's restic password and credentials are a remote key of the
// store (policies.secret.mode externalSecret). The endpoint is set by the test.
const resticBlueGreenValues = `backends:
  - name: green
    role: own
    type: restic-s3
    s3: {bucket: volsync, secure: false, credentialsSecret: {name: s3-green}}
    passwordSecret: {name: restic-green, key: RESTIC_PASSWORD}
    moverSecret: {remoteKey: volsync/restic-green}
  - name: blue
    role: restore
    type: restic-s3
    s3: {bucket: volsync-blue, secure: false, credentialsSecret: {name: s3-blue}}
    passwordSecret: {name: restic-blue, key: RESTIC_PASSWORD}
    moverSecret: {remoteKey: volsync/restic-blue}
policies:
  mover: restic
  copyMethod: Direct
  secret:
    mode: externalSecret
    externalSecret: {storeName: vault}
`

// Each colour's restic password: a restore from the wrong colour cannot even open the repository.
var colourPasswords = map[string]string{"green": "green-restic-password", "blue": "blue-restic-password"} //nolint:gochecknoglobals // test data

func resticBlueGreenNamespace(engine string) string { return "e2e-restic-bg-" + engine }

// resticBlueGreen: PVC app has a backup in both colours, written by the real mover (a seed RS
// per colour whose Secret points at that colour's repository of app), the newer in blue. The
// oracle answers restore from blue; the policies give the re-created PVC an RD whose
// ExternalSecret (volsync-app-restore) is blue's; its Job restores blue's files, byte for byte,
// not green's.
func (e *resticEnv) blueGreen(t *testing.T, s *stack, oracleBin string, set policySet, kv kyvernoUnderTest, results *measurements) {
	dir := t.TempDir()
	values := filepath.Join(dir, "values.yaml")
	require.NoError(t, os.WriteFile(values, []byte(resticBlueGreenValues), 0o600))

	args := []string{"-f", values, "--set", "backend.s3.ca=null", "--set", "backends[0].s3.endpoint=" + e.s3.Endpoint, "--set", "backends[1].s3.endpoint=" + e.s3.Endpoint}

	// The seeds' PVCs carry no backup label: the main restic oracle stands by.
	r := &resticRun{run: &run{t: t, maxCalls: kv.sets[set.engine].maxCalls, k: s.kube, o: e.o, set: kv.version + "/restic-blue-green/" + set.engine,
		engine: set.engine, ns: resticBlueGreenNamespace(set.engine), results: results}, e: e}
	r.k.mustOK(t, http.MethodPost, "/api/v1/namespaces", map[string]any{"metadata": map[string]any{"name": r.ns}}, "")

	const pvc = "app"

	green := r.seed("green", "s3:"+e.s3.URL+"/volsync/"+r.ns+"/"+pvc)
	blue := r.seed("blue", "s3:"+e.s3.URL+"/volsync-blue/"+r.ns+"/"+pvc)
	require.NotEqual(t, green, blue)

	o := e.blueGreenOracle(t, s, oracleBin, dir, args)
	r.o = o

	docs := renderManifests(t, e.helm, "restic", append(args, "--set", "policies.engine="+set.engine, "--set", "policies.oracleURL="+o.URL())...)
	installLayout(t, s.kube, docs, set.engine)

	took, err := r.waitAnswer(pvc, "restore")
	require.NoError(t, err)
	looked := o.lookup(t, r.ns, pvc)
	require.Equal(t, "blue", looked.Body["backend"], "the newest snapshot is blue's: %v", looked.Body)
	t.Logf("blue/green: restore from blue answered after %s", took.Round(time.Millisecond))

	res := r.create("restic blue-green restore", r.ns, pvc, "hourly")
	require.Equal(t, http.StatusCreated, res.Code, res.Raw)
	assert.Equal(t, "blue", str(res.Body, "metadata", "annotations", "backup-oracle.io/restore-backend"))

	own := e.store.fulfil(t, r.k, r.ns, "volsync-"+pvc, nil)
	assert.Equal(t, "s3:"+e.s3.URL+"/volsync/"+r.ns+"/"+pvc, own["RESTIC_REPOSITORY"], "the RS's Secret: green, the own colour")

	restore := e.store.fulfil(t, r.k, r.ns, "volsync-"+pvc+"-restore", nil)
	assert.Equal(t, "s3:"+e.s3.URL+"/volsync-blue/"+r.ns+"/"+pvc, restore["RESTIC_REPOSITORY"], "the RD's Secret: blue, the colour the oracle chose")

	rd := r.waitFor(volsyncPath(r.ns, "replicationdestinations", pvc+"-backup"), true, 30*time.Second)
	assert.Equal(t, "volsync-"+pvc+"-restore", str(rd, "spec", "restic", "repository"))

	r.runMoverJob("ReplicationDestination", pvc+"-backup", "restore")
	status := r.waitStatus("replicationdestinations", pvc+"-backup", "latestImage")

	dest, err := e.runner.ClaimDir(r.ns, str(status, "latestImage", "name"))
	require.NoError(t, err)
	assert.Equal(t, blue, readFiles(t, dest), "the RD's Job restored blue's files (the colour the oracle chose), byte for byte")
}

// seed backs up files of its own to repository with the real mover: an unlabelled PVC, a
// Secret for that colour and a ReplicationSource with a manual trigger; it returns the files.
func (r *resticRun) seed(colour, repository string) map[string]string {
	t := r.t
	name := "seed-" + colour

	res := r.create("restic blue-green seed", r.ns, name, "")
	require.Equal(t, http.StatusCreated, res.Code, res.Raw)

	claim, err := r.e.runner.ClaimDir(r.ns, name)
	require.NoError(t, err)

	files := writeFiles(t, claim)
	files["colour"] = colour + "\n"
	require.NoError(t, os.WriteFile(filepath.Join(claim, "colour"), []byte(files["colour"]), 0o644)) //nolint:gosec // test data

	r.k.mustOK(t, http.MethodPost, "/api/v1/namespaces/"+r.ns+"/secrets", map[string]any{
		"metadata": map[string]any{"name": name},
		"stringData": map[string]string{"RESTIC_REPOSITORY": repository, "RESTIC_PASSWORD": colourPasswords[colour],
			"AWS_ACCESS_KEY_ID": r.e.s3.AccessKey, "AWS_SECRET_ACCESS_KEY": r.e.s3.SecretKey},
	}, "")
	r.k.mustOK(t, http.MethodPost, volsyncPath(r.ns, "replicationsources", ""), map[string]any{
		"apiVersion": "volsync.backube/v1alpha1", "kind": "ReplicationSource",
		"metadata": map[string]any{"name": name, "namespace": r.ns},
		"spec": map[string]any{"sourcePVC": name, "trigger": map[string]any{"manual": "once"}, "restic": map[string]any{
			"repository": name, "copyMethod": "Direct",
			"moverSecurityContext": map[string]any{"runAsUser": 568, "runAsGroup": 568, "fsGroup": 568}}},
	}, "")

	r.runMoverJob("ReplicationSource", name, "backup")
	r.waitStatus("replicationsources", name, "lastManualSync")

	return files
}

// secretPathRe matches the Secret files the chart mounts into the oracle for a backend.
var secretPathRe = regexp.MustCompile(`/secrets/([a-z0-9-]+)/(repository|s3)/([A-Za-z0-9_.-]+)`)

// blueGreenOracle starts an oracle on the BACKENDS_FILE the chart renders for these values,
// its Secret files written here (each colour's password, the S3 keys).
func (e *resticEnv) blueGreenOracle(t *testing.T, s *stack, oracleBin, dir string, args []string) *oracle {
	t.Helper()

	docs := renderManifests(t, e.helm, "restic", args...)
	i := slices.IndexFunc(docs, func(d manifest) bool { return d.kind == "ConfigMap" && strings.HasSuffix(d.name, "-backends") })
	require.GreaterOrEqual(t, i, 0, "no backends ConfigMap rendered")

	backends := secretPathRe.ReplaceAllStringFunc(str(docs[i].obj, "data", "backends.yaml"), func(p string) string {
		m := secretPathRe.FindStringSubmatch(p)
		content := map[string]string{"repository": colourPasswords[m[1]]}[m[2]]

		switch {
		case m[2] == "s3" && strings.Contains(m[3], "SECRET"):
			content = e.s3.SecretKey
		case m[2] == "s3":
			content = e.s3.AccessKey
		}

		file := filepath.Join(dir, m[1]+"-"+m[2]+"-"+m[3])
		require.NoError(t, os.WriteFile(file, []byte(content+"\n"), 0o600))

		return file
	})

	file := filepath.Join(dir, "backends.yaml")
	require.NoError(t, os.WriteFile(file, []byte(backends), 0o600))
	t.Logf("BACKENDS_FILE:\n%s", backends)

	o := newOracleEnv(t, s, oracleBin, []string{"BACKENDS_FILE=" + file, "REFRESH_INTERVAL=" + resticRefresh.String(), "MAX_INDEX_AGE=30s"})
	o.start(t)
	t.Cleanup(func() { o.stop(t) })

	return o
}
