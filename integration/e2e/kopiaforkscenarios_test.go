//go:build e2e && kopiafork

package e2e

import (
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness/jobrunner"
	"github.com/backup-oracle/backup-oracle/integration/harness/kopiamover"
)

// forkRun is one policy set's scenarios of one layout on the Kopia fork.
type forkRun struct {
	*run
	runner     *jobrunner.Runner
	layout     forkLayout
	controller *proc // the fork's controller (its log says why it refuses an RD)
}

func (r *forkRun) step(name string, f func()) {
	parent := r.t
	parent.Run(name, func(t *testing.T) { r.t = t; f() })
	r.t = parent
}

func (r *forkRun) rsName(pvc string) string { return strings.ReplaceAll(r.layout.rs, "{pvc}", pvc) }
func (r *forkRun) rdName(pvc string) string { return strings.ReplaceAll(r.layout.rd, "{pvc}", pvc) }

// backupAndRestore: PVC pvc, labelled, is fresh; once bound, the RS the policies generate makes
// the fork create its Job, whose real mover backs up the files the test put in the claim; the
// oracle then answers restore, with the source that Job wrote; the app is deleted and
// re-created, stored with dataSourceRef to the RD the policies generate, and that RD's Job
// restores the files byte for byte.
func (r *forkRun) backupAndRestore(pvc, label string) {
	t := r.t

	res := r.create("fork fresh", r.ns, pvc, label)
	require.Equal(t, http.StatusCreated, res.Code, res.Raw)
	assert.Nil(t, nested(res.Body, "spec", "dataSourceRef"), "no backup yet: fresh")

	written := r.writeClaim(pvc, "")

	r.markBound(pvc)
	rs := r.waitFor(volsyncPath(r.ns, "replicationsources", r.rsName(pvc)), true, 30*time.Second)
	src := r.backup(str(rs, "metadata", "name"), pvc, "")
	assert.Equal(t, kopiamover.ReplicationSource{Name: str(rs, "metadata", "name"), Namespace: r.ns,
		Username: str(rs, "spec", "kopia", "username"), Hostname: str(rs, "spec", "kopia", "hostname"),
		SourcePathOverride: str(rs, "spec", "kopia", "sourcePathOverride")}.Source(), src,
		"kopiamover's restatement of the RS's source agrees with the fork")

	r.recreate(pvc, label, nil)
	r.restoresExactly(r.rdName(pvc), src, written)
}

// writeClaim writes the test's files (and, with colour, a file naming it) into the claim's
// directory and returns them.
func (r *forkRun) writeClaim(pvc, colour string) map[string]string {
	claim, err := r.runner.ClaimDir(r.ns, pvc)
	require.NoError(r.t, err)

	files := writeFiles(r.t, claim)
	if colour != "" {
		files["colour"] = colour + "\n"
		require.NoError(r.t, os.WriteFile(filepath.Join(claim, "colour"), []byte(files["colour"]), 0o644)) //nolint:gosec // test data
	}

	return files
}

// backup runs the Job the fork makes for RS rs and waits until the oracle answers restore for
// PVC pvc (query: added to /exists, e.g. the named source); it returns the source the oracle
// answered with, which must be the one the mover says it wrote.
func (r *forkRun) backup(rs, pvc, query string) string {
	t := r.t

	job := r.moverJob(r.runner, "ReplicationSource", rs, "backup")
	r.waitStatus("replicationsources", rs, "lastSyncTime")

	looked := r.waitRestore(pvc, query)
	src := str(looked, "source")
	assert.Contains(t, job.Log, "Creating snapshot for "+src+"\n", "the fork's mover wrote the source the oracle looks up")

	return src
}

// waitRestore waits (one refresh and a margin for a loaded machine) until the oracle answers
// restore for pvc and returns its answer.
func (r *forkRun) waitRestore(pvc, query string) map[string]any {
	return r.waitAnswer(pvc, query, "restore", func(a map[string]any) bool { return a["decision"] == "restore" })
}

// waitAnswer waits (one refresh and a margin for a loaded machine) until the oracle's answer for
// pvc (query: added to /exists) satisfies want, described by what, and returns it.
func (r *forkRun) waitAnswer(pvc, query, what string, want func(map[string]any) bool) map[string]any {
	var last map[string]any

	took, ok := eventually(forkRefresh+20*time.Second, 200*time.Millisecond, func() bool {
		last = r.o.proc.Get(r.t, "/exists/"+r.ns+"/"+pvc+query).Body
		return want(last)
	})
	require.True(r.t, ok, "the oracle must answer %s for %s/%s once the fork's mover backed it up: %v", what, r.ns, pvc, last)
	r.t.Logf("%s/%s: %s answered %s after the backup Job ended: %s", r.ns, pvc, what, took.Round(time.Millisecond), last["source"])

	return last
}

// recreate deletes PVC pvc (doing what the pvc-protection controller would) and creates it
// again with the label (and annotations); it requires the stored PVC to name the layout's RD as
// its dataSourceRef.
func (r *forkRun) recreate(pvc, label string, annotations map[string]string) {
	t := r.t

	r.k.mustOK(t, http.MethodDelete, pvcPath(r.ns, pvc), nil, "")
	r.k.mustOK(t, http.MethodPatch, pvcPath(r.ns, pvc), map[string]any{"metadata": map[string]any{"finalizers": nil}}, "application/merge-patch+json")
	r.waitFor(pvcPath(r.ns, pvc), false, 10*time.Second)

	res := r.createAnnotated("fork restore", r.ns, pvc, label, annotations)
	require.Equal(t, http.StatusCreated, res.Code, res.Raw)
	require.Equal(t, r.rdName(pvc), str(res.Body, "spec", "dataSourceRef", "name"), "restored from the layout's RD")
}

// restoresExactly requires RD rd (the one the re-created PVC names) to restore, through the
// fork's Job, the source src the oracle answered and exactly the files written.
func (r *forkRun) restoresExactly(rd, src string, written map[string]string) {
	t := r.t

	obj := r.waitFor(volsyncPath(r.ns, "replicationdestinations", rd), true, 30*time.Second)
	stated, err := kopiamover.DestinationOf(obj).Source()
	require.NoError(t, err, "kopiamover's restatement refuses the RD")
	assert.Equal(t, src, stated, "kopiamover's restatement of the RD's source agrees with the fork")

	files, log, err := r.restoreWith(rd)
	require.NoError(t, err, log)
	assert.Contains(t, log, "Looking for snapshots with identity: "+src+"\n", "the fork's mover looked up the source the oracle answered")
	assert.NoError(t, sameFiles(written, files), "the RD's Job restores what the RS's Job backed up, byte for byte")
}

// sameFiles is the check that a restore agrees with the backup: the same files, byte for byte.
func sameFiles(written, restored map[string]string) error {
	if maps.Equal(written, restored) {
		return nil
	}

	if len(restored) == 0 {
		return errors.New("the restore left the volume empty")
	}

	return fmt.Errorf("restored %d files, not the %d backed up (or other contents)", len(restored), len(written))
}

// errNoJob: the fork made no Job for an RD.
var errNoJob = errors.New("the fork made no Job")

// restoreWith does what the fork does for RD rd: the Job it makes, run by the Job runner, and
// the files that Job left in the RD's destination (its latestImage). It returns the files and
// the Job's log, or an error saying why nothing was restored: the fork made no Job (errNoJob,
// with the RD's condition), or the Job failed.
func (r *forkRun) restoreWith(rd string) (map[string]string, string, error) {
	t := r.t

	var job, refused string

	_, ok := eventually(60*time.Second, 200*time.Millisecond, func() bool {
		job = r.pendingMoverJob("ReplicationDestination", rd)
		refused = refusal(r.k.get(t, volsyncPath(r.ns, "replicationdestinations", rd)).Body)

		return job != "" || refused != ""
	})
	require.True(t, ok, "the fork neither made a Job for RD %s/%s nor said why", r.ns, rd)

	if job == "" {
		return nil, refused, fmt.Errorf("RD %s/%s: %w: %s", r.ns, rd, errNoJob, refused)
	}

	start := time.Now()
	res := r.runJob(r.runner, job)
	t.Logf("restore Job %s ran in %s (exit %d)", job, time.Since(start).Round(time.Millisecond), res.ExitCode)

	if res.ExitCode != 0 {
		return nil, res.Log, fmt.Errorf("RD %s/%s: Job %s exited %d", r.ns, rd, job, res.ExitCode)
	}

	status := r.waitStatus("replicationdestinations", rd, "latestImage", "lastManualSync")

	dest, err := r.runner.ClaimDir(r.ns, str(status, "latestImage", "name"))
	require.NoError(t, err)

	return readFiles(t, dest), res.Log, nil
}

// refusal is the message of an RD's Synchronizing condition when the fork found no mover for it
// (VolSync's ErrNoMoverFound, "a replication method must be specified": the fork's Kopia builder
// returned an error), else "".
func refusal(rd map[string]any) string {
	conds, _ := nested(rd, "status", "conditions").([]any)
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Synchronizing" && m["status"] == "False" && strings.HasPrefix(str(m, "message"), "a replication method must be specified") {
			return str(m, "message")
		}
	}

	return ""
}

// controllerLogged reports whether the fork's controller logged a line about RD rd of r.ns
// (zap's JSON fields destination and namespace, as builder.go's FromDestination logs a refusal)
// containing what.
func (r *forkRun) controllerLogged(rd, what string) bool {
	b, err := os.ReadFile(r.controller.log)
	require.NoError(r.t, err)

	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, `"destination":"`+rd+`"`) && strings.Contains(line, `"namespace":"`+r.ns+`"`) && strings.Contains(line, what) {
			return true
		}
	}

	return false
}

// kopiaSpec is a Kopia mover spec as the policies write it (copyMethod Direct here), with
// repository Secret secret, mounting export x (none for a repository on S3).
func (r *forkRun) kopiaSpec(secret string, x forkExport) map[string]any {
	spec := map[string]any{
		"repository": secret, "copyMethod": "Direct",
		"moverSecurityContext": map[string]any{"runAsUser": moverUID, "runAsGroup": moverUID, "fsGroup": moverUID, "runAsNonRoot": true},
	}

	if x.server != "" {
		spec["moverVolumes"] = []any{map[string]any{"mountPath": "repository",
			"volumeSource": map[string]any{"nfs": map[string]any{"server": x.server, "path": x.path}}}}
	}

	return spec
}

// secretFrom creates Secret name in r.ns with the data of x's Secret in volsync-system (what the
// policies' clone does; the test's own RS and RD use it), its KOPIA_REPOSITORY replaced by
// x.repository when set.
func (r *forkRun) secretFrom(name string, x forkExport) {
	res := r.k.get(r.t, "/api/v1/namespaces/volsync-system/secrets/"+x.secret)
	require.Equal(r.t, http.StatusOK, res.Code, res.Raw)

	data, _ := res.Body["data"].(map[string]any)
	if x.repository != "" {
		data["KOPIA_REPOSITORY"] = base64.StdEncoding.EncodeToString([]byte(x.repository))
	}

	r.k.mustOK(r.t, http.MethodPost, "/api/v1/namespaces/"+r.ns+"/secrets", map[string]any{
		"metadata": map[string]any{"name": name}, "data": data,
	}, "")
}

// userRS creates the test's own ReplicationSource name for claim pvc (manual trigger), with the
// identity fields given (username, hostname, sourcePathOverride; empty: unset), writing to
// export x with a clone of x's Secret.
func (r *forkRun) userRS(name, pvc string, x forkExport, identity map[string]string) {
	r.secretFrom(name, x)

	kopia := r.kopiaSpec(name, x)
	for k, v := range identity {
		kopia[k] = v
	}

	r.k.mustOK(r.t, http.MethodPost, volsyncPath(r.ns, "replicationsources", ""), map[string]any{
		"apiVersion": "volsync.backube/v1alpha1", "kind": "ReplicationSource",
		"metadata": map[string]any{"name": name, "namespace": r.ns},
		"spec":     map[string]any{"sourcePVC": pvc, "trigger": map[string]any{"manual": "once"}, "kopia": kopia},
	}, "")
}

// userRD creates the test's own ReplicationDestination name (manual trigger, copyMethod Direct)
// with repository Secret secret on export x and the identity fields given.
func (r *forkRun) userRD(name, secret string, x forkExport, identity map[string]any) map[string]any {
	kopia := r.kopiaSpec(secret, x)
	kopia["capacity"], kopia["accessModes"] = "1Gi", []string{"ReadWriteOnce"}

	for k, v := range identity {
		kopia[k] = v
	}

	return r.k.mustOK(r.t, http.MethodPost, volsyncPath(r.ns, "replicationdestinations", ""), map[string]any{
		"apiVersion": "volsync.backube/v1alpha1", "kind": "ReplicationDestination",
		"metadata": map[string]any{"name": name, "namespace": r.ns},
		"spec":     map[string]any{"trigger": map[string]any{"manual": "once"}, "kopia": kopia},
	}, "").Body
}

// seed backs up files of its own with the fork's mover from an unlabelled claim: the test's RS
// name with the identity given, on export x; it returns the files.
func (r *forkRun) seed(name string, x forkExport, identity map[string]string) map[string]string {
	res := r.create("fork seed", r.ns, name, "")
	require.Equal(r.t, http.StatusCreated, res.Code, res.Raw)

	files := r.writeClaim(name, x.colour)
	r.userRS(name, name, x, identity)
	r.moverJob(r.runner, "ReplicationSource", name, "seed backup")
	r.waitStatus("replicationsources", name, "lastManualSync")

	return files
}

// namedSource: a source no identity setting gives (another user, a "<namespace>.cluster-a"
// host, another path), written by the fork's mover; PVC media naming it
// (backup-oracle.io/restore-source) is restored by the RD the policies generate, byte for byte.
func (r *forkRun) namedSource() {
	t := r.t
	src := namedSource(r.ns)
	user, rest, _ := strings.Cut(src, "@")
	host, path, _ := strings.Cut(rest, ":")

	written := r.seed("media-seed", r.layout.exports[0], map[string]string{"username": user, "hostname": host, "sourcePathOverride": path})
	looked := r.waitRestore(namedPVC, "?source="+url.QueryEscape(src))
	require.Equal(t, src, looked["source"])

	res := r.createAnnotated("fork restore-source", r.ns, namedPVC, "daily", map[string]string{restoreSourceAnnotation: src})
	require.Equal(t, http.StatusCreated, res.Code, res.Raw)
	require.Equal(t, r.rdName(namedPVC), str(res.Body, "spec", "dataSourceRef", "name"))
	r.restoresExactly(r.rdName(namedPVC), src, written)
}

// disagreement: an RS writes the policies' username and hostname for PVC elsewhere but another
// path than the oracle reads (/srv/elsewhere). The check that passes in backupAndRestore (the
// oracle answers restore for the PVC the mover backed up) must fail here, and the oracle answers
// unknown (a near miss), not fresh.
func (r *forkRun) disagreement() {
	t := r.t
	const pvc = "elsewhere"

	rs := kopiamover.PolicyReplicationSource(r.ns, pvc)
	r.seed(pvc, r.layout.exports[0], map[string]string{"username": rs.Username, "hostname": rs.Hostname, "sourcePathOverride": "/srv/elsewhere"})

	var looked map[string]any

	_, ok := eventually(forkRefresh+20*time.Second, 200*time.Millisecond, func() bool {
		looked = r.o.lookup(t, r.ns, pvc).Body
		return strings.Contains(fmt.Sprint(looked["nearMiss"]), "/srv/elsewhere")
	})
	require.True(t, ok, "the oracle never saw the backup of another path: %v", looked)

	err := r.agrees(pvc)
	require.Error(t, err, "the mover wrote another path than the oracle reads: the check must fail")
	t.Logf("detected: %v", err)
	assert.Equal(t, "unknown", looked["decision"], "not fresh either: a near miss")
}

// appLayout: the ${APP}/${APP}-dst layout in gate mode. The user's RS gitea (no identity
// fields: the fork derives gitea@<namespace>:/data) backs up the labelled PVC gitea with the
// fork's mover; the oracle answers restore with that source; the re-created PVC is stored with
// dataSourceRef to gitea-dst, and the user's RD gitea-dst (sourceIdentity.sourceName gitea)
// restores the files byte for byte.
func (r *forkRun) appLayout() {
	t := r.t
	const pvc = "gitea"

	x := r.layout.exports[0]

	res := r.create("fork app-layout fresh", r.ns, pvc, "daily")
	require.Equal(t, http.StatusCreated, res.Code, res.Raw)
	assert.Nil(t, nested(res.Body, "spec", "dataSourceRef"), "no backup yet: fresh")

	written := r.writeClaim(pvc, "")
	r.userRS(r.rsName(pvc), pvc, x, nil)
	src := r.backup(r.rsName(pvc), pvc, "")
	assert.Equal(t, giteaSource(r.ns), src, "the fork's RS gitea writes what kopiamover says")

	r.recreate(pvc, "daily", nil)
	r.secretFrom("gitea-volsync-secret", x)
	r.userRD(r.rdName(pvc), "gitea-volsync-secret", x, map[string]any{"sourceIdentity": map[string]any{"sourceName": pvc}})
	r.restoresExactly(r.rdName(pvc), src, written)
}

// oldCustomPathRDs: PVC pvc of the custom-path layout has a backup (backupAndRestore). The RD
// forms the policies no longer write must fail the restore check on the fork, as the issue found:
// the old RD (username and sourceIdentity, no hostname) is refused, no Job is made; the obvious
// fix (hostname added) makes a Job that looks under /data and restores nothing, exit 0.
func (r *forkRun) oldCustomPathRDs(pvc string) {
	t := r.t
	x := r.layout.exports[0]
	rs := kopiamover.PolicyReplicationSource(r.ns, pvc)
	identity := map[string]any{"sourceName": rs.Username, "sourcePathOverride": "/var/lib/postgresql"}

	old := r.userRD(pvc+"-old", "volsync-"+pvc, x, map[string]any{"username": rs.Username, "sourceIdentity": identity})
	_, err := kopiamover.DestinationOf(old).Source()
	require.ErrorIs(t, err, kopiamover.ErrRejected, "kopiamover's restatement (D1)")

	_, why, err := r.restoreWith(pvc + "-old")
	require.ErrorIs(t, err, errNoJob, "the old custom-path RD must not restore")
	t.Logf("detected: %v", err)
	assert.True(t, r.controllerLogged(pvc+"-old", "missing 'hostname' (you provided 'username' but both are required"),
		"the fork's controller log says why (its RD condition says only: %s)", why)

	withHost := r.userRD(pvc+"-hostname", "volsync-"+pvc, x, map[string]any{"username": rs.Username, "hostname": rs.Hostname, "sourceIdentity": identity})
	stated, err := kopiamover.DestinationOf(withHost).Source()
	require.NoError(t, err)
	assert.Equal(t, rs.Username+"@"+rs.Hostname+":/data", stated, "kopiamover's restatement (D3): a stated hostname restores /data")

	files, log, err := r.restoreWith(pvc + "-hostname")
	require.NoError(t, err, log)
	assert.Contains(t, log, "Looking for snapshots with identity: "+stated+"\n", "the fork looks under /data")
	assert.Contains(t, log, "=== No data will be restored ===", "the fork's own words")
	err = sameFiles(map[string]string{"any": "file"}, files)
	require.Error(t, err, "an RD stating hostname and sourcePathOverride restores nothing: the check must fail")
	t.Logf("detected: %v", err)
}

// blueGreen: PVC app has a backup in both colours, each written by the fork's mover under the
// identity the policies give app (a seed RS per colour on its export), blue's newer. The oracle
// answers restore from blue; the PVC created then gets restore-backend blue and an RD on blue's
// export whose Job restores blue's files byte for byte; once bound (and written to), its RS
// backs up to green (the own colour), after which the oracle answers restore from green with the
// same source.
func (r *forkRun) blueGreen() {
	t := r.t
	const pvc = "app"

	rs := kopiamover.PolicyReplicationSource(r.ns, pvc)
	identity := map[string]string{"username": rs.Username, "hostname": rs.Hostname}
	files := map[string]map[string]string{}

	for _, x := range r.layout.exports { // green, then blue: blue's snapshot is newer
		files[x.colour] = r.seed("seed-"+x.colour, x, identity)
	}

	looked := r.waitAnswer(pvc, "", "restore from blue (the newest snapshot)", func(a map[string]any) bool {
		return a["decision"] == "restore" && a["backend"] == "blue"
	})

	res := r.create("fork blue-green restore", r.ns, pvc, "hourly")
	require.Equal(t, http.StatusCreated, res.Code, res.Raw)
	assert.Equal(t, "blue", str(res.Body, "metadata", "annotations", "backup-oracle.io/restore-backend"))
	require.Equal(t, r.rdName(pvc), str(res.Body, "spec", "dataSourceRef", "name"))
	r.restoresExactly(r.rdName(pvc), str(looked, "source"), files["blue"])

	// No volume populator here (copyMethod Direct): the RD restored into a volume of its own, and
	// app's stays empty. The app writes data of its own before its volume is backed up.
	r.writeClaim(pvc, "green")
	r.markBound(pvc)
	r.waitFor(volsyncPath(r.ns, "replicationsources", r.rsName(pvc)), true, 30*time.Second)
	job := r.moverJob(r.runner, "ReplicationSource", r.rsName(pvc), "backup")
	assert.Contains(t, job.Log, "Creating snapshot for "+str(looked, "source")+"\n")

	last := r.waitAnswer(pvc, "", "restore from green (the RS backs up to the own colour)", func(a map[string]any) bool {
		return a["decision"] == "restore" && a["backend"] == "green"
	})
	assert.Equal(t, looked["source"], last["source"], "the same source in both colours")
}

// s3PrefixSlash: the fork's mover makes the prefix of an S3 KOPIA_REPOSITORY a folder
// (mover-kopia/entry.sh, connect_repository: "Added trailing slash to S3 prefix"), so a mover
// whose Secret says s3://volsync/kopia writes where the oracle reads with S3_PREFIX kopia/: the
// oracle answers restore for the PVC it backed up. (The oracle uses its prefix verbatim, as Kopia
// does: a backend.s3.prefix without the slash names another place than the movers write.)
func (r *forkRun) s3PrefixSlash() {
	t := r.t
	const pvc = "noslash"

	x := r.layout.exports[0]
	x.repository = "s3://volsync/" + strings.TrimSuffix(forkS3Prefix, "/")
	rs := kopiamover.PolicyReplicationSource(r.ns, pvc)

	res := r.create("fork seed", r.ns, pvc+"-seed", "")
	require.Equal(t, http.StatusCreated, res.Code, res.Raw)
	r.writeClaim(pvc+"-seed", "")
	r.userRS(pvc+"-seed", pvc+"-seed", x, map[string]string{"username": rs.Username, "hostname": rs.Hostname})

	job := r.moverJob(r.runner, "ReplicationSource", pvc+"-seed", "backup")
	assert.Contains(t, job.Log, "Added trailing slash to S3 prefix", "the fork's own words")
	assert.Equal(t, rs.Source(), str(r.waitRestore(pvc, ""), "source"))
}
