package jobrunner_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness"
	"github.com/backup-oracle/backup-oracle/integration/harness/jobrunner"
)

// fakeAPI serves objects (JSON by path) and records patches.
type fakeAPI struct {
	mu      sync.Mutex
	objects map[string]string
	patches map[string][]map[string]any
}

func (f *fakeAPI) Get(_ context.Context, path string, out any) error {
	f.mu.Lock()
	defer f.mu.Unlock()

	s, ok := f.objects[path]
	if !ok {
		return fmt.Errorf("GET %s: %w", path, jobrunner.ErrNotFound)
	}

	return json.Unmarshal([]byte(s), out)
}

func (f *fakeAPI) Patch(_ context.Context, path string, patch any) error {
	b, err := json.Marshal(patch)
	if err != nil {
		return err
	}

	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}

	f.mu.Lock()
	defer f.mu.Unlock()

	f.patches[path] = append(f.patches[path], m)

	return nil
}

const ns = "apps"

// jobJSON is a Job in ns with one container running script with sh, the volumes data (a
// claim), data/sub (an emptyDir, listed first: it must still be mounted after its parent), the
// Secret volume creds at /creds, and env from Secret repo.
func jobJSON(name, script, securityContext, extraEnv string) string {
	return fmt.Sprintf(`{"metadata": {"name": %q, "namespace": %q, "uid": "u-1"},
	  "spec": {"backoffLimit": 2, "parallelism": 1, "template": {"spec": {
	    "securityContext": {"runAsUser": 568, "runAsGroup": 568, "fsGroup": 568, "runAsNonRoot": true},
	    "containers": [{"name": "mover", "command": ["/bin/sh", "-c"], "args": [%q],
	      "securityContext": %s,
	      "env": [{"name": "PLAIN", "value": "plain"}, {"name": "REF", "value": "<$(PLAIN)>$$(PLAIN)"},
	        {"name": "REPO", "valueFrom": {"secretKeyRef": {"name": "repo", "key": "RESTIC_REPOSITORY"}}},
	        {"name": "MAYBE", "valueFrom": {"secretKeyRef": {"name": "repo", "key": "ABSENT", "optional": true}}},
	        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}%s],
	      "envFrom": [{"prefix": "X_", "secretRef": {"name": "repo"}}],
	      "volumeMounts": [{"name": "sub", "mountPath": "/data/sub"}, {"name": "data", "mountPath": "/data"},
	        {"name": "creds", "mountPath": "/creds"}, {"name": "tmp", "mountPath": "/tmp"}]}],
	    "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "app"}}, {"name": "sub", "emptyDir": {}},
	      {"name": "tmp", "emptyDir": {"medium": "Memory"}},
	      {"name": "creds", "secret": {"secretName": "repo", "items": [{"key": "RESTIC_PASSWORD", "path": "pw", "mode": 256}]}}]}}},
	  "status": {}}`, name, ns, script, securityContext, extraEnv)
}

func newRunner(t *testing.T, jobs map[string]string) (*jobrunner.Runner, *fakeAPI) {
	t.Helper()

	if err := jobrunner.Available(); err != nil {
		harness.Require(t, err.Error())
	}

	api := &fakeAPI{objects: map[string]string{
		"/api/v1/namespaces/" + ns + "/secrets/repo":               `{"data": {"RESTIC_REPOSITORY": "czM6cmVwbw==", "RESTIC_PASSWORD": "c2VjcmV0"}}`,
		"/api/v1/namespaces/" + ns + "/persistentvolumeclaims/app": `{}`,
	}, patches: map[string][]map[string]any{}}
	for name, j := range jobs {
		api.objects["/apis/batch/v1/namespaces/"+ns+"/jobs/"+name] = j
	}

	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o755)) //nolint:gosec // the runner's roots must be reachable by the Job's user

	return &jobrunner.Runner{API: api, Claims: filepath.Join(dir, "claims"), Work: filepath.Join(dir, "work"),
		Image: jobrunner.Image{Env: []string{"PATH=/usr/bin:/bin", "PLAIN=from-image"}}}, api
}

func TestRunLikeAKubelet(t *testing.T) {
	script := `set -e
echo "uid=$(id -u) gid=$(id -g) groups=$(id -G)"
echo "PLAIN=$PLAIN REF=$REF REPO=$REPO MAYBE=${MAYBE-unset} NS=$POD_NAMESPACE X=$X_RESTIC_PASSWORD HOME=$HOME PWD=$(pwd)"
echo "pw=$(cat /creds/pw) mode=$(stat -c %a /creds/pw)"
cat /data/in.txt
mountpoint -q /data/sub && echo "sub mounted"
echo restored > /data/out.txt
echo scratch > /tmp/scratch
if touch /rootfile 2>/dev/null; then echo "root writable"; else echo "root read-only"; fi`

	r, api := newRunner(t, map[string]string{"ok": jobJSON("ok", script, `{"readOnlyRootFilesystem": true}`, "")})

	claim, err := r.ClaimDir(ns, "app")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(claim, "in.txt"), []byte("written by the test\n"), 0o644)) //nolint:gosec // test data

	res, err := r.Run(context.Background(), ns, "ok")
	require.NoError(t, err)
	require.Equal(t, 0, res.ExitCode, res.Log)

	assert.Contains(t, res.Log, "uid=568 gid=568 groups=568\n", "the Job's user, group and fsGroup")
	assert.Contains(t, res.Log, "PLAIN=plain REF=<plain>$(PLAIN) REPO=s3:repo MAYBE=unset NS=apps X=secret HOME=/ PWD=/\n",
		"env overrides the image's; $(VAR) expanded, $$ escaped; secretKeyRef decoded; a missing optional key left out; envFrom prefixed")
	assert.Contains(t, res.Log, "pw=secret mode=440\n", "the Secret volume's item, its mode 0400 made group-readable for the fsGroup (as the kubelet does)")
	assert.Contains(t, res.Log, "written by the test\n", "the claim's directory is /data")
	assert.Contains(t, res.Log, "sub mounted\n", "the child mount after its parent although listed first")
	assert.Contains(t, res.Log, "root read-only\n", "readOnlyRootFilesystem")

	b, err := os.ReadFile(filepath.Join(claim, "out.txt"))
	require.NoError(t, err)
	assert.Equal(t, "restored\n", string(b), "what the Job wrote into /data is in the claim's directory")

	_, err = os.Stat("/data/sub")
	assert.True(t, os.IsNotExist(err) || !isMountPoint(t, "/data/sub"), "nothing is mounted on the host")

	patches := api.patches["/apis/batch/v1/namespaces/"+ns+"/jobs/ok/status"]
	require.Len(t, patches, 1)
	assert.EqualValues(t, 1, patches[0]["status"].(map[string]any)["succeeded"]) //nolint:forcetypeassert // the test's own patch
	assert.Equal(t, []string{"SuccessCriteriaMet", "Complete"}, conditionTypes(patches[0]))
}

func TestRunFailures(t *testing.T) {
	missingKey := `, {"name": "NEEDED", "valueFrom": {"secretKeyRef": {"name": "repo", "key": "AWS_ACCESS_KEY_ID"}}}`
	missingSecret := `, {"name": "NEEDED", "valueFrom": {"secretKeyRef": {"name": "other", "key": "K"}}}`
	optionalSecret := `, {"name": "OPT", "valueFrom": {"secretKeyRef": {"name": "other", "key": "K", "optional": true}}}`

	r, api := newRunner(t, map[string]string{
		"exit3":          jobJSON("exit3", "echo failing; exit 3", `{}`, ""),
		"missing-key":    jobJSON("missing-key", "true", `{}`, missingKey),
		"missing-secret": jobJSON("missing-secret", "true", `{}`, missingSecret),
		"optional":       jobJSON("optional", `test -z "${OPT+set}"`, `{}`, optionalSecret),
		"root":           jobJSON("root", "true", `{"runAsUser": 0}`, ""),
	})

	res, err := r.Run(context.Background(), ns, "exit3")
	require.NoError(t, err)
	assert.Equal(t, 3, res.ExitCode)
	assert.False(t, res.Succeeded)
	assert.Contains(t, res.Log, "failing")

	patches := api.patches["/apis/batch/v1/namespaces/"+ns+"/jobs/exit3/status"]
	require.Len(t, patches, 1)
	assert.EqualValues(t, 1, patches[0]["status"].(map[string]any)["failed"]) //nolint:forcetypeassert // the test's own patch
	assert.Empty(t, conditionTypes(patches[0]), "one failed pod of a backoffLimit of 2: not failed yet")

	for name, want := range map[string]string{
		"missing-key":    "couldn't find key AWS_ACCESS_KEY_ID in Secret apps/repo",
		"missing-secret": `Secret "other" not found`,
		"root":           "runAsNonRoot",
	} {
		_, err := r.Run(context.Background(), ns, name)
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), want, name)
		assert.Empty(t, api.patches["/apis/batch/v1/namespaces/"+ns+"/jobs/"+name+"/status"], "%s: the pod never started: the Job is left alone", name)
	}

	res, err = r.Run(context.Background(), ns, "optional")
	require.NoError(t, err)
	assert.Equal(t, 0, res.ExitCode, "an optional Secret that does not exist leaves the variable out: %s", res.Log)
}

func conditionTypes(patch map[string]any) []string {
	conds, _ := patch["status"].(map[string]any)["conditions"].([]any) //nolint:forcetypeassert // the test's own patch

	var out []string

	for _, c := range conds {
		out = append(out, c.(map[string]any)["type"].(string)) //nolint:forcetypeassert // the test's own patch
	}

	return out
}

func isMountPoint(t *testing.T, p string) bool {
	t.Helper()

	b, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)

	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == p {
			return true
		}
	}

	return false
}
