//go:build e2e && kopiafork

package e2e

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness"
	"github.com/backup-oracle/backup-oracle/integration/harness/jobrunner"
)

// The Kopia scenarios on the real Kopia fork of VolSync (perfectra1n/volsync), run by `make
// e2e-kopia-fork` only (build tag kopiafork): the fork is not on the Go module proxy (its module
// path is upstream's, github.com/backube/volsync), so CI has no way to obtain it, and `make test`
// never compiles this file into a run. README, "Real movers: the Kopia fork".

// forkRefresh is the fork scenarios' oracle REFRESH_INTERVAL: a backup is answered restore
// within one refresh.
const forkRefresh = 2 * time.Second

// forkCheckout is what make e2e-kopia-fork is given: a checkout of the fork's source
// (VOLSYNC_FORK_SRC, for mover-kopia/entry.sh, its CRDs and its Dockerfile) and the controller
// built from that checkout (VOLSYNC_FORK_MANAGER).
type forkCheckout struct {
	src, manager string
}

// findFork reads the checkout and the controller. Both are required: this test runs only when
// asked for, so a missing one is a mistake, not a reason to skip.
func findFork(t *testing.T) forkCheckout {
	t.Helper()

	f := forkCheckout{src: os.Getenv("VOLSYNC_FORK_SRC"), manager: os.Getenv("VOLSYNC_FORK_MANAGER")}
	if f.src == "" || f.manager == "" {
		t.Fatal("run `make e2e-kopia-fork VOLSYNC_FORK_SRC=<checkout of perfectra1n/volsync> VOLSYNC_FORK_MANAGER=<its controller>`")
	}

	for _, p := range []string{f.manager, filepath.Join(f.src, "mover-kopia", "entry.sh")} {
		_, err := os.Stat(p)
		require.NoError(t, err)
	}

	return f
}

// installCRDs applies the checkout's CRDs the stack lacks (KopiaMaintenance, which the fork's
// controller watches, and the VolumeSnapshot CRDs of its hack/crds) and requires its
// ReplicationSource and ReplicationDestination CRDs to be the vendored ones the stack installs
// and the policies are tested against (v0.17.11's): a checkout of another version would test
// other objects than the ones the chart is proven to generate. Call before stack.installCRDs,
// which waits for every CRD.
func (f forkCheckout) installCRDs(t *testing.T, s *stack) {
	t.Helper()

	for _, kind := range []string{"replicationsources", "replicationdestinations"} {
		name := "volsync.backube_" + kind + ".yaml"
		got, err := os.ReadFile(filepath.Join(f.src, "config", "crd", "bases", name)) //nolint:gosec // the checkout
		require.NoError(t, err)
		want, err := os.ReadFile(filepath.Join(volsyncCRDs(), name)) //nolint:gosec // vendored test data
		require.NoError(t, err)
		require.True(t, bytes.Equal(want, got), "%s of the checkout differs from the vendored %s: not the fork version the chart is tested against", name, volsyncCRDs())
	}

	files := []string{filepath.Join(f.src, "config", "crd", "bases", "volsync.backube_kopiamaintenances.yaml")}
	for _, crd := range []string{"volumesnapshotclasses", "volumesnapshotcontents", "volumesnapshots"} {
		files = append(files, filepath.Join(f.src, "hack", "crds", "snapshot.storage.k8s.io_"+crd+".yaml"))
	}

	for _, file := range files {
		out, err := s.kube.kubectlRun("", "apply", "--server-side", "--field-manager", "e2e", "-f", file)
		require.NoError(t, err, out)
	}
}

// image stands in for the fork's image: its mover-kopia/ folder (copied, the exec bit restored:
// a module zip or a copy may drop it) and the pinned kopia CLI. The image builds kopia at the
// version its Dockerfile names; both versions are logged (README: the same, v0.22.3, at v0.17.11).
func (f forkCheckout) image(t *testing.T, kopiaBin string) jobrunner.Image {
	t.Helper()

	mover := filepath.Join(t.TempDir(), "mover-kopia")
	require.NoError(t, os.CopyFS(mover, os.DirFS(filepath.Join(f.src, "mover-kopia"))))
	require.NoError(t, os.Chmod(filepath.Join(mover, "entry.sh"), 0o755)) //nolint:gosec // the mover's script, run by the Job's user

	dockerfile, err := os.ReadFile(filepath.Join(f.src, "Dockerfile"))
	require.NoError(t, err)

	shipped := "?"
	if m := regexp.MustCompile(`ARG KOPIA_VERSION="([^"]+)"`).FindSubmatch(dockerfile); m != nil {
		shipped = string(m[1])
	}

	t.Logf("kopia in the fork's image (its Dockerfile's KOPIA_VERSION): %s; used here: the pinned %s", shipped, filepath.Base(kopiaBin))

	return jobrunner.Image{
		Files: map[string]string{"/mover-kopia": mover, "/usr/local/bin/kopia": kopiaBin},
		Env:   []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
	}
}

// newestKyverno is the newest pinned Kyverno (the last of kyvernoReleases), from KYVERNO_BINS.
func newestKyverno(t *testing.T) kyvernoUnderTest {
	t.Helper()

	want := kyvernoReleases[len(kyvernoReleases)-1]

	for _, f := range strings.Fields(os.Getenv("KYVERNO_BINS")) {
		if version, dir, _ := strings.Cut(f, "="); version == want.version {
			return kyvernoUnderTest{kyvernoRelease: want, dir: dir}
		}
	}

	t.Fatalf("KYVERNO_BINS has no %s (the newest pinned Kyverno): run through make e2e-kopia-fork", want.version)

	return kyvernoUnderTest{}
}

// TestKopiaFork runs the Kopia layouts the chart offers against the fork's own controller
// (out of cluster in the e2e stack, newest Kyverno, both policy sets) and its own
// mover-kopia/entry.sh, run by the Job runner as a kubelet would run the mover Jobs: for each
// layout a backup written by the real mover under the identity the oracle looks up, and the
// restore by the real mover, byte for byte, into the PVC the policies re-created; and
// disagreements the check must catch (kopiaforkscenarios_test.go).
func TestKopiaFork(t *testing.T) {
	start := time.Now()
	fork := findFork(t)
	require.NoError(t, jobrunner.Available())

	helm := harness.Tool(t, "helm")
	kv := newestKyverno(t)
	image := fork.image(t, harness.Tool(t, "kopia"))

	oracleBin, err := harness.BuildOracle(t.TempDir())
	require.NoError(t, err)

	s := startStack(t)
	fork.installCRDs(t, s)
	s.installCRDs(t, kv.bin("crds"))
	s.kube.apply(t, render(t, helm, "default", "--show-only", "templates/policies/kyverno-rbac.yaml"))
	s.startKyverno(t, kv, false)
	s.kube.apply(t, blueGreenSecrets)
	controller := s.runVolSyncManager(t, "volsync-fork", fork.manager)

	e := &forkEnv{s: s, controller: controller, helm: helm, oracleBin: oracleBin, kv: kv, image: image, results: &measurements{}}

	for _, l := range forkLayouts {
		t.Run(l.name, func(t *testing.T) { e.runLayout(t, l) })
	}

	t.Logf("the Kopia fork's scenarios took %s", time.Since(start).Round(time.Second))
}

// forkEnv is what the layouts share: the stack, the chart, the oracle binary, the newest Kyverno
// and the fork's image.
type forkEnv struct {
	s          *stack
	controller *proc
	helm       string
	oracleBin  string
	kv         kyvernoUnderTest
	image      jobrunner.Image
	results    *measurements
}

// forkExport is an NFS export the layout's movers mount (moverVolumes), the repository behind
// it, and the repository Secret in volsync-system whose KOPIA_PASSWORD it has; with no server,
// the layout's repository on S3 (forkS3Prefix in bucket volsync) and its movers' Secret.
type forkExport struct {
	server, path, secret, colour string
	// repository, when set, replaces the Secret's KOPIA_REPOSITORY in the test's own clones.
	repository string
}

// forkLayout is one layout of the chart on the fork: a values file of chart/testdata/values
// (with extra, a values file's content, after it), the name templates of its RS and RD, the
// NFS exports its movers mount, and its scenarios.
type forkLayout struct {
	name, values, extra string
	s3                  bool   // backend kopia-s3 on an S3 server the layout starts
	rs, rd              string // {pvc}: the RS and the RD of a PVC
	exports             []forkExport
	scenarios           func(r *forkRun)
}

// defaultExport is the oracle's own export (chart testdata/values: backend.repository.nfs),
// which the movers mount when policies.nfs is not set; its repository has the password of the
// Secret the policies clone (volsync-system/volsync-kopia, kyvernoSetup).
var defaultExport = []forkExport{{server: "nfs.example.internal", path: "/volsync/kopia", secret: "volsync-kopia"}} //nolint:gochecknoglobals // test table

var forkLayouts = []forkLayout{ //nolint:gochecknoglobals // test table
	{name: "default", values: "default", rs: "{pvc}-backup", rd: "{pvc}-backup", exports: defaultExport, scenarios: func(r *forkRun) {
		r.step("data", func() { r.backupAndRestore("data", "hourly") })
		r.step("long-name", func() { r.backupAndRestore(longPVC, "daily") })
		r.step("restore-source", r.namedSource)
		r.step("disagreement-detected", r.disagreement)
	}},
	{name: "custom-identity", values: "custom-identity", rs: "{pvc}-src", rd: "{pvc}-restore", exports: defaultExport, scenarios: func(r *forkRun) {
		r.step("data", func() { r.backupAndRestore("data", "hourly") })
	}},
	{name: "app-layout", values: "app-layout", rs: "{pvc}", rd: "{pvc}-dst", exports: defaultExport, scenarios: func(r *forkRun) {
		r.step("gitea", r.appLayout)
	}},
	{name: "custom-path", values: "custom-path", rs: "{pvc}-backup", rd: "{pvc}-backup", exports: defaultExport, scenarios: func(r *forkRun) {
		r.step("data", func() { r.backupAndRestore("data", "hourly") })
		r.step("long-name", func() { r.backupAndRestore(longPVC, "daily") })
		r.step("old-rd-forms-detected", func() { r.oldCustomPathRDs("data") })
	}},
	{name: "kopia-s3", values: "kopia-s3-monitoring", s3: true, rs: "{pvc}-backup", rd: "{pvc}-backup",
		exports: []forkExport{{secret: "volsync-kopia-s3"}}, scenarios: func(r *forkRun) {
			r.step("data", func() { r.backupAndRestore("data", "hourly") })
			r.step("prefix-without-slash", r.s3PrefixSlash)
		}},
	{name: "blue-green", values: "blue-green", extra: blueGreenValues, rs: "{pvc}-backup", rd: "{pvc}-backup", exports: []forkExport{
		{server: "nfs.green.example.internal", path: "/volsync/kopia", secret: "volsync-kopia-green", colour: "green"},
		{server: "nfs.blue.example.internal", path: "/volsync/kopia-blue", secret: "volsync-kopia-blue", colour: "blue"},
	}, scenarios: func(r *forkRun) {
		r.step("app", r.blueGreen)
	}},
}

// runLayout runs one layout: a Kopia repository per export, written by the fork's movers (the
// kopia CLI creates it, as the mover's user, with its Secret's password; it holds no snapshot
// yet), the oracle configured as the chart renders it for the layout, and both policy sets one
// after the other, each in its own namespace.
func (e *forkEnv) runLayout(t *testing.T, l forkLayout) {
	dir := t.TempDir()
	args := []string{"--set", "policies.copyMethod=Direct", "--set", "config.allowEmptyIndex=true"}

	if l.extra != "" {
		values := filepath.Join(dir, "values.yaml")
		require.NoError(t, os.WriteFile(values, []byte(l.extra), 0o600))
		args = append([]string{"-f", values}, args...)
	}

	var s3 *harness.S3Server

	if l.s3 {
		s3 = harness.StartS3(t)
		s3.CreateBucket("volsync")
		args = append(args, "--set", "backend.s3.endpoint="+s3.URL, "--set", "backend.s3.secure=false", "--set", "backend.s3.ca.secretName=",
			"--set", "backend.s3.prefix="+forkS3Prefix, "--set", "policies.secret.sourceName="+l.exports[0].secret)
		e.s.kube.apply(t, fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: %s, namespace: volsync-system}
stringData: {KOPIA_REPOSITORY: "s3://volsync/%s", KOPIA_PASSWORD: s3-password, KOPIA_S3_ENDPOINT: %q, KOPIA_S3_DISABLE_TLS: "true",
  AWS_ACCESS_KEY_ID: %q, AWS_SECRET_ACCESS_KEY: %q}
`, l.exports[0].secret, forkS3Prefix, s3.Endpoint, s3.AccessKey, s3.SecretKey))
	}

	nfs, repos, passwords := map[string]string{}, map[string]string{}, map[string]string{}

	for _, x := range l.exports {
		repo, pw := e.repository(t, x, s3)
		if x.server != "" {
			nfs[x.server+":"+x.path] = repo
		}

		repos[x.colour], passwords[x.colour] = repo, pw
	}

	o := e.oracle(t, renderManifests(t, e.helm, l.values, args...), dir, repos, passwords, s3)

	runner := &jobrunner.Runner{
		API:    jobrunner.REST{URL: e.s.kube.url, Token: e.s.kube.token, Client: e.s.kube.client},
		Claims: filepath.Join(dir, "claims"), Work: filepath.Join(dir, "pods"), NFS: nfs, Image: e.image,
	}

	for _, set := range policySets {
		t.Run(set.engine, func(t *testing.T) {
			docs := renderManifests(t, e.helm, l.values, append(args, "--set", "policies.engine="+set.engine, "--set", "policies.oracleURL="+o.URL())...)
			installLayout(t, e.s.kube, docs, set.engine)

			r := &forkRun{
				run: &run{t: t, maxCalls: e.kv.sets[set.engine].maxCalls, k: e.s.kube, o: o, set: "fork/" + l.name + "/" + set.engine,
					engine: set.engine, ns: "fork-" + l.name + "-" + set.engine, results: e.results},
				runner: runner, layout: l, controller: e.controller,
			}
			r.k.mustOK(t, http.MethodPost, "/api/v1/namespaces", map[string]any{"metadata": map[string]any{"name": r.ns}}, "")
			l.scenarios(r)
		})
	}
}

// repository creates the empty Kopia repository behind export x, with the password of x's
// Secret: on NFS, a folder owned by the movers' user (568, the policies' moverSecurityContext)
// in which the kopia CLI, run as that user, creates it; without a server, on s3 at forkS3Prefix.
// It returns its path (the S3 location) and the password.
func (e *forkEnv) repository(t *testing.T, x forkExport, s3 *harness.S3Server) (string, string) {
	t.Helper()

	res := e.s.kube.get(t, "/api/v1/namespaces/volsync-system/secrets/"+x.secret)
	require.Equal(t, http.StatusOK, res.Code, res.Raw)

	pw, err := base64.StdEncoding.DecodeString(str(res.Body, "data", "KOPIA_PASSWORD"))
	require.NoError(t, err)

	if x.server == "" {
		return harness.NewKopiaS3Repository(t, s3, "volsync", string(pw), "--prefix="+forkS3Prefix).Path, string(pw)
	}

	// Not under t.TempDir(), which only its owner may enter: the CLI runs as the movers' user.
	parent, err := os.MkdirTemp("", "kopia-fork-export-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(parent) })
	require.NoError(t, os.Chown(parent, moverUID, moverUID))

	cli := harness.NewKopiaRepositoryAs(t, moverUID, filepath.Join(parent, "repository"), string(pw))

	return cli.Path, string(pw)
}

// forkS3Prefix is the kopia-s3 layout's backend.s3.prefix: a folder, as the fork's movers make
// any prefix (s3PrefixSlash).
const forkS3Prefix = "kopia/"

// moverUID is the policies' moverSecurityContext runAsUser, runAsGroup and fsGroup.
const moverUID = 568

// oracle starts the layout's oracle with the settings the chart renders into its Deployment
// (identity, destination name, near-miss mode, empty index allowed until the first backup), on
// the layout's repository (on s3, when not nil), or with the BACKENDS_FILE it renders for several.
func (e *forkEnv) oracle(t *testing.T, docs []manifest, dir string, repos, passwords map[string]string, s3 *harness.S3Server) *oracle {
	t.Helper()

	env := deploymentEnv(t, docs)
	oracleEnv := []string{"REFRESH_INTERVAL=" + forkRefresh.String(), "MAX_INDEX_AGE=30s"}

	for name, v := range env {
		if (strings.HasPrefix(name, "KOPIA_") || strings.HasPrefix(name, "S3_") ||
			slices.Contains([]string{"BACKEND_TYPE", "DESTINATION_NAME_TEMPLATE", "NEAR_MISS", "ALLOW_EMPTY_INDEX"}, name)) &&
			name != "KOPIA_REPOSITORY_PATH" && !strings.HasSuffix(name, "_FILE") {
			oracleEnv = append(oracleEnv, name+"="+v)
		}
	}

	if s3 != nil {
		for name, content := range map[string]string{"S3_ACCESS_KEY_FILE": s3.AccessKey, "S3_SECRET_KEY_FILE": s3.SecretKey} {
			require.NotEmpty(t, env[name], "the chart renders %s", name)
			file := filepath.Join(dir, strings.ToLower(name))
			require.NoError(t, os.WriteFile(file, []byte(content+"\n"), 0o600))
			oracleEnv = append(oracleEnv, name+"="+file)
		}
	}

	switch {
	case env["BACKENDS_FILE"] != "":
		i := slices.IndexFunc(docs, func(d manifest) bool { return d.kind == "ConfigMap" && strings.HasSuffix(d.name, "-backends") })
		require.GreaterOrEqual(t, i, 0, "no backends ConfigMap rendered")
		oracleEnv = append(oracleEnv, "BACKENDS_FILE="+writeBackendsFile(t, docs[i], dir, repos, passwords))
	default:
		pw := filepath.Join(dir, "password")
		require.NoError(t, os.WriteFile(pw, []byte(passwords[""]+"\n"), 0o600))
		oracleEnv = append(oracleEnv, "KOPIA_PASSWORD_FILE="+pw)

		if s3 == nil {
			oracleEnv = append(oracleEnv, "KOPIA_REPOSITORY_PATH="+repos[""])
		}
	}

	t.Logf("oracle: %v", oracleEnv)

	o := newOracleEnv(t, e.s, e.oracleBin, oracleEnv)
	o.start(t)
	t.Cleanup(func() { o.stop(t) })

	return o
}
