package integration

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"crypto/x509"
	"debug/elf"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness"
)

// imageConfig is the part of an OCI image configuration the tests read.
type imageConfig struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Config       struct {
		Entrypoint   []string            `json:"Entrypoint"`
		Cmd          []string            `json:"Cmd"`
		Env          []string            `json:"Env"`
		User         string              `json:"User"`
		WorkingDir   string              `json:"WorkingDir"`
		ExposedPorts map[string]struct{} `json:"ExposedPorts"`
		Labels       map[string]string   `json:"Labels"`
	} `json:"config"`
}

// imageLayout returns the OCI image layout `make image` wrote (IMAGE_OCI); missing, it skips
// locally and fails in CI.
func imageLayout(t *testing.T) string {
	t.Helper()

	p := os.Getenv("IMAGE_OCI")
	if p == "" {
		harness.Require(t, "IMAGE_OCI (run through `make test-go`, which runs `make image` first)")
	}

	return p
}

// ociDescriptor is the part of an OCI descriptor the tests read.
type ociDescriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Platform  *struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
	} `json:"platform,omitempty"`
}

// blobPath is where an OCI image layout keeps the blob of digest.
func blobPath(layout, digest string) string {
	return filepath.Join(layout, "blobs", strings.Replace(digest, ":", string(filepath.Separator), 1))
}

// imageIndex reads the layout's one entry, which must be an image index, and returns the
// descriptors of its images.
func imageIndex(t *testing.T, layout string) []ociDescriptor {
	t.Helper()

	var top struct{ Manifests []ociDescriptor }
	readJSON(t, filepath.Join(layout, "index.json"), &top)
	require.Len(t, top.Manifests, 1, "the layout holds one entry: the image index")
	require.Equal(t, "application/vnd.oci.image.index.v1+json", top.Manifests[0].MediaType)

	var idx struct{ Manifests []ociDescriptor }
	readJSON(t, blobPath(layout, top.Manifests[0].Digest), &idx)

	return idx.Manifests
}

// platformImage returns the configuration and the layer blobs of the index's image for
// linux/arch.
func platformImage(t *testing.T, layout, arch string) (imageConfig, []string) {
	t.Helper()

	for _, d := range imageIndex(t, layout) {
		if d.Platform == nil || d.Platform.OS != "linux" || d.Platform.Architecture != arch {
			continue
		}

		var m struct {
			Config ociDescriptor
			Layers []ociDescriptor
		}
		readJSON(t, blobPath(layout, d.Digest), &m)

		var cfg imageConfig
		readJSON(t, blobPath(layout, m.Config.Digest), &cfg)

		layers := make([]string, 0, len(m.Layers))
		for _, l := range m.Layers {
			layers = append(layers, blobPath(layout, l.Digest))
		}

		return cfg, layers
	}

	t.Fatalf("%s: no linux/%s image in the index", layout, arch)

	return imageConfig{}, nil
}

// unpackImage applies the layers of the index's linux/arch image in order into a new directory
// (owners and modes kept, so it must run as root) and returns it with the image configuration.
func unpackImage(t *testing.T, layout, arch string) (string, imageConfig) {
	t.Helper()

	cfg, layers := platformImage(t, layout, arch)

	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	require.NoError(t, os.MkdirAll(root, 0o755))
	require.NoError(t, os.Chmod(dir, 0o755)) // the unprivileged process must traverse it

	for _, l := range layers {
		extract(t, l, root, true)
	}

	return root, cfg
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()

	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, v))
}

// extract unpacks a tar (gzip-compressed when it says so) into dir.
func extract(t *testing.T, path, dir string, owners bool) {
	t.Helper()

	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()

	br := bufio.NewReader(f)

	var r io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		require.NoError(t, err)
		r = gz
	}

	tr := tar.NewReader(r)

	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}

		require.NoError(t, err)

		target := filepath.Join(dir, filepath.Clean("/"+h.Name))
		require.NoError(t, os.MkdirAll(filepath.Dir(target), 0o755))

		switch h.Typeflag {
		case tar.TypeDir:
			require.NoError(t, os.MkdirAll(target, 0o755))
		case tar.TypeReg:
			out, err := os.OpenFile(target, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
			require.NoError(t, err)
			_, err = io.Copy(out, tr) //nolint:gosec // our own image
			require.NoError(t, err)
			require.NoError(t, out.Close())
		case tar.TypeSymlink:
			require.NoError(t, os.Symlink(h.Linkname, target))
		default:
			t.Fatalf("%s: unexpected tar entry type %c", h.Name, h.Typeflag)
		}

		if h.Typeflag != tar.TypeSymlink {
			require.NoError(t, os.Chmod(target, h.FileInfo().Mode()))

			if owners {
				require.NoError(t, os.Lchown(target, h.Uid, h.Gid))
			}
		}
	}
}

// TestImageRuns unpacks the linux/amd64 image of the index `make image` built and runs its
// entrypoint from the unpacked root (chroot), as the image's user (568:568), with the image's
// environment and --demo: the binary alone, its CA certificates and its /state must be enough.
func TestImageRuns(t *testing.T) {
	layout := imageLayout(t)

	if os.Geteuid() != 0 {
		harness.Require(t, "root (the image is unpacked with its owners and run in a chroot as UID 568)")
	}

	root, cfg := unpackImage(t, layout, "amd64")

	assertImageConfig(t, cfg, "amd64")
	assertStaticELF(t, filepath.Join(root, "backup-oracle"), elf.EM_X86_64)

	for _, shell := range []string{"bin/sh", "bin/bash", "bin/busybox", "usr/bin/sh"} {
		_, err := os.Lstat(filepath.Join(root, shell))
		assert.True(t, os.IsNotExist(err), "no shell in the image: %s exists", shell)
	}

	pem, err := os.ReadFile(filepath.Join(root, "etc/ssl/certs/ca-certificates.crt"))
	require.NoError(t, err, "CA certificates")

	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(pem))
	assert.Greater(t, strings.Count(string(pem), "BEGIN CERTIFICATE"), 100, "Debian's Mozilla bundle")

	st, err := os.Stat(filepath.Join(root, "state"))
	require.NoError(t, err)
	assert.Equal(t, uint32(568), st.Sys().(*syscall.Stat_t).Uid, "/state belongs to 568") //nolint:forcetypeassert // linux

	version := exec.Command(cfg.Config.Entrypoint[0], "--version") //nolint:gosec // the image under test
	version.SysProcAttr = &syscall.SysProcAttr{Chroot: root, Credential: &syscall.Credential{Uid: 568, Gid: 568}}
	out, err := version.Output()
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(out), "backup-oracle "+cfg.Config.Labels["org.opencontainers.image.version"]+" ("),
		"--version %q names the version the image is labelled with", out)

	cmd := exec.Command(cfg.Config.Entrypoint[0], append(cfg.Config.Cmd, "--demo", "--listen-address", "127.0.0.1:0", "--log-format", "text")...) //nolint:gosec // the image under test
	cmd.Env = cfg.Config.Env
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root, Credential: &syscall.Credential{Uid: 568, Gid: 568}}

	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)

	stderr := &harness.SyncBuffer{}
	cmd.Stderr = stderr

	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	url := make(chan string, 1)

	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := regexp.MustCompile(`listening on (http://\S+)`).FindStringSubmatch(sc.Text()); m != nil {
				url <- m[1]
			}
		}
	}()

	var base string
	select {
	case base = <-url:
	case <-time.After(30 * time.Second):
		t.Fatalf("the image's entrypoint did not listen:\n%s", stderr.String())
	}

	require.Eventually(t, func() bool { return fetch(t, base+"/readyz").code == 200 }, 2*time.Minute, 100*time.Millisecond, "stderr:\n%s", stderr.String())

	res := fetch(t, base+"/exists/shop/postgres")
	assert.Equal(t, 200, res.code)
	assert.Contains(t, string(res.body), `"decision":"restore"`)

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), "exits 0 on SIGTERM")
}

// TestImageMatchesDockerfile: the Dockerfile (for people who build with Docker) and `make image`
// give the same binary flags, user, entrypoint, environment, port, labels and /state.
func TestImageMatchesDockerfile(t *testing.T) {
	cfg, _ := platformImage(t, imageLayout(t), "amd64")

	df := readFile(t, "../Dockerfile")
	mk := readFile(t, "../Makefile")

	stages := strings.Split(df, "\nFROM ")
	final := stages[len(stages)-1]

	// Build flags: the Dockerfile's go build and the Makefile's, with ${X} read as $(X).
	dockerBuild := regexp.MustCompile(`CGO_ENABLED=0 go build -trimpath\s*\\?\s*-ldflags "([^"]+)"`).FindStringSubmatch(df)
	require.NotNil(t, dockerBuild, "the Dockerfile builds with CGO_ENABLED=0 go build -trimpath -ldflags")

	makeFlags := regexp.MustCompile(`(?m)^LDFLAGS\s*:=\s*(.+)$`).FindStringSubmatch(mk)
	require.NotNil(t, makeFlags)
	assert.Equal(t, strings.TrimSpace(makeFlags[1]), regexp.MustCompile(`\$\{(\w+)\}`).ReplaceAllString(dockerBuild[1], "$$($1)"), "same -ldflags")
	assert.Contains(t, mk, `CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(IMAGE_DIR)/root/backup-oracle`, "make image builds the same way")
	assert.Contains(t, df, "GOOS=${TARGETOS} GOARCH=${TARGETARCH} CGO_ENABLED=0 go build", "the Dockerfile builds for the platform asked (docker buildx --platform)")

	user := regexp.MustCompile(`(?m)^USER (\S+)$`).FindStringSubmatch(final)
	require.NotNil(t, user)
	assert.Equal(t, user[1], cfg.Config.User)

	entry := regexp.MustCompile(`(?m)^ENTRYPOINT (\[.*\])$`).FindStringSubmatch(final)
	require.NotNil(t, entry)

	var ep []string
	require.NoError(t, json.Unmarshal([]byte(entry[1]), &ep))
	assert.Equal(t, ep, cfg.Config.Entrypoint)
	assert.Empty(t, cfg.Config.Cmd)

	var env []string
	for _, m := range regexp.MustCompile(`(?m)^ENV (\S+)$`).FindAllStringSubmatch(final, -1) {
		env = append(env, m[1])
	}

	sort.Strings(env)

	got := append([]string(nil), cfg.Config.Env...)
	sort.Strings(got)
	assert.Equal(t, env, got, "same environment (the distroless base adds PATH, which a static binary without a shell never uses)")

	expose := regexp.MustCompile(`(?m)^EXPOSE (\d+)$`).FindStringSubmatch(final)
	require.NotNil(t, expose)
	assert.Equal(t, map[string]struct{}{expose[1] + "/tcp": {}}, cfg.Config.ExposedPorts)

	var labels []string
	for _, m := range regexp.MustCompile(`(org\.opencontainers\.image\.\w+)=`).FindAllStringSubmatch(final, -1) {
		labels = append(labels, m[1])
	}

	var imageLabels []string
	for k := range cfg.Config.Labels {
		imageLabels = append(imageLabels, k)
	}

	sort.Strings(labels)
	sort.Strings(imageLabels)
	assert.Equal(t, labels, imageLabels, "same labels")

	assert.Contains(t, final, "COPY --from=build --chown=568:568 /out/state /state", "/state owned by 568 in both")
	assert.Contains(t, mk, "--owner=568 --group=568", "make image's /state layer is owned by 568")
}

func readFile(t *testing.T, path string) string {
	t.Helper()

	b, err := os.ReadFile(path)
	require.NoError(t, err)

	return string(b)
}
