package harness

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// ResticCLI drives the real restic CLI (RESTIC_BIN or PATH) to write test repositories the way
// VolSync's restic mover does.
type ResticCLI struct {
	t   testing.TB
	bin string
	env []string
	// Src is the directory backed up; it holds one small file. Its path ends in /data, so the
	// snapshots record a path containing "/data" as VolSync's restic mover's do (it backs up its
	// volume mounted at /data, and restores only snapshots whose path contains "/data":
	// repo/restic's moverRestores).
	Src string
	// global holds options given before the command, e.g. --cacert.
	global []string
}

// NewResticCLI returns a driver; s3, when not nil, supplies credentials and CA.
func NewResticCLI(t testing.TB, s3 *S3Server) *ResticCLI {
	t.Helper()

	src := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(src, 0o700); err != nil {
		t.Fatal(err)
	}

	if err := os.WriteFile(filepath.Join(src, "file"), []byte("some data\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	c := &ResticCLI{t: t, bin: Tool(t, "restic"), Src: src, env: append(os.Environ(), "RESTIC_CACHE_DIR="+t.TempDir())}

	if s3 != nil {
		c.env = append(c.env, "AWS_ACCESS_KEY_ID="+s3.AccessKey, "AWS_SECRET_ACCESS_KEY="+s3.SecretKey)
		if s3.CAFile != "" {
			c.global = []string{"--cacert", s3.CAFile}
		}
	}

	return c
}

// Run runs one restic command with the password; it fails the test on error.
func (c *ResticCLI) Run(password string, args ...string) {
	c.t.Helper()
	c.Output(password, args...)
}

// Output runs one restic command with the password and returns its standard output; it fails
// the test on error.
func (c *ResticCLI) Output(password string, args ...string) []byte {
	c.t.Helper()

	global := append([]string{"--no-cache", "-q"}, c.global...)
	cmd := exec.Command(c.bin, append(global, args...)...) //nolint:gosec // test tool
	cmd.Env = append(slices.Clone(c.env), "RESTIC_PASSWORD="+password)
	cmd.Dir = c.Src

	var stderr strings.Builder
	cmd.Stderr = &stderr

	out, err := cmd.Output()
	if err != nil {
		c.t.Fatalf("restic %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}

	return out
}

// Init creates a repository of the given format version ("1" or "2").
func (c *ResticCLI) Init(repository, password, version string) {
	c.t.Helper()
	c.Run(password, "-r", repository, "init", "--repository-version", version)
}

// Backup records a snapshot as the mover does: host "volsync", the given tags.
func (c *ResticCLI) Backup(repository, password string, tags ...string) {
	c.t.Helper()

	args := make([]string, 0, 6+2*len(tags))
	args = append(args, "-r", repository, "backup", "--host", "volsync")

	for _, tag := range tags {
		args = append(args, "--tag", tag)
	}

	c.Run(password, append(args, ".")...)
}

// BackupFrom records a snapshot of dir (restic records its absolute path) with the given host
// and tags, as another tool than VolSync's mover would.
func (c *ResticCLI) BackupFrom(repository, password, dir, host string, tags ...string) {
	c.t.Helper()

	args := make([]string, 0, 6+2*len(tags))
	args = append(args, "-r", repository, "backup", "--host", host)

	for _, tag := range tags {
		args = append(args, "--tag", tag)
	}

	global := append([]string{"--no-cache", "-q"}, c.global...)
	cmd := exec.Command(c.bin, append(append(global, args...), ".")...) //nolint:gosec // test tool
	cmd.Env = append(slices.Clone(c.env), "RESTIC_PASSWORD="+password)
	cmd.Dir = dir

	if out, err := cmd.CombinedOutput(); err != nil {
		c.t.Fatalf("restic backup of %s: %v\n%s", dir, err, out)
	}
}
