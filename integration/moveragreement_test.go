package integration

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness"
	"github.com/backup-oracle/backup-oracle/integration/harness/jobrunner"
	"github.com/backup-oracle/backup-oracle/repo"
	"github.com/backup-oracle/backup-oracle/repo/restic"
)

// TestResticMoverAgreesWithTheOracle: for snapshots of every shape the restic mover's selection
// rule tells apart, written into real repositories on the S3 server, the oracle's restic reader
// answers restore exactly when VolSync v0.16.0's own mover-restic/entry.sh, run by the Job runner
// in a Job shaped as VolSync's controller makes it, restores something. Each snapshot is written
// by the restic CLI run by the Job runner too, so its path is a real absolute path such as /data.
func TestResticMoverAgreesWithTheOracle(t *testing.T) {
	if err := jobrunner.Available(); err != nil {
		harness.Require(t, err.Error())
	}

	volsync := filepath.Dir(harness.Tool(t, "volsync"))
	resticBin := harness.Tool(t, "restic")
	s3 := harness.StartS3(t)
	bucket := s3.CreateBucket("volsync")

	const password = "agreement"

	cases := []struct {
		name  string
		host  string
		paths []string // where the backed-up volume is mounted; several: one volume each
		tags  []string
		// restores is what the mover does, stated from its script (not from the reader): the
		// rows of `restic snapshots` holding "/data" are its candidates.
		restores bool
	}{
		{"the mover's own", "volsync", []string{"/data"}, nil, true},
		{"another host, /data", "laptop", []string{"/data"}, nil, true},
		{"another path", "volsync", []string{"/srv/app"}, nil, false},
		{"a path containing /data", "laptop", []string{"/srv/data"}, nil, true},
		{"a tag containing /data", "laptop", []string{"/srv/app"}, []string{"first", "ns/database"}, true},
		{"a second path with /data, misread", "laptop", []string{"/srv/app", "/srv/data"}, nil, false},
	}

	api := &fakeAPI{objects: map[string]any{}, patches: map[string]int{}}
	dir := t.TempDir()
	runner := &jobrunner.Runner{API: api, Claims: filepath.Join(dir, "claims"), Work: filepath.Join(dir, "pods"),
		Image: jobrunner.Image{
			Files: map[string]string{"/mover-restic": filepath.Join(volsync, "mover-restic"), "/usr/local/bin/restic": resticBin},
			Env:   []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		}}

	for i, c := range cases {
		pvc := fmt.Sprintf("case-%d", i)
		api.secret("repo-"+pvc, map[string]string{"RESTIC_REPOSITORY": "s3:" + s3.URL + "/" + bucket + "/agree/" + pvc,
			"RESTIC_PASSWORD": password, "AWS_ACCESS_KEY_ID": s3.AccessKey, "AWS_SECRET_ACCESS_KEY": s3.SecretKey})

		seed := seedJob("seed-"+pvc, pvc, c.host, true, c.paths, c.tags)
		api.job(seed.name, seed.job)

		for _, claim := range seed.claims {
			api.claim(claim)
			d, err := runner.ClaimDir("agree", claim)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(d, "file"), []byte(c.name+"\n"), 0o644)) //nolint:gosec // test data
		}

		res, err := runner.Run(context.Background(), "agree", seed.name)
		require.NoError(t, err)
		require.Equal(t, 0, res.ExitCode, "seed %s:\n%s", c.name, res.Log)
	}

	r, err := restic.New(restic.Options{S3: restic.S3Options{S3Config: repo.S3Config{Endpoint: s3.Endpoint, Bucket: bucket,
		AccessKey: repo.Secret(s3.AccessKey), SecretKey: repo.Secret(s3.SecretKey)}}, Prefix: "", Password: password, VerifyWait: time.Minute})
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close(context.Background()) })

	// Point in time: the mover's snapshot, then a newer one it skips (another path).
	api.secret("repo-pit", map[string]string{"RESTIC_REPOSITORY": "s3:" + s3.URL + "/" + bucket + "/agree/pit",
		"RESTIC_PASSWORD": password, "AWS_ACCESS_KEY_ID": s3.AccessKey, "AWS_SECRET_ACCESS_KEY": s3.SecretKey})

	for _, sd := range []seed{seedJob("pit-0", "pit", "volsync", true, []string{"/data"}, nil), seedJob("pit-1", "pit", "laptop", false, []string{"/srv/app"}, nil)} {
		api.job(sd.name, sd.job)

		for _, claim := range sd.claims {
			api.claim(claim)
			d, err := runner.ClaimDir("agree", claim)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(d, "file"), []byte(sd.name+"\n"), 0o644)) //nolint:gosec // test data
		}

		res, err := runner.Run(context.Background(), "agree", sd.name)
		require.NoError(t, err)
		require.Equal(t, 0, res.ExitCode, "seed %s:\n%s", sd.name, res.Log)
	}

	idx, err := r.Load(context.Background())
	require.NoError(t, err)

	t.Run("point in time", func(t *testing.T) { pointInTime(t, idx, api, runner) })

	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pvc := fmt.Sprintf("case-%d", i)

			f, err := idx.Find(context.Background(), repo.PVC{Namespace: "agree", Name: pvc})
			answer := repo.Decide(repo.PVC{Namespace: "agree", Name: pvc}, "restic", f, time.Now(), err).Decision

			name := "restore-" + pvc
			api.claim(name)
			api.job(name, moverJob(name, "restore", "repo-"+pvc, name, "", "0"))

			res, err := runner.Run(context.Background(), "agree", name)
			require.NoError(t, err)

			restored := res.ExitCode == 0 && strings.Contains(res.Log, "Selected restic snapshot with id")
			assert.Equal(t, c.restores, restored, "the mover (stated from its script) on %s:\n%s", c.name, res.Log)

			want := map[bool]repo.Decision{true: repo.Restore, false: repo.Unknown}[c.restores]
			assert.Equal(t, want, answer, "the oracle must answer restore exactly when the mover restores: %v", err)
			t.Logf("%s: mover exit %d, restored %v; oracle %s", c.name, res.ExitCode, restored, answer)
		})
	}
}

// pointInTime: on repository pit (the mover's snapshot, then a newer foreign one), the mover
// with RESTORE_AS_OF / SELECT_PREVIOUS restores the snapshot the oracle selects, or nothing
// where the oracle answers unknown.
func pointInTime(t *testing.T, idx repo.Index, api *fakeAPI, runner *jobrunner.Runner) {
	p := repo.PVC{Namespace: "agree", Name: "pit"}
	f, err := idx.Find(context.Background(), p)
	require.NoError(t, err)
	require.Len(t, f.Snapshots, 1, "the foreign snapshot is not counted")

	mine := f.Snapshots[0].StartTime

	for i, c := range []struct {
		name     string
		asOf     string
		previous string
		pit      repo.PointInTime
	}{
		{"latest: the mover's, not the newer foreign one", "", "0", repo.PointInTime{}},
		{"previous 1: nothing (the foreign one does not count)", "", "1", repo.PointInTime{Previous: 1}},
		{"asOf before the mover's snapshot: nothing", mine.Add(-time.Minute).UTC().Format(time.RFC3339), "0", repo.PointInTime{AsOf: mine.Add(-time.Minute)}},
		{"asOf after it: the mover's", mine.Add(time.Minute).UTC().Format(time.RFC3339), "0", repo.PointInTime{AsOf: mine.Add(time.Minute)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			name := fmt.Sprintf("pit-%d", i)
			api.claim(name)

			api.job(name, moverJob(name, "restore", "repo-pit", name, c.asOf, c.previous))

			res, err := runner.Run(context.Background(), "agree", name)
			require.NoError(t, err)
			require.Equal(t, 0, res.ExitCode, res.Log)

			a := repo.DecideAt(p, "restic", f, c.pit, time.Now(), nil)
			if a.Decision == repo.Restore {
				assert.Contains(t, res.Log, "Selected restic snapshot with id: "+a.Selected.ID[:8], "the mover restores what the oracle selected")
			} else {
				assert.Contains(t, res.Log, "No eligible snapshots found", "the oracle answers %s: the mover must restore nothing", a.Decision)
			}
		})
	}
}

type seed struct {
	name   string
	job    map[string]any
	claims []string
}

// seedJob is a Job running the restic CLI on pvc's repository: init (if initialise), then backup
// of each path (a claim mounted there) with the host and tags given.
func seedJob(name, pvc, host string, initialise bool, paths, tags []string) seed {
	s := seed{name: name}
	cmd := "restic backup --host " + host

	if initialise {
		cmd = "restic init && " + cmd
	}

	for _, tag := range tags {
		cmd += " --tag " + tag
	}

	var mounts, volumes []any

	for i, p := range paths {
		claim := fmt.Sprintf("%s-%d", s.name, i)
		s.claims = append(s.claims, claim)
		cmd += " " + p
		mounts = append(mounts, map[string]any{"name": claim, "mountPath": p})
		volumes = append(volumes, map[string]any{"name": claim, "persistentVolumeClaim": map[string]any{"claimName": claim}})
	}

	mounts = append(mounts, map[string]any{"name": "tmp", "mountPath": "/tmp"})
	volumes = append(volumes, map[string]any{"name": "tmp", "emptyDir": map[string]any{}})

	s.job = map[string]any{"metadata": map[string]any{"name": s.name, "namespace": "agree"}, "spec": map[string]any{
		"template": map[string]any{"spec": map[string]any{
			"containers": []any{map[string]any{"name": "seed", "command": []string{"/bin/sh", "-c", cmd},
				"env": append(repoEnv("repo-"+pvc), map[string]any{"name": "RESTIC_CACHE_DIR", "value": "/tmp/cache"}), "volumeMounts": mounts}},
			"volumes": volumes}}}}

	return s
}

// moverJob is the Job VolSync v0.16.0's restic mover makes for a ReplicationDestination
// (internal/controller/mover/restic/mover.go, ensureJob), restated: entry.sh with the action,
// its environment (the repository Secret's keys, required or optional; restoreAsOf and previous
// as RESTORE_AS_OF and SELECT_PREVIOUS), the data claim at /data,
// a cache claim at /cache, an emptyDir at /tmp, user 568 with fsGroup 568, read-only root.
func moverJob(name, action, secret, dataClaim, asOf, previous string) map[string]any {
	env := append([]any{
		map[string]any{"name": "FORGET_OPTIONS", "value": "--keep-last 1"}, map[string]any{"name": "DATA_DIR", "value": "/data"},
		map[string]any{"name": "RESTIC_CACHE_DIR", "value": "/cache"}, map[string]any{"name": "RESTORE_AS_OF", "value": asOf},
		map[string]any{"name": "SELECT_PREVIOUS", "value": previous}, map[string]any{"name": "RESTORE_OPTIONS", "value": ""},
	}, repoEnv(secret)...)
	env = append(env, map[string]any{"name": "PRIVILEGED_MOVER", "value": "0"})

	return map[string]any{"metadata": map[string]any{"name": name, "namespace": "agree"}, "spec": map[string]any{
		"backoffLimit": 8, "parallelism": 1, "template": map[string]any{"spec": map[string]any{
			"securityContext": map[string]any{"runAsUser": 568, "runAsGroup": 568, "fsGroup": 568, "runAsNonRoot": true},
			"containers": []any{map[string]any{"name": "restic", "command": []string{"/mover-restic/entry.sh"}, "args": []string{action},
				"env": env, "securityContext": map[string]any{"readOnlyRootFilesystem": true},
				"volumeMounts": []any{map[string]any{"name": "data", "mountPath": "/data"}, map[string]any{"name": "cache", "mountPath": "/cache"},
					map[string]any{"name": "tempdir", "mountPath": "/tmp"}}}},
			"volumes": []any{
				map[string]any{"name": "data", "persistentVolumeClaim": map[string]any{"claimName": dataClaim}},
				map[string]any{"name": "cache", "persistentVolumeClaim": map[string]any{"claimName": dataClaim + "-cache"}},
				map[string]any{"name": "tempdir", "emptyDir": map[string]any{"medium": "Memory"}}}}}}}
}

// repoEnv is the mover's environment from the repository Secret: RESTIC_REPOSITORY and
// RESTIC_PASSWORD required, the S3 credentials optional.
func repoEnv(secret string) []any {
	ref := func(key string, optional bool) any {
		return map[string]any{"name": key, "valueFrom": map[string]any{"secretKeyRef": map[string]any{"name": secret, "key": key, "optional": optional}}}
	}

	return []any{ref("RESTIC_REPOSITORY", false), ref("RESTIC_PASSWORD", false), ref("AWS_ACCESS_KEY_ID", true), ref("AWS_SECRET_ACCESS_KEY", true)}
}

// fakeAPI serves the runner the Jobs, Secrets and claims of namespace agree, and counts status
// patches.
type fakeAPI struct {
	mu      sync.Mutex
	objects map[string]any
	patches map[string]int
}

func (f *fakeAPI) secret(name string, data map[string]string) {
	enc := map[string]string{}
	for k, v := range data {
		enc[k] = base64.StdEncoding.EncodeToString([]byte(v))
	}

	f.put("/api/v1/namespaces/agree/secrets/"+name, map[string]any{"data": enc})
}

func (f *fakeAPI) claim(name string) {
	f.put("/api/v1/namespaces/agree/persistentvolumeclaims/"+name, map[string]any{})
	f.put("/api/v1/namespaces/agree/persistentvolumeclaims/"+name+"-cache", map[string]any{})
}

func (f *fakeAPI) job(name string, j map[string]any) {
	f.put("/apis/batch/v1/namespaces/agree/jobs/"+name, j)
}

func (f *fakeAPI) put(path string, obj any) {
	f.mu.Lock()
	defer f.mu.Unlock()

	f.objects[path] = obj
}

func (f *fakeAPI) Get(_ context.Context, path string, out any) error {
	f.mu.Lock()
	obj, ok := f.objects[path]
	f.mu.Unlock()

	if !ok {
		return fmt.Errorf("GET %s: %w", path, jobrunner.ErrNotFound)
	}

	b, err := json.Marshal(obj)
	if err != nil {
		return err
	}

	return json.Unmarshal(b, out)
}

func (f *fakeAPI) Patch(_ context.Context, path string, _ any) error {
	f.mu.Lock()
	defer f.mu.Unlock()

	if !strings.HasSuffix(path, "/status") {
		return errors.New("only status patches are expected")
	}

	f.patches[path]++

	return nil
}
