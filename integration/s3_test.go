package integration

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness"
	"github.com/backup-oracle/backup-oracle/integration/harness/kopiamover"
)

const resticPassword = "restic-test-password"

// secretFiles writes the S3 keys and a password as files, the way the chart mounts Secrets.
func secretFiles(t *testing.T, s3 *harness.S3Server, password string) (dir string, env []string) {
	t.Helper()

	dir = t.TempDir()
	for name, v := range map[string]string{"access": s3.AccessKey, "secret": s3.SecretKey, "password": password} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o600))
	}

	return dir, []string{
		"S3_ACCESS_KEY_FILE=" + filepath.Join(dir, "access"), "S3_SECRET_KEY_FILE=" + filepath.Join(dir, "secret"),
	}
}

func TestResticS3EndToEnd(t *testing.T) {
	s3 := harness.StartS3(t)
	bucket := s3.CreateBucket("volsync")
	cli := harness.NewResticCLI(t, s3)
	url := func(ns, pvc string) string { return "s3:" + s3.URL + "/" + bucket + "/" + ns + "/" + pvc }

	cli.Init(url("web", "app"), resticPassword, "2")
	cli.Backup(url("web", "app"), resticPassword)
	cli.Backup(url("web", "app"), resticPassword)
	cli.Init(url("web", "my.app.data"), resticPassword, "1")
	cli.Backup(url("web", "my.app.data"), resticPassword)
	cli.Init(url("web", "restored-empty"), resticPassword, "2") // what the mover does before a restore

	dir, env := secretFiles(t, s3, resticPassword)
	pwFile := filepath.Join(dir, "password")
	require.NoError(t, os.Remove(pwFile)) // the Secret is not mounted yet

	o := harness.StartOracle(t, harness.OracleOptions{Bin: oracleBin, Env: append(env,
		"BACKEND_TYPE=s3", "S3_ENDPOINT="+s3.Endpoint, "S3_BUCKET="+bucket, "S3_SECURE=false",
		"RESTIC_PASSWORD_FILE="+pwFile, "REFRESH_INTERVAL=300ms", "MAX_INDEX_AGE=10s", "HTTP_TIMEOUT=2s",
	)})

	t.Run("missing secret: unknown, alive", func(t *testing.T) {
		eventuallyReason(t, o, "read secret file", 10*time.Second)
		assert.Equal(t, http.StatusServiceUnavailable, o.Get(t, "/exists/web/nothing").Code)
		assert.False(t, o.Exited())
	})

	require.NoError(t, os.WriteFile(pwFile, []byte(resticPassword), 0o600))
	o.WaitReady(t, 30*time.Second)

	cases := []struct {
		pvc      string
		decision string
		count    float64
	}{
		{"app", "restore", 2},
		{"my.app.data", "restore", 1},
		{"restored-empty", "fresh", 0}, // initialised, no snapshot: not a backup
		{"absent", "fresh", 0},
	}

	for _, tc := range cases {
		t.Run(tc.pvc, func(t *testing.T) {
			r := o.Get(t, "/exists/web/"+tc.pvc)
			assert.Equal(t, http.StatusOK, r.Code, "%v", r.Body)
			assert.Equal(t, tc.decision, r.Body["decision"])
			assert.Equal(t, tc.count, r.Body["snapshotCount"])
			assert.Equal(t, "s3", r.Body["backend"])
		})
	}

	t.Run("S3 down then back", func(t *testing.T) {
		s3.Stop()
		eventually(t, o, "/exists/web/absent", "unknown", 20*time.Second)
		assert.Equal(t, http.StatusServiceUnavailable, o.Get(t, "/readyz").Code)

		s3.Start()
		o.WaitReady(t, 30*time.Second)
		assert.Equal(t, "restore", decision(t, o, "/exists/web/app"))
		assert.Equal(t, "fresh", decision(t, o, "/exists/web/absent"))
	})

	assert.NotContains(t, o.Stderr(), resticPassword)
	assert.NotContains(t, o.Stderr(), s3.SecretKey)
}

// TestResticCheckConfigOpenVerifies: --check-config --open, as an init container runs it,
// verifies restic's snapshots with the password before it answers: a repository the password
// does not open (written by the real restic CLI with another password) fails the check and is
// named; with every repository opening, the check passes.
func TestResticCheckConfigOpenVerifies(t *testing.T) {
	s3 := harness.StartS3(t)
	bucket := s3.CreateBucket("volsync")
	cli := harness.NewResticCLI(t, s3)
	url := func(ns, pvc string) string { return "s3:" + s3.URL + "/" + bucket + "/" + ns + "/" + pvc }

	cli.Init(url("web", "app"), resticPassword, "2")
	cli.Backup(url("web", "app"), resticPassword)

	dir, env := secretFiles(t, s3, resticPassword)
	check := func() (int, string) {
		return runCheckConfigOpen(t, append([]string{"BACKEND_TYPE=s3", "S3_ENDPOINT=" + s3.Endpoint, "S3_BUCKET=" + bucket, "S3_SECURE=false",
			"RESTIC_PASSWORD_FILE=" + filepath.Join(dir, "password")}, env...)...)
	}

	code, out := check()
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "backend 1: opened: 1 sources")
	assert.NotContains(t, out, "FAILED")

	cli.Init(url("web", "db"), "another password", "2")
	cli.Backup(url("web", "db"), "another password")

	code, out = check()
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, "backend 1: FAILED: wrong password for 1 repository(ies)")
	assert.Contains(t, out, "s3:"+bucket+"/web/db: restic: verify repository")
	assert.NotContains(t, out, "s3:"+bucket+"/web/app: ", "the repository the password opens is not listed")
	assert.NotContains(t, out, resticPassword)
}

func TestKopiaS3EndToEnd(t *testing.T) {
	s3 := harness.StartS3(t)
	cli := harness.NewKopiaS3Repository(t, s3, s3.CreateBucket("kopia"), kopiaPassword)

	data := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(data, "f"), []byte("x"), 0o600))

	cli.Snapshot(data, kopiamover.PolicySource("web", "my.app.data"))

	_, env := secretFiles(t, s3, kopiaPassword)
	o := harness.StartOracle(t, harness.OracleOptions{Bin: oracleBin, Env: append(env,
		"BACKEND_TYPE=kopia-s3", "S3_ENDPOINT=http://"+s3.Endpoint, "S3_BUCKET=kopia", "KOPIA_PASSWORD="+kopiaPassword,
		"REFRESH_INTERVAL=300ms", "MAX_INDEX_AGE=10s",
	)})
	o.WaitReady(t, 30*time.Second)

	r := o.Get(t, "/exists/web/my.app.data")
	assert.Equal(t, "restore", r.Body["decision"])
	assert.Equal(t, "myappdata-backup@web:/data", r.Body["source"])
	assert.Equal(t, "kopia-s3", r.Body["backend"])
	assert.Equal(t, "fresh", decision(t, o, "/exists/web/other"))

	s3.Stop()
	eventually(t, o, "/exists/web/other", "unknown", 20*time.Second)
	s3.Start()
	o.WaitReady(t, 30*time.Second)
}

// TestKopiaS3Prefix: Kopia uses its S3 prefix verbatim, so a repository created by the kopia CLI
// with --prefix=volsync/ lives under keys "volsync/kopia.repository", ...; S3_PREFIX=volsync
// (no slash) names "volsynckopia.repository" and finds nothing. The oracle says so and suggests
// the slash; restic's template adds the slash itself (TestResticS3EndToEnd reads "volsync").
func TestKopiaS3Prefix(t *testing.T) {
	s3 := harness.StartS3(t)
	cli := harness.NewKopiaS3Repository(t, s3, s3.CreateBucket("kopia"), kopiaPassword, "--prefix=volsync/")

	data := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(data, "f"), []byte("x"), 0o600))
	cli.Snapshot(data, kopiamover.PolicySource("web", "app"))

	_, env := secretFiles(t, s3, kopiaPassword)
	start := func(prefix string) *harness.Oracle {
		return harness.StartOracle(t, harness.OracleOptions{Bin: oracleBin, Env: append(slices.Clone(env),
			"BACKEND_TYPE=kopia-s3", "S3_ENDPOINT=http://"+s3.Endpoint, "S3_BUCKET=kopia", "S3_PREFIX="+prefix,
			"KOPIA_PASSWORD="+kopiaPassword, "REFRESH_INTERVAL=300ms", "MAX_INDEX_AGE=10s",
		)})
	}

	t.Run("without the slash: not ready, says why and what to write", func(t *testing.T) {
		o := start("volsync")
		eventuallyReason(t, o, `the prefix "volsync" is used verbatim`, 20*time.Second)

		reason := fmt.Sprint(o.Get(t, "/readyz").Body["reason"])
		assert.Contains(t, reason, `end it with a slash ("volsync/")`)
		assert.Contains(t, reason, "missing kopia.repository")
		assert.Equal(t, "unknown", decision(t, o, "/exists/web/app"))
	})

	t.Run("with the slash", func(t *testing.T) {
		o := start("volsync/")
		o.WaitReady(t, 30*time.Second)
		assert.Equal(t, "restore", decision(t, o, "/exists/web/app"))
		assert.Equal(t, "fresh", decision(t, o, "/exists/web/other"))
	})
}

// TestSeveralBackends: a blue/green migration reads the other colour's restic bucket and the
// local Kopia repository; restore from either, fresh only when both are authoritative and empty,
// unknown while either is unknown (it could hold a newer snapshot).
func TestSeveralBackends(t *testing.T) {
	w := newKopiaWorld(t) // has web/app and web/my.app.data

	s3 := harness.StartS3(t)
	bucket := s3.CreateBucket("green")
	cli := harness.NewResticCLI(t, s3)
	green := "s3:" + s3.URL + "/" + bucket + "/web/only-green"
	cli.Init(green, resticPassword, "2")
	cli.Backup(green, resticPassword)

	dir, _ := secretFiles(t, s3, resticPassword)
	kopiaPw := w.passwordFile(t, kopiaPassword)
	file := filepath.Join(t.TempDir(), "backends.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`backends:
  - name: green
    type: restic-s3
    s3: {endpoint: "http://`+s3.Endpoint+`", bucket: green, accessKeyFile: `+dir+`/access, secretKeyFile: `+dir+`/secret}
    restic: {passwordFile: `+dir+`/password}
  - name: local
    type: kopia-fs
    kopia: {repositoryPath: `+w.cli.Path+`, passwordFile: `+kopiaPw+`}
`), 0o600))

	o := harness.StartOracle(t, harness.OracleOptions{Bin: oracleBin, Env: []string{
		"BACKENDS_FILE=" + file, "REFRESH_INTERVAL=300ms", "MAX_INDEX_AGE=10s",
	}})
	o.WaitReady(t, 30*time.Second)

	cases := []struct{ path, decision, backend string }{
		{"/exists/web/only-green", "restore", "green"},
		{"/exists/web/app", "restore", "local"},
		{"/exists/web/neither", "fresh", "green,local"},
	}
	for _, tc := range cases {
		r := o.Get(t, tc.path)
		assert.Equal(t, tc.decision, r.Body["decision"], tc.path)
		assert.Equal(t, tc.backend, r.Body["backend"], tc.path)
	}

	s3.Stop()
	eventually(t, o, "/exists/web/neither", "unknown", 20*time.Second)
	r := o.Get(t, "/exists/web/app")
	assert.Equal(t, "unknown", r.Body["decision"], "the unknown backend could hold a newer snapshot than local's")
	assert.Contains(t, r.Body["error"], "local hold(s) snapshots, but an unknown backend could hold a newer one")
	assert.Equal(t, http.StatusServiceUnavailable, o.Get(t, "/readyz").Code, "fresh needs every backend: not ready")
}

// TestSlowAndFailingS3: behind a proxy that delays or answers 5xx, refreshes fail within the
// configured bounds, /exists keeps answering at once (from memory) with unknown, and the service
// recovers when S3 does.
func TestSlowAndFailingS3(t *testing.T) {
	s3 := harness.StartS3(t)
	bucket := s3.CreateBucket("volsync")
	cli := harness.NewResticCLI(t, s3)
	cli.Init("s3:"+s3.URL+"/"+bucket+"/web/app", resticPassword, "2")
	cli.Backup("s3:"+s3.URL+"/"+bucket+"/web/app", resticPassword)

	proxy := harness.StartFaultProxy(t, s3.URL)
	_, env := secretFiles(t, s3, resticPassword)
	o := harness.StartOracle(t, harness.OracleOptions{Bin: oracleBin, Env: append(env,
		"BACKEND_TYPE=restic-s3", "S3_ENDPOINT="+proxy.URL, "S3_BUCKET="+bucket,
		"S3_REQUEST_TIMEOUT=500ms", "REFRESH_INTERVAL=300ms", "REFRESH_TIMEOUT=3s", "MAX_INDEX_AGE=10s", "HTTP_TIMEOUT=1s",
	)})
	o.WaitReady(t, 30*time.Second)
	require.Equal(t, "restore", decision(t, o, "/exists/web/app"))

	for _, fault := range []struct {
		name   string
		inject func()
	}{
		{"slow", func() { proxy.SetDelay(time.Minute) }},
		{"5xx", func() { proxy.Fail(-1, http.StatusInternalServerError) }},
	} {
		t.Run(fault.name, func(t *testing.T) {
			fault.inject()
			eventually(t, o, "/exists/web/app", "unknown", 20*time.Second)

			start := time.Now()
			r := o.Get(t, "/exists/web/other")
			assert.Less(t, time.Since(start), time.Second, "answered from memory, never waiting on S3")
			assert.Equal(t, http.StatusServiceUnavailable, r.Code)
			assert.Contains(t, r.Body["error"], "backend unavailable")

			proxy.SetDelay(0)
			proxy.Reset()
			o.WaitReady(t, 30*time.Second)
			assert.Equal(t, "restore", decision(t, o, "/exists/web/app"))
		})
	}
}
