package harness

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// KopiaCLI drives the real kopia CLI against one filesystem repository, the way VolSync's
// Kopia mover writes it.
type KopiaCLI struct {
	t        testing.TB
	bin      string
	Path     string
	Password string
	config   string
	// Env is added to every command's environment, e.g. KOPIA_UPGRADE_LOCK_ENABLED=1.
	Env []string
	// UID, when non-zero, runs the commands as that user (requires root).
	UID uint32
}

// NewKopiaRepository creates a repository at path with the real kopia CLI; createArgs are added
// to `kopia repository create filesystem`, e.g. "--format-version=1".
func NewKopiaRepository(t testing.TB, path, password string, createArgs ...string) *KopiaCLI {
	t.Helper()

	return NewKopiaRepositoryAs(t, 0, path, password, createArgs...)
}

// NewKopiaRepositoryAs is NewKopiaRepository with every command run as uid (0: this process's
// user). The parent directory of path must be writable by uid.
func NewKopiaRepositoryAs(t testing.TB, uid uint32, path, password string, createArgs ...string) *KopiaCLI {
	t.Helper()

	dir := t.TempDir()

	if uid != 0 { // t.TempDir's parent is private to this user
		d, err := os.MkdirTemp("", "kopia-cli-")
		if err != nil {
			t.Fatal(err)
		}

		t.Cleanup(func() { _ = os.RemoveAll(d) })

		if err := os.Chown(d, int(uid), int(uid)); err != nil {
			t.Fatal(err)
		}

		dir = d
	}

	k := &KopiaCLI{t: t, bin: Tool(t, "kopia"), Path: path, Password: password, UID: uid,
		config: filepath.Join(dir, "kopia.config")}
	k.Run(append([]string{"repository", "create", "filesystem", "--path", path}, createArgs...)...)

	return k
}

// NewKopiaS3Repository creates a repository in bucket on s3 with the real kopia CLI (over TLS,
// trusting the server's certificate, when s3 was started by StartS3TLS); createArgs are added to
// `kopia repository create s3`, e.g. "--prefix=volsync/".
func NewKopiaS3Repository(t testing.TB, s3 *S3Server, bucket, password string, createArgs ...string) *KopiaCLI {
	t.Helper()

	k := &KopiaCLI{t: t, bin: Tool(t, "kopia"), Path: "s3:" + bucket, Password: password,
		config: filepath.Join(t.TempDir(), "kopia.config")}

	tls := []string{"--disable-tls"}
	if s3.CAFile != "" {
		tls = []string{"--root-ca-pem-path", s3.CAFile}
	}

	k.Run(append(append([]string{"repository", "create", "s3", "--bucket", bucket, "--endpoint", s3.Endpoint,
		"--access-key", s3.AccessKey, "--secret-access-key", s3.SecretKey}, tls...), createArgs...)...)

	return k
}

// Run runs one kopia command with the repository's config and password; it fails the test on
// error.
func (k *KopiaCLI) Run(args ...string) string {
	k.t.Helper()

	out, err := k.Try(args...)
	if err != nil {
		k.t.Fatalf("kopia %v: %v\n%s", args, err, out)
	}

	return out
}

// Try runs one kopia command and returns its combined output and error.
func (k *KopiaCLI) Try(args ...string) (string, error) {
	cmd := exec.Command(k.bin, append(args, "--config-file", k.config)...) //nolint:gosec // test tool
	if k.UID != 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: k.UID, Gid: k.UID}}
	}

	cmd.Env = append(append(os.Environ(),
		"KOPIA_PASSWORD="+k.Password, "KOPIA_CHECK_FOR_UPDATES=false", "KOPIA_USE_KEYRING=false",
		"KOPIA_PERSIST_CREDENTIALS_ON_CONNECT=false", "HOME="+filepath.Dir(k.config)), k.Env...)

	out, err := cmd.CombinedOutput()

	return string(out), err
}

// Snapshot snapshots dir as source ("user@host:/path"), as the mover does with --override-source.
func (k *KopiaCLI) Snapshot(dir, source string) {
	k.t.Helper()
	k.Run("snapshot", "create", dir, "--override-source", source, "--description", "backup-oracle test")
}
