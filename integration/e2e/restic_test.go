//go:build e2e

package e2e

import (
	"crypto/rand"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness"
	"github.com/backup-oracle/backup-oracle/integration/harness/jobrunner"
)

// resticPassword is the movers' and the oracle's restic repository password.
const resticPassword = "e2e-restic-password"

// resticRefresh is the restic oracle's REFRESH_INTERVAL: a backup is answered restore within
// one refresh (plus the verification of its snapshot).
const resticRefresh = 2 * time.Second

// resticNamespace holds the restic scenarios of one policy set.
func resticNamespace(engine string) string { return "e2e-restic-" + engine }

// resticEnv is what the restic scenarios of one Kyverno version share: the S3 server (versitygw,
// bucket volsync), the oracle reading it with the settings the chart renders, VolSync's real
// controller and the Job runner standing in for the kubelet.
type resticEnv struct {
	s3     *harness.S3Server
	o      *oracle
	runner *jobrunner.Runner
	store  secretStore
	helm   string
	// values are the chart settings of the restic layout on this S3 server.
	values []string
}

// runRestic runs the restic scenarios on one version's stack: upstream VolSync v0.16.0's
// controller and its real mover script, the chart's restic policies (copyMethod Direct: no CSI
// driver here), both policy sets one after the other.
func runRestic(t *testing.T, s *stack, helm string, kv kyvernoUnderTest, oracleBin string, results *measurements) {
	if err := jobrunner.Available(); err != nil {
		harness.Require(t, err.Error())
	}

	v := findVolSync(t)
	resticBin := harness.Tool(t, "restic")
	e := &resticEnv{s3: harness.StartS3(t), helm: helm}
	e.s3.CreateBucket("volsync")
	e.s3.CreateBucket("volsync-blue")
	// The values set's private CA (backend.s3.ca) is not this plain-HTTP server's.
	e.values = []string{"--set", "backend.s3.endpoint=" + e.s3.URL, "--set", "backend.s3.bucket=volsync", "--set", "backend.s3.ca=null",
		"--set", "policies.copyMethod=Direct", "--set", "config.allowEmptyIndex=true"}
	e.store = secretStore{}
	for key, pw := range map[string]string{"volsync/restic": resticPassword, "volsync/restic-green": colourPasswords["green"],
		"volsync/restic-blue": colourPasswords["blue"]} {
		e.store[key] = map[string]string{"RESTIC_PASSWORD": pw, "AWS_ACCESS_KEY_ID": e.s3.AccessKey, "AWS_SECRET_ACCESS_KEY": e.s3.SecretKey}
	}

	s.kube.apply(t, render(t, helm, "restic", slices.Concat(e.values, []string{"--show-only", "templates/policies/kyverno-rbac.yaml"})...))
	s.startVolSync(t, v)

	dir := t.TempDir()
	e.runner = &jobrunner.Runner{
		API:    jobrunner.REST{URL: s.kube.url, Token: s.kube.token, Client: s.kube.client},
		Claims: filepath.Join(dir, "claims"), Work: filepath.Join(dir, "pods"),
		Image: jobrunner.Image{
			Files: map[string]string{"/mover-restic": filepath.Join(v.dir, "mover-restic"), "/usr/local/bin/restic": resticBin},
			Env:   []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		},
	}

	e.o = e.startOracle(t, s, oracleBin, dir)

	for _, set := range policySets {
		t.Run(set.engine, func(t *testing.T) {
			docs := renderManifests(t, helm, "restic", slices.Concat(e.values, []string{"--set", "policies.engine=" + set.engine,
				"--set", "policies.oracleURL=" + e.o.URL()})...)
			installLayout(t, s.kube, docs, set.engine)

			r := &run{t: t, maxCalls: kv.sets[set.engine].maxCalls, k: s.kube, o: e.o, set: kv.version + "/restic/" + set.engine,
				engine: set.engine, ns: resticNamespace(set.engine), results: results}
			r.k.mustOK(t, http.MethodPost, "/api/v1/namespaces", map[string]any{"metadata": map[string]any{"name": r.ns}}, "")

			rr := &resticRun{run: r, e: e}
			rr.step("backup-and-restore", rr.backupAndRestore)
			rr.step("disagreement-detected", rr.disagreement)
			rr.step("foreign-snapshot", rr.foreign)
		})
	}

	for _, set := range policySets {
		t.Run("blue-green/"+set.engine, func(t *testing.T) { e.blueGreen(t, s, oracleBin, set, kv, results) })
	}
}

// startOracle starts the oracle with the restic-s3 settings the chart renders into its
// Deployment (backend, bucket, prefix, layout, near-miss mode, empty index allowed while no
// backup exists yet), its Secrets' files written here.
func (e *resticEnv) startOracle(t *testing.T, s *stack, oracleBin, dir string) *oracle {
	t.Helper()

	env := deploymentEnv(t, renderManifests(t, e.helm, "restic", e.values...))
	require.Equal(t, "restic-s3", env["BACKEND_TYPE"])

	files := map[string]string{"RESTIC_PASSWORD_FILE": resticPassword, "S3_ACCESS_KEY_FILE": e.s3.AccessKey, "S3_SECRET_KEY_FILE": e.s3.SecretKey}
	// The fleet (and with it the near misses) at every refresh, not every 10 minutes (the
	// restic-s3 default): a near miss shows within one refresh.
	oracleEnv := []string{"REFRESH_INTERVAL=" + resticRefresh.String(), "MAX_INDEX_AGE=30s", "RESTIC_FLEET_REFRESH_INTERVAL=0"}

	for name, v := range env {
		if _, secret := files[name]; secret {
			continue
		}

		if strings.HasPrefix(name, "S3_") || strings.HasPrefix(name, "RESTIC_") || name == "BACKEND_TYPE" || name == "NEAR_MISS" ||
			name == "ALLOW_EMPTY_INDEX" {
			oracleEnv = append(oracleEnv, name+"="+v)
		}
	}

	for name, content := range files {
		p := filepath.Join(dir, strings.ToLower(name))
		require.NoError(t, os.WriteFile(p, []byte(content+"\n"), 0o600))
		oracleEnv = append(oracleEnv, name+"="+p)
	}

	t.Logf("restic oracle: %v", oracleEnv)

	o := newOracleEnv(t, s, oracleBin, oracleEnv)
	o.start(t)
	t.Cleanup(func() { o.stop(t) })

	return o
}

// resticRun is one policy set's restic scenarios.
type resticRun struct {
	*run
	e *resticEnv
}

func (r *resticRun) step(name string, f func()) {
	parent := r.t
	parent.Run(name, func(t *testing.T) { r.t = t; f() })
	r.t = parent
}

// repository is the restic repository URL the chart's policies give a PVC's movers.
func (r *resticRun) repository(pvc string) string {
	return "s3:" + r.e.s3.URL + "/volsync/" + r.ns + "/" + pvc
}

// backupAndRestore: a labelled PVC without backup is fresh; once bound the RS is generated, its
// Job (VolSync's mover script) backs up the files the test put in the claim; the oracle then
// answers restore for exactly that PVC; the app is deleted and re-created, restored from its
// RD, whose Job restores the files byte for byte.
func (r *resticRun) backupAndRestore() {
	t := r.t
	const pvc = "data"

	res := r.create("restic fresh", r.ns, pvc, "hourly")
	require.Equal(t, http.StatusCreated, res.Code, res.Raw)
	assert.Nil(t, nested(res.Body, "spec", "dataSourceRef"), "no backup yet: fresh")

	secret := r.e.store.fulfil(t, r.k, r.ns, "volsync-"+pvc, nil)
	require.Equal(t, r.repository(pvc), secret["RESTIC_REPOSITORY"], "the chart's one base: where the oracle reads")

	claim, err := r.e.runner.ClaimDir(r.ns, pvc)
	require.NoError(t, err)

	written := writeFiles(t, claim)

	r.markBound(pvc)
	rs := r.waitFor(volsyncPath(r.ns, "replicationsources", pvc+"-backup"), true, 30*time.Second)
	assert.Equal(t, "Direct", str(rs, "spec", "restic", "copyMethod"))

	r.runMoverJob("ReplicationSource", pvc+"-backup", "backup")
	r.waitStatus("replicationsources", pvc+"-backup", "lastSyncTime")

	var err2 error

	took, ok := eventually(resticRefresh+20*time.Second, 200*time.Millisecond, func() bool { err2 = r.agrees(pvc); return err2 == nil })
	require.True(t, ok, "the oracle must answer restore for the PVC whose backup the mover wrote: %v", err2)
	t.Logf("restore answered %s after the backup Job ended (refresh interval %s)", took.Round(time.Millisecond), resticRefresh)
	assert.Equal(t, "fresh", r.o.lookup(t, r.ns, pvc+"-other").Body["decision"], "exactly that PVC: another stays fresh")

	// The app is deleted and re-created: restored from its RD.
	r.k.mustOK(t, http.MethodDelete, pvcPath(r.ns, pvc), nil, "")
	r.k.mustOK(t, http.MethodPatch, pvcPath(r.ns, pvc), map[string]any{"metadata": map[string]any{"finalizers": nil}}, "application/merge-patch+json")
	r.waitFor(pvcPath(r.ns, pvc), false, 10*time.Second)

	res = r.create("restic restore", r.ns, pvc, "hourly")
	require.Equal(t, http.StatusCreated, res.Code, res.Raw)
	assert.Equal(t, pvc+"-backup", str(res.Body, "spec", "dataSourceRef", "name"), "restored from its RD")

	r.e.store.fulfil(t, r.k, r.ns, "volsync-"+pvc, nil)
	rd := r.waitFor(volsyncPath(r.ns, "replicationdestinations", pvc+"-backup"), true, 30*time.Second)
	assert.Equal(t, "volsync-"+pvc, str(rd, "spec", "restic", "repository"))

	r.runMoverJob("ReplicationDestination", pvc+"-backup", "restore")
	status := r.waitStatus("replicationdestinations", pvc+"-backup", "latestImage", "lastManualSync")
	assert.Equal(t, "restore-"+str(res.Body, "metadata", "uid"), str(status, "lastManualSync"), "VolSync recorded the restore of this PVC instance")

	dest, err := r.e.runner.ClaimDir(r.ns, str(status, "latestImage", "name"))
	require.NoError(t, err)
	assert.Equal(t, written, readFiles(t, dest), "the RD's Job restored what the RS's Job backed up, byte for byte")
}

// disagreement: the RS of PVC elsewhere writes one level deeper in the bucket than the oracle
// reads (the issue's …/volsync/clusterA base with an empty prefix, injected in its Secret: the
// chart refuses that base). The check that passes in backupAndRestore must fail here: the
// oracle never answers restore, so the suite can see the two sides disagree.
func (r *resticRun) disagreement() {
	t := r.t
	const pvc = "elsewhere"

	res := r.create("restic disagreement", r.ns, pvc, "hourly")
	require.Equal(t, http.StatusCreated, res.Code, res.Raw)

	wrong := "s3:" + r.e.s3.URL + "/volsync/clusterA/" + r.ns + "/" + pvc
	r.e.store.fulfil(t, r.k, r.ns, "volsync-"+pvc, map[string]string{"RESTIC_REPOSITORY": wrong})

	claim, err := r.e.runner.ClaimDir(r.ns, pvc)
	require.NoError(t, err)
	writeFiles(t, claim)

	r.markBound(pvc)
	r.waitFor(volsyncPath(r.ns, "replicationsources", pvc+"-backup"), true, 30*time.Second)
	r.runMoverJob("ReplicationSource", pvc+"-backup", "backup")

	// Once the oracle's listing holds the backup (a near miss one level deeper), the check that
	// passed for PVC data must fail for this one.
	var looked map[string]any

	_, ok := eventually(resticRefresh+20*time.Second, 200*time.Millisecond, func() bool {
		looked = r.o.lookup(t, r.ns, pvc).Body
		return strings.Contains(fmt.Sprint(looked["nearMiss"]), "volsync/clusterA/"+r.ns+"/"+pvc)
	})
	require.True(t, ok, "the oracle never saw the backup one level deeper: %v", looked)

	err = r.agrees(pvc)
	require.Error(t, err, "the RS wrote where the oracle does not read: the check must fail")
	t.Logf("detected: %v", err)
	assert.Equal(t, "unknown", looked["decision"], "not fresh either: the repository one level deeper is a near miss")
}

// agrees is the check that the two sides agree on pvc after its backup: the oracle answers
// restore for it.
func (r *run) agrees(pvc string) error {
	looked := r.o.lookup(r.t, r.ns, pvc).Body
	if looked["decision"] != "restore" {
		return fmt.Errorf("%s/%s: the mover backed it up, the oracle answers %v: %v", r.ns, pvc, looked["decision"], looked)
	}

	return nil
}

// foreign: PVC foreign's repository holds only a snapshot written by the restic CLI from another
// path (not /data). The oracle answers unknown (not restore, not fresh), and the real mover
// agrees that there is nothing it would restore: a ReplicationDestination on that repository
// logs "No eligible snapshots found", succeeds and leaves its volume empty.
func (r *resticRun) foreign() {
	t := r.t
	const pvc = "foreign"

	src := filepath.Join(t.TempDir(), "srv", "app")
	require.NoError(t, os.MkdirAll(src, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(src, "f"), []byte("not the mover's\n"), 0o600))

	cli := harness.NewResticCLI(t, r.e.s3)
	cli.Init(r.repository(pvc), resticPassword, "2")
	cli.BackupFrom(r.repository(pvc), resticPassword, src, "laptop")

	var last map[string]any

	_, ok := eventually(30*time.Second, 200*time.Millisecond, func() bool {
		last = r.o.lookup(t, r.ns, pvc).Body
		return last["decision"] == "unknown" && strings.Contains(fmt.Sprint(last["error"]), "none of which VolSync's restic mover would restore")
	})
	require.True(t, ok, "a repository of snapshots the mover skips: %v", last)

	// The real mover on the same repository.
	r.k.mustOK(t, http.MethodPost, "/api/v1/namespaces/"+r.ns+"/secrets", map[string]any{
		"metadata": map[string]any{"name": "foreign-check"},
		"stringData": map[string]string{"RESTIC_REPOSITORY": r.repository(pvc), "RESTIC_PASSWORD": resticPassword,
			"AWS_ACCESS_KEY_ID": r.e.s3.AccessKey, "AWS_SECRET_ACCESS_KEY": r.e.s3.SecretKey},
	}, "")
	r.k.mustOK(t, http.MethodPost, volsyncPath(r.ns, "replicationdestinations", ""), map[string]any{
		"apiVersion": "volsync.backube/v1alpha1", "kind": "ReplicationDestination",
		"metadata": map[string]any{"name": "foreign-check", "namespace": r.ns},
		"spec": map[string]any{"trigger": map[string]any{"manual": "once"}, "restic": map[string]any{
			"repository": "foreign-check", "copyMethod": "Direct", "capacity": "1Gi", "accessModes": []string{"ReadWriteOnce"},
			"moverSecurityContext": map[string]any{"runAsUser": 568, "runAsGroup": 568, "fsGroup": 568}}},
	}, "")

	res := r.runMoverJob("ReplicationDestination", "foreign-check", "restore")
	assert.Contains(t, res.Log, "No eligible snapshots found", "the mover's own words")

	status := r.waitStatus("replicationdestinations", "foreign-check", "latestImage", "lastManualSync")
	dest, err := r.e.runner.ClaimDir(r.ns, str(status, "latestImage", "name"))
	require.NoError(t, err)
	assert.Empty(t, readFiles(t, dest), "the mover restored nothing")
}

// runMoverJob runs the mover Job VolSync makes for the owner and requires it to succeed.
func (r *resticRun) runMoverJob(ownerKind, owner, what string) jobrunner.Result {
	return r.moverJob(r.e.runner, ownerKind, owner, what)
}

// waitAnswer waits for the oracle's answer for pvc to be want, at most one refresh
// plus the verification of new snapshots and a margin for a loaded machine. It returns how long
// it took, or an error with the last answer.
func (r *resticRun) waitAnswer(pvc, want string) (time.Duration, error) {
	var last map[string]any

	start := time.Now()
	_, ok := eventually(resticRefresh+20*time.Second, 200*time.Millisecond, func() bool {
		last = r.o.lookup(r.t, r.ns, pvc).Body
		return last["decision"] == want
	})

	if !ok {
		return time.Since(start), fmt.Errorf("%s/%s: the oracle answers %v, not %s: %v", r.ns, pvc, last["decision"], want, last)
	}

	return time.Since(start), nil
}

// writeFiles writes the test's files into dir (a claim's volume) and returns them by path.
func writeFiles(t *testing.T, dir string) map[string]string {
	t.Helper()

	random := make([]byte, 200_000)
	_, err := rand.Read(random)
	require.NoError(t, err)

	files := map[string]string{
		"db.sqlite":                string(random),
		"conf/app.yaml":            "answer: 42\n",
		"conf/nested/deeper/empty": "",
	}

	for p, content := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
		require.NoError(t, os.WriteFile(full, []byte(content), 0o644)) //nolint:gosec // test data the mover reads
	}

	return files
}

// readFiles reads every regular file under dir, by slash path.
func readFiles(t *testing.T, dir string) map[string]string {
	t.Helper()

	out := map[string]string{}

	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}

		b, err := os.ReadFile(p) //nolint:gosec // test data
		if err != nil {
			return err
		}

		rel, err := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = string(b)

		return err
	}))

	return out
}
