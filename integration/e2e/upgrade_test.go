//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness"
)

// previousRelease is the revision the upgrade starts from: PREVIOUS_RELEASE (the Makefile's: the
// last release's tag; before the first release, the first commit of main this one builds on,
// whose chart says 0.1.0 and was never published).
func previousRelease(t *testing.T) string {
	t.Helper()

	rev := os.Getenv("PREVIOUS_RELEASE")
	if rev == "" {
		harness.Require(t, "PREVIOUS_RELEASE (run through `make e2e`)")
	}

	return rev
}

// checkout writes the files of rev under paths (git archive: the history, not the work tree)
// into a new directory and returns it. A clone without rev fails with a sentence.
func checkout(t *testing.T, rev string, paths ...string) string {
	t.Helper()

	cmd := exec.Command("git", append([]string{"-C", repoRoot, "archive", "--format=tar", rev}, paths...)...) //nolint:gosec // a revision of this repository

	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "git archive %s (a shallow clone lacks the previous release; fetch it): %s", rev, stderr.String())

	dir := t.TempDir()
	tr := tar.NewReader(bytes.NewReader(out))

	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return dir
		}

		require.NoError(t, err)

		target := filepath.Join(dir, filepath.Clean("/"+h.Name))

		switch h.Typeflag {
		case tar.TypeDir:
			require.NoError(t, os.MkdirAll(target, 0o755))
		case tar.TypeReg:
			require.NoError(t, os.MkdirAll(filepath.Dir(target), 0o755))

			var b bytes.Buffer
			_, err := io.Copy(&b, tr) //nolint:gosec // this repository's files
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(target, b.Bytes(), 0o644)) //nolint:gosec // source files
		}
	}
}

// buildPrevious builds the previous release's backup-oracle from its source (the replicas
// before the upgrade run it) and returns the binary.
func buildPrevious(t *testing.T, rev string) string {
	t.Helper()

	src := checkout(t, rev, "go.mod", "go.sum", "openapi.go", "openapi.yaml", "cmd", "server", "cache", "repo")
	bin := filepath.Join(t.TempDir(), "backup-oracle-"+rev)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, "./cmd/backup-oracle")
	cmd.Dir = src
	cmd.Env = append(withoutEnv(os.Environ(), "GOFLAGS"), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "build %s: %s", rev, out)

	return bin
}

// replicaEnv is a replica's environment: the rendered Deployment's, with the repository,
// password and state where this test keeps them instead of the pod's mounts.
func replicaEnv(t *testing.T, docs []manifest, repository, passwordFile string) []string {
	t.Helper()

	rendered := deploymentEnv(t, docs)
	require.Equal(t, "kopia-fs", rendered["BACKEND_TYPE"], "the upgrade runs on the default backend")

	local := map[string]string{
		"KOPIA_REPOSITORY_PATH": repository, "KOPIA_PASSWORD_FILE": passwordFile, "STATE_DIR": t.TempDir(),
	}

	env := make([]string, 0, len(rendered))

	for name, v := range rendered {
		if l, ok := local[name]; ok {
			v = l
		}

		if name != "PORT" { // the harness passes the listen address
			env = append(env, name+"="+v)
		}
	}

	return env
}

// helmStep runs a helm command against the stack and fails the test on an error.
func helmStep(t *testing.T, rel released, k *kube, args ...string) string {
	t.Helper()

	return mustCommand(t, rel.env, harness.Tool(t, "helm"), append(args, "--kubeconfig", k.kubeconfig)...)
}
