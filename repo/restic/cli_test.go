package restic_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness"
)

// resticCLI drives the real restic binary (RESTIC_BIN or PATH) to write test repositories.
type resticCLI struct {
	t   testing.TB
	bin string
	env []string
	src string // directory backed up
	// global holds options given before the command, e.g. --cacert.
	global []string
}

func newResticCLI(t testing.TB, s3 *harness.S3Server) *resticCLI {
	t.Helper()

	src := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(src, "file"), []byte("some data\n"), 0o600))

	env := append(os.Environ(), "RESTIC_CACHE_DIR="+t.TempDir())
	c := &resticCLI{t: t, bin: harness.Tool(t, "restic"), src: src}

	if s3 != nil {
		env = append(env, "AWS_ACCESS_KEY_ID="+s3.AccessKey, "AWS_SECRET_ACCESS_KEY="+s3.SecretKey)
		if s3.CAFile != "" {
			c.global = []string{"--cacert", s3.CAFile}
		}
	}

	c.env = env

	return c
}

func (c *resticCLI) run(password string, args ...string) {
	c.t.Helper()

	global := append([]string{"--no-cache", "-q"}, c.global...)
	cmd := exec.Command(c.bin, append(global, args...)...)
	cmd.Env = append(slices.Clone(c.env), "RESTIC_PASSWORD="+password)
	cmd.Dir = c.src

	out, err := cmd.CombinedOutput()
	require.NoError(c.t, err, "restic %s: %s", strings.Join(args, " "), out)
}

// init creates a repository of the given format version (1 or 2).
func (c *resticCLI) init(repository, password string, version int) {
	c.t.Helper()
	c.run(password, "-r", repository, "init", "--repository-version", map[int]string{1: "1", 2: "2"}[version])
}

// backup records a snapshot the way VolSync's mover does: host "volsync", plus tags.
func (c *resticCLI) backup(repository, password string, tags ...string) {
	c.t.Helper()

	args := []string{"-r", repository, "backup", "--host", "volsync"}
	for _, tag := range tags {
		args = append(args, "--tag", tag)
	}

	c.run(password, append(args, ".")...)
}
