//go:build e2e

package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness"
	"github.com/backup-oracle/backup-oracle/integration/harness/kopiamover"
)

// TestCutover: a blue/green cutover, both colours at once (README, "Blue/green migration"). Two
// clusters, each a stack of its own (etcd, kube-apiserver, the newest Kyverno) with its oracle
// configured from the chart's rendering of its values and its policies: blue, the colour being
// left (chart testdata/values/blue-green-cutover-leaving.yaml), and green, the new one
// (blue-green.yaml). Two Kopia repositories written by the real kopia CLI: blue's holds the last
// scheduled backup of PVC db. For each policy set: blue's app uses db; the cutover is declared (the
// same values for both colours); blue runs the cutover Job's command as a process with the Job's
// arguments, environment and service account; green's oracle waits. Green's PVC is denied while
// the final backup is missing; the command sets the trigger; a stand-in for VolSync writes the
// snapshot with the kopia CLI and records it done; the command reports done; green's PVC, re-applied
// as a GitOps engine does, restores from exactly that snapshot, which holds a file written after
// the last scheduled backup. Between declaring and the restore, only the environment acts: the
// GitOps engine (scaling the app to zero, re-applying the PVC), Kubernetes' controllers and VolSync
// (stand-ins). Undoing the cutover (the values without it) returns both colours to their
// schedules. The ClusterPolicy set waits for the GitOps engine to scale the app; the CEL set
// lets the Job scale it (cutover.job.scaleWorkloads) and undo restore it.
func TestCutover(t *testing.T) {
	helm := harness.Tool(t, "helm")
	harness.Tool(t, "kopia")
	versions := kyvernoVersions(t)
	k := versions[len(versions)-1] // the newest; the scenarios do not depend on the version but for generate

	dir := t.TempDir()
	bin, err := harness.BuildOracle(dir)
	require.NoError(t, err)

	data := filepath.Join(dir, "data")
	require.NoError(t, os.MkdirAll(data, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(data, "db.sqlite"), []byte("written before the last scheduled backup"), 0o644))

	blue := harness.NewKopiaRepository(t, filepath.Join(dir, "blue"), kopiaPassword)
	for _, set := range policySets {
		blue.Snapshot(data, kopiamover.PolicySource(cutoverNamespace(set.engine), "db")) // the last scheduled backup
	}

	green := harness.NewKopiaRepository(t, filepath.Join(dir, "green"), kopiaPassword)
	green.Snapshot(data, kopiamover.PolicySource("elsewhere", "other")) // green holds backups of its own

	start := time.Now()
	blueC := startColour(t, "blue", helm, blueLeavingValues, k, bin, map[string]string{"blue": blue.Path})
	greenC := startColour(t, "green", helm, blueGreenValues, k, bin, map[string]string{"green": green.Path, "blue": blue.Path})
	blueC.runOracle(t, blueC.render(t))
	greenC.runOracle(t, greenC.render(t))
	t.Logf("two clusters with Kyverno %s and their oracles in %s", k.version, time.Since(start).Round(time.Second))

	for _, set := range policySets {
		t.Run(set.engine, func(t *testing.T) {
			x := &cutoverRun{t: t, k: k, bin: bin, blue: blueC, green: greenC, cli: blue, data: data, engine: set.engine,
				ns: cutoverNamespace(set.engine), scale: set.engine == "cel"}
			start := time.Now()
			x.scenario()
			t.Logf("%s: cutover scenario in %s", set.engine, time.Since(start).Round(time.Second))
		})
	}
}

func cutoverNamespace(engine string) string { return "shop-" + engine }

// cutoverRun is one policy set's cutover.
type cutoverRun struct {
	t           *testing.T
	k           kyvernoUnderTest
	bin         string
	blue, green *colour
	cli         *harness.KopiaCLI // blue's repository
	data        string            // the volume the stand-in mover backs up
	engine, ns  string
	scale       bool // the Job scales the app (cutover.job.scaleWorkloads) instead of the GitOps engine
	at          time.Time
}

// values are the --set arguments of this set, with the cutover when declared.
func (x *cutoverRun) values(declared bool) []string {
	args := []string{"--set", "policies.engine=" + x.engine, "--set", "cutover.job.scaleWorkloads=" + map[bool]string{true: "true", false: "false"}[x.scale]}
	if declared {
		args = append(args, "--set", "cutover.at="+x.at.Format(time.RFC3339), "--set", "cutover.from=blue")
	}

	return args
}

func (x *cutoverRun) run(c *colour) *run {
	return &run{t: x.t, maxCalls: x.k.sets[x.engine].maxCalls, k: c.s.kube, o: c.o, set: x.k.version + "/cutover-" + c.name + "/" + x.engine,
		engine: x.engine, ns: x.ns, results: &measurements{}}
}

func (x *cutoverRun) scenario() {
	t := x.t
	blueRun, greenRun := x.run(x.blue), x.run(x.green)

	for _, c := range []*colour{x.blue, x.green} {
		c.s.kube.mustOK(t, http.MethodPost, "/api/v1/namespaces", map[string]any{"metadata": map[string]any{"name": x.ns}}, "")
		installLayout(t, c.s.kube, c.render(t, x.values(false)...), x.engine)
	}

	rsPath := volsyncPath(x.ns, "replicationsources", "db-backup")
	schedule := map[string]any{"schedule": schedule(x.ns, "db", "hourly")}

	// Blue before the cutover: the app's PVC restored from its last scheduled backup and backed up
	// on its schedule; the app writes after that backup.
	res := blueRun.create("cutover: blue's app", x.ns, "db", "hourly")
	require.Equal(t, http.StatusCreated, res.Code, res.Raw)
	blueRun.markBound("db")
	rs := blueRun.waitFor(rsPath, true, 30*time.Second)
	require.Equal(t, schedule, nested(rs, "spec", "trigger"), "blue's RS, as generated")
	x.app()

	late := "late-" + x.engine + ".txt"
	require.NoError(t, os.WriteFile(filepath.Join(x.data, late), []byte("written on blue after its last scheduled backup"), 0o644))

	scheduled := x.snapshots(kopiamover.PolicySource(x.ns, "db"))
	require.Len(t, scheduled, 1, "the last scheduled backup")

	// Declared: the same cutover in both colours' values, the instant a moment ahead.
	x.at = time.Now().UTC().Truncate(time.Second).Add(2 * time.Second)
	trigger := "cutover-" + x.at.Format(time.RFC3339)
	greenEnv := x.green.runOracle(t, x.green.render(t, x.values(true)...))
	require.Equal(t, x.at.Format(time.RFC3339), greenEnv["CUTOVER_AT"], "the new colour's oracle waits")

	blueDocs := x.blue.render(t, x.values(true)...)
	assert.NotContains(t, deploymentEnv(t, blueDocs), "CUTOVER_AT", "the colour being left's oracle answers as always")

	job := x.blue.cutoverJob(t, blueDocs)
	require.Equal(t, []string{"cutover", "run"}, job.args[:2], job.name)
	assert.Contains(t, job.name, "-cutover-"+strings.ToLower(x.at.Format("20060102T150405Z"))+"-", "named after the instant")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	volsync := &volsyncStandIn{k: x.blue.s.kube, ns: x.ns, data: x.data, cli: x.cli}
	go volsync.run(ctx, t)

	p, term := job.start(t, x.blue, x.bin)
	x.waitLog(p, x.ns+"/db mounted: used by pod db-7f-x")
	assert.Empty(t, str(x.blue.s.kube.get(t, rsPath).Body, "spec", "trigger", "manual"), "a trigger set while the app still writes")

	if x.scale {
		x.waitLog(p, "scaled Deployment "+x.ns+"/db from 1 to 0 (undoing the cutover restores 1)")
	}

	// Green while the final backup is missing: denied, never restored from the older backup.
	res = greenRun.create("cutover: final backup missing", x.ns, "db", "hourly")
	require.Contains(t, []int{http.StatusBadRequest, http.StatusForbidden}, res.Code, res.Raw)
	assert.Contains(t, res.Message(), "waiting for the final backup of the cutover at "+x.at.Format(time.RFC3339)+" from backend blue")
	assert.False(t, x.green.s.kube.exists(t, pvcPath(x.ns, "db")))

	// The app stops: scaled to zero in Git (applied by the GitOps engine) or by the Job; the pod
	// goes (Kubernetes' controllers).
	if !x.scale {
		x.blue.s.kube.mustOK(t, http.MethodPatch, "/apis/apps/v1/namespaces/"+x.ns+"/deployments/db",
			map[string]any{"spec": map[string]any{"replicas": 0}}, "application/merge-patch+json")
	}

	go replicaSetStandIn(ctx, t, x.blue.s.kube, x.ns, "db", "db-7f-x")

	x.waitExit(p, 0, 60*time.Second)
	assert.Regexp(t, x.ns+`\s+db\s+done\s+db-backup\s+db-backup: final backup finished at `, x.log(p), "the table")

	msg, err := os.ReadFile(term)
	require.NoError(t, err)
	assert.Contains(t, string(msg), "trigger "+trigger+": 1 PVCs: 1 done, 0 waiting, 0 mounted, 0 failed")

	taken, errs := volsync.results()
	require.Empty(t, errs)
	require.Len(t, taken, 1, "one final backup")
	final := taken[0]
	assert.Equal(t, trigger, final.trigger)
	assert.False(t, final.start.Before(x.at), "the final backup started at %s, before the cutover", final.start)

	rs = x.blue.s.kube.get(t, rsPath).Body
	assert.Equal(t, map[string]any{"schedule": schedule["schedule"], "manual": trigger}, nested(rs, "spec", "trigger"))
	assert.Equal(t, strings.ToUpper(x.at.Format("20060102t150405z")), str(rs, "metadata", "labels", "backup-oracle.io/cutover"))

	x.greenRestores(greenRun, final, scheduled[0], late)
	x.generateLeavesTheTrigger(blueRun, rsPath, trigger)
	x.undo(blueRun, greenRun, rsPath, schedule)

	// Decommissioned: blue's PVC of this set goes, so that the next set's cutover on the same
	// cluster covers its own PVC only (the Job lists every backup-labelled PVC of the cluster).
	// No kube-controller-manager: its pvc-protection controller's part (no pod uses it) done here.
	blueRun.k.mustOK(t, http.MethodDelete, pvcPath(x.ns, "db"), nil, "")
	blueRun.k.mustOK(t, http.MethodPatch, pvcPath(x.ns, "db"), map[string]any{"metadata": map[string]any{"finalizers": nil}},
		"application/merge-patch+json")
}

// app is blue's app using db: Deployment db (1 replica), its ReplicaSet and its pod, as
// kube-controller-manager would have made them (it does not run here).
func (x *cutoverRun) app() {
	t := x.t
	k := x.blue.s.kube
	ns := x.ns
	template := map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": "db"}},
		"spec": map[string]any{"containers": []any{map[string]any{"name": "db", "image": "example.invalid/db"}}}}
	spec := map[string]any{"replicas": 1, "selector": map[string]any{"matchLabels": map[string]any{"app": "db"}}, "template": template}
	owner := func(kind, name, uid string) []any {
		return []any{map[string]any{"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": uid, "controller": true}}
	}

	k.mustOK(t, http.MethodPost, "/api/v1/namespaces/"+ns+"/serviceaccounts", map[string]any{"metadata": map[string]any{"name": "default"}}, "")
	d := k.mustOK(t, http.MethodPost, "/apis/apps/v1/namespaces/"+ns+"/deployments", map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment", "metadata": map[string]any{"name": "db"}, "spec": spec}, "")
	rs := k.mustOK(t, http.MethodPost, "/apis/apps/v1/namespaces/"+ns+"/replicasets", map[string]any{
		"apiVersion": "apps/v1", "kind": "ReplicaSet",
		"metadata": map[string]any{"name": "db-7f", "ownerReferences": owner("Deployment", "db", str(d.Body, "metadata", "uid"))}, "spec": spec}, "")

	podSpec := map[string]any{"containers": []any{map[string]any{"name": "db", "image": "example.invalid/db"}},
		"volumes": []any{map[string]any{"name": "data", "persistentVolumeClaim": map[string]any{"claimName": "db"}}}}
	k.mustOK(t, http.MethodPost, "/api/v1/namespaces/"+ns+"/pods", map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": "db-7f-x", "labels": map[string]any{"app": "db"}, "ownerReferences": owner("ReplicaSet", "db-7f", str(rs.Body, "metadata", "uid"))},
		"spec":     podSpec}, "")
}

// greenRestores: green's PVC, re-applied until admitted as a GitOps engine does, restores from
// blue's final backup (the oracle names it; the RD restores blue's newest snapshot of the
// source, which is it), whose data holds the file written after the last scheduled backup.
func (x *cutoverRun) greenRestores(r *run, final finalBackup, scheduled, late string) {
	t := x.t

	var res apiResult

	took, ok := eventually(60*time.Second, 500*time.Millisecond, func() bool {
		res = r.create("cutover: the GitOps engine re-applies", x.ns, "db", "hourly")
		if res.Code != http.StatusCreated {
			assert.Contains(t, res.Message(), "waiting for the final backup of the cutover", "denied for another reason")
		}

		return res.Code == http.StatusCreated
	})
	require.True(t, ok, "green's PVC still denied: %s", res.Raw)
	t.Logf("green's PVC admitted %s after the Job reported done", took.Round(time.Millisecond))

	assert.Equal(t, "blue", str(res.Body, "metadata", "annotations", "backup-oracle.io/restore-backend"))
	assert.Equal(t, "db-backup", str(res.Body, "spec", "dataSourceRef", "name"))

	looked := r.o.lookup(t, x.ns, "db")
	require.Equal(t, "restore", looked.Body["decision"], "%v", looked.Body)
	assert.Equal(t, "blue", looked.Body["backend"])
	assert.Equal(t, final.source, looked.Body["source"])
	assert.Equal(t, final.id, str(looked.Body, "latestSnapshot", "id"), "exactly the final backup")
	assert.NotEqual(t, scheduled, final.id)
	assert.Equal(t, final.id, x.snapshots(final.source)[1], "the RD restores blue's newest snapshot of the source: the final one")

	rd := r.waitFor(volsyncPath(x.ns, "replicationdestinations", "db-backup"), true, 30*time.Second)
	restores, err := kopiamover.DestinationOf(rd).Source()
	require.NoError(t, err)
	assert.Equal(t, final.source, restores, "the RD's source (the Kopia mover's rules)")
	assert.Equal(t, "volsync-db-restore", str(rd, "spec", "kopia", "repository"), "the RD restores from blue's repository")
	// The Kopia mover restores the newest snapshot of the source unless previous or restoreAsOf
	// says otherwise (the fork's api/v1alpha1/replicationdestination_types.go, v0.17.11,
	// ReplicationDestinationKopiaSpec): neither may point it at an older one.
	assert.Nil(t, nested(rd, "spec", "kopia", "previous"), "the RD skips snapshots")
	assert.Nil(t, nested(rd, "spec", "kopia", "restoreAsOf"), "the RD restores as of an instant")

	for id, want := range map[string]bool{final.id: true, scheduled: false} {
		dir := filepath.Join(t.TempDir(), id)
		x.cli.Run("snapshot", "restore", id, dir)
		_, err := os.Stat(filepath.Join(dir, late))
		assert.Equal(t, want, err == nil, "snapshot %s holds %s: %v", id, late, err)
	}
}

// generateLeavesTheTrigger: an update of blue's PVC runs the generate rules again (they match
// UPDATE); the ClusterPolicy set's synchronize: false leaves the existing RS as it is, trigger
// included. Kyverno 1.19's GeneratingPolicy rewrites its downstream on every trigger event
// (pkg/cel/libs/context.go, GenerateResources: an existing resource it manages is updated): the
// manual trigger and the marks go, the schedule runs the RS again, and undo has nothing left to
// restore there. The RS is read once Kyverno has processed the update's UpdateRequest of the
// policy generating it.
func (x *cutoverRun) generateLeavesTheTrigger(r *run, rsPath, trigger string) {
	t := x.t
	policy := map[string]string{"clusterpolicy": "backup-oracle-generate", "cel": "backup-oracle-generate-replicationsource"}[x.engine]

	took := r.k.generated(t, policy, x.ns, "db", func() {
		r.k.mustOK(t, http.MethodPatch, pvcPath(x.ns, "db"), map[string]any{"metadata": map[string]any{"annotations": map[string]any{"e2e/touched": "yes"}}},
			"application/merge-patch+json")
	})
	t.Logf("%s processed the PVC's update in %s", policy, took.Round(time.Millisecond))

	rs := r.k.get(t, rsPath).Body
	if x.k.sets[x.engine].generateRewritesRS {
		assert.Empty(t, str(rs, "spec", "trigger", "manual"), "Kyverno %s's %s set rewrites the RS", x.k.version, x.engine)
		return
	}

	assert.Equal(t, trigger, str(rs, "spec", "trigger", "manual"), "the generate rule changed the cutover's trigger")
	assert.NotEmpty(t, str(rs, "metadata", "labels", "backup-oracle.io/cutover"))
}

// undo: the values without the cutover. Blue's undo Job restores the RS's trigger (its schedule
// runs it again) and, when the Job scaled the app, its replicas; green's oracle decides as always.
func (x *cutoverRun) undo(blueRun, greenRun *run, rsPath string, schedule map[string]any) {
	t := x.t

	job := x.blue.cutoverJob(t, x.blue.render(t, x.values(false)...))
	require.Equal(t, []string{"cutover", "undo"}, job.args[:2], job.name)

	p, _ := job.start(t, x.blue, x.bin)
	x.waitExit(p, 0, 30*time.Second)
	t.Logf("undo:\n%s", x.log(p))

	rs := blueRun.k.get(t, rsPath).Body
	assert.Equal(t, schedule, nested(rs, "spec", "trigger"), "blue's RS back on its schedule")
	assert.Nil(t, nested(rs, "metadata", "labels", "backup-oracle.io/cutover"))
	assert.Nil(t, nested(rs, "metadata", "annotations", "backup-oracle.io/cutover-trigger"))

	d := blueRun.k.get(t, "/apis/apps/v1/namespaces/"+x.ns+"/deployments/db").Body
	assert.Nil(t, nested(d, "metadata", "labels", "backup-oracle.io/cutover"))

	if x.scale {
		assert.InDelta(t, 1, nested(d, "spec", "replicas"), 0, "the Job scaled the app down: undo scales it back")
		assert.Contains(t, x.log(p), "Deployment "+x.ns+"/db: scaled back from 0 to 1")
	} else {
		assert.InDelta(t, 0, nested(d, "spec", "replicas"), 0, "Git owns the replicas")
	}

	env := x.green.runOracle(t, x.green.render(t, x.values(false)...))
	assert.NotContains(t, env, "CUTOVER_AT")

	looked := greenRun.o.lookup(t, x.ns, "db")
	assert.Equal(t, "restore", looked.Body["decision"], "%v", looked.Body)

	greenRun.markBound("db")
	grs := greenRun.waitFor(rsPath, true, 30*time.Second)
	assert.Equal(t, schedule, nested(grs, "spec", "trigger"), "green's RS on its schedule")
}

// snapshots are the IDs of source's snapshots in blue's repository, oldest first.
func (x *cutoverRun) snapshots(source string) []string {
	snaps, err := kopiaSnapshots(x.cli.Run("snapshot", "list", source, "--json"))
	require.NoError(x.t, err)

	ids := make([]string, 0, len(snaps))
	for _, s := range snaps {
		ids = append(ids, s.ID)
	}

	return ids
}

func (x *cutoverRun) log(p *proc) string {
	b, err := os.ReadFile(p.log)
	require.NoError(x.t, err)

	return string(b)
}

// waitLog waits until the process's output holds line.
func (x *cutoverRun) waitLog(p *proc, line string) {
	x.t.Helper()

	took, ok := eventually(45*time.Second, 100*time.Millisecond, func() bool { return strings.Contains(x.log(p), line) })
	require.True(x.t, ok, "%s does not say %q:\n%s", p.name, line, p.tail(30))
	x.t.Logf("%s said %q after %s", p.name, line, took.Round(time.Millisecond))
}

// waitExit waits until the process exits and requires code.
func (x *cutoverRun) waitExit(p *proc, code int, within time.Duration) {
	x.t.Helper()

	select {
	case <-p.done:
	case <-time.After(within):
		x.t.Fatalf("%s still runs after %s:\n%s", p.name, within, p.tail(30))
	}

	require.Equal(x.t, code, p.cmd.ProcessState.ExitCode(), "%s:\n%s", p.name, p.tail(40))
}
