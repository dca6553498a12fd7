//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness"
)

// repoRoot is this repository's root, where the Makefile is.
var repoRoot = filepath.Join("..", "..") //nolint:gochecknoglobals // a constant path

// registry is CNCF distribution's registry (REGISTRY_BIN, pinned in the Makefile) on
// 127.0.0.1: filesystem storage in a temporary directory, plain HTTP, no authentication.
type registry struct {
	host string // 127.0.0.1:<port>
	p    *proc
}

// startRegistry starts the registry and waits until its API answers; it stops with the test.
func startRegistry(t *testing.T) *registry {
	t.Helper()

	bin := harness.Tool(t, "registry")
	dir := t.TempDir()
	port := freePort(t)
	cfg := filepath.Join(dir, "config.yml")
	require.NoError(t, os.WriteFile(cfg, fmt.Appendf(nil, `version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: %q}, delete: {enabled: true}}
http: {addr: %q}
`, filepath.Join(dir, "data"), hostPort(port)), 0o600))

	r := &registry{host: hostPort(port), p: startProc(t, dir, "registry", bin, nil, "serve", cfg)}
	t.Cleanup(func() {
		if !r.p.stop(10 * time.Second) {
			t.Logf("the registry ignored SIGTERM for 10s: killed")
		}
	})

	_, ok := eventually(30*time.Second, 100*time.Millisecond, func() bool {
		resp, err := http.Get("http://" + r.host + "/v2/") //nolint:noctx // short poll
		if err != nil {
			return false
		}
		resp.Body.Close()

		return resp.StatusCode == http.StatusOK
	})
	require.True(t, ok, "the registry does not answer /v2/:\n%s", r.p.tail(20))

	return r
}

// released is what make release pushed, and what a user needs to check it.
type released struct {
	version    string
	image      string // <registry>/backup-oracle/backup-oracle
	chart      string // <registry>/backup-oracle/charts/backup-oracle
	key, other string // cosign public keys: the one that signed, and another
	env        []string
	dir        string
}

// userEnv keeps helm's, cosign's and crane's configuration and caches in dir: no credentials or
// trust roots from the machine, none left behind.
func userEnv(dir string) []string {
	env := withoutEnv(os.Environ(), "MAKEFLAGS", "MAKELEVEL", "MFLAGS", "GOFLAGS", "VERSION", "IMAGE_TAG", "REGISTRY",
		"COSIGN_KEY", "COSIGN_PASSWORD", "DOCKER_CONFIG", "TUF_ROOT")

	return append(env, "HELM_CONFIG_HOME="+filepath.Join(dir, "helm", "config"), "HELM_CACHE_HOME="+filepath.Join(dir, "helm", "cache"),
		"HELM_DATA_HOME="+filepath.Join(dir, "helm", "data"), "DOCKER_CONFIG="+filepath.Join(dir, "docker"),
		"TUF_ROOT="+filepath.Join(dir, "sigstore"), "COSIGN_PASSWORD=")
}

// withoutEnv drops the named variables from env.
func withoutEnv(env []string, names ...string) []string {
	out := make([]string, 0, len(env))

next:
	for _, kv := range env {
		for _, n := range names {
			if strings.HasPrefix(kv, n+"=") {
				continue next
			}
		}

		out = append(out, kv)
	}

	return out
}

// command runs bin with args in the user's environment; it returns stdout, and stderr in the
// error.
func command(env []string, dir, bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()

	cmd := exec.CommandContext(ctx, bin, args...) //nolint:gosec // pinned tools
	cmd.Env, cmd.Dir = env, dir

	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr

	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w\n%s%s", filepath.Base(bin), strings.Join(args, " "), err, stdout.String(), stderr.String())
	}

	return stdout.String(), nil
}

// mustCommand is command that fails the test on an error.
func mustCommand(t *testing.T, env []string, bin string, args ...string) string {
	t.Helper()

	out, err := command(env, "", bin, args...)
	require.NoError(t, err)

	return out
}

// chartVersion reads chart/Chart.yaml's version.
func chartVersion(t *testing.T) string {
	t.Helper()

	b, err := os.ReadFile(filepath.Join(chartDir, "Chart.yaml"))
	require.NoError(t, err)

	m := regexp.MustCompile(`(?m)^version: (\S+)$`).FindSubmatch(b)
	require.NotNil(t, m, "chart/Chart.yaml has no version")

	return string(m[1])
}

// releaseToRegistry generates a cosign key pair and runs the Makefile's release into a registry
// on 127.0.0.1, signing with that key and without a transparency log (no network here). The
// version is the chart's: the test releases whatever commit it runs on (a real release derives
// it from the tag: TestVersionFromGitTag).
func releaseToRegistry(t *testing.T) released {
	t.Helper()

	cosign := harness.Tool(t, "cosign")
	harness.Tool(t, "crane")

	reg := startRegistry(t)
	dir := t.TempDir()
	rel := released{
		version: chartVersion(t), image: reg.host + "/backup-oracle/backup-oracle", chart: reg.host + "/backup-oracle/charts/backup-oracle",
		key: filepath.Join(dir, "release.pub"), other: filepath.Join(dir, "other.pub"), env: userEnv(dir), dir: dir,
	}

	for _, prefix := range []string{"release", "other"} {
		_, err := command(rel.env, dir, cosign, "generate-key-pair", "--output-key-prefix", prefix)
		require.NoError(t, err)
	}

	start := time.Now()
	out, err := command(rel.env, "", "make", "-C", repoRoot, "release", "REGISTRY="+reg.host+"/backup-oracle", "VERSION="+rel.version,
		"COSIGN_KEY="+filepath.Join(dir, "release.key"), "COSIGN_SIGN_FLAGS="+releaseSignFlags, "HELM_REGISTRY_FLAGS=--plain-http")
	require.NoError(t, err)
	t.Logf("make release %s to %s took %s:\n%s", rel.version, reg.host, time.Since(start).Round(time.Second), lastLines(out, 3))

	return rel
}

// releaseSignFlags: sign with the key alone; no transparency log or signing configuration is
// reachable from here (the real release signs keyless: README, "Releasing").
const releaseSignFlags = "--tlog-upload=false --use-signing-config=false"

// TestRelease releases this commit with make release into a CNCF distribution registry on
// 127.0.0.1, then does what a user does (README, "Install"): verifies the signatures of the
// image index, of each platform's image, of their SBOM attestations and of the chart from the
// registry, checks that the pulled chart, the image of both platforms and the binary name one
// version, and installs the chart from oci:// into an e2e stack on the newest Kyverno: first
// as a server-side dry run, then as the upgrade of the previous release (upgradeFromPrevious).
func TestRelease(t *testing.T) {
	harness.Tool(t, "helm")
	harness.Tool(t, "kopia")
	versions := kyvernoVersions(t)

	rel := releaseToRegistry(t)

	t.Run("verify", func(t *testing.T) { verifyRelease(t, rel) })
	t.Run("artifacts", func(t *testing.T) { checkReleasedArtifacts(t, rel) })
	t.Run("install-and-upgrade", func(t *testing.T) { upgradeFromPrevious(t, rel, versions[len(versions)-1]) })
}
