package integration

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// imageLicense is the SPDX identifier of the project's license (LICENSE: Apache License 2.0).
const imageLicense = "Apache-2.0"

// assertImageConfig checks what every image of the index shares, and its platform: user,
// entrypoint, environment, port, OCI labels (the version is the one `make image` built, the
// license the chart's).
func assertImageConfig(t *testing.T, cfg imageConfig, arch string) {
	t.Helper()

	assert.Equal(t, "568:568", cfg.Config.User, "non-root: the VolSync mover's UID/GID")
	assert.Equal(t, []string{"/backup-oracle"}, cfg.Config.Entrypoint)
	assert.Empty(t, cfg.Config.Cmd)
	assert.Contains(t, cfg.Config.Env, "STATE_DIR=/state")
	assert.Contains(t, cfg.Config.ExposedPorts, "8080/tcp")
	assert.Equal(t, "linux", cfg.OS)
	assert.Equal(t, arch, cfg.Architecture)

	for _, l := range []string{"org.opencontainers.image.version", "org.opencontainers.image.revision", "org.opencontainers.image.source", "org.opencontainers.image.title"} {
		assert.NotEmpty(t, cfg.Config.Labels[l], "label %s", l)
	}

	if v := os.Getenv("IMAGE_VERSION"); v != "" {
		assert.Equal(t, v, cfg.Config.Labels["org.opencontainers.image.version"], "the version make image built")
	}

	assert.Equal(t, imageLicense, cfg.Config.Labels["org.opencontainers.image.licenses"])

	chart := readFile(t, "../chart/Chart.yaml")
	m := regexp.MustCompile(`(?m)^\s+artifacthub\.io/license:\s*(\S+)\s*$`).FindStringSubmatch(chart)
	require.NotNil(t, m, "chart/Chart.yaml names its license (artifacthub.io/license)")
	assert.Equal(t, imageLicense, m[1], "the chart's license annotation")
}

// assertStaticELF checks that path is an ELF executable for machine without a program
// interpreter or shared libraries (CGO_ENABLED=0: nothing in the image could load them).
func assertStaticELF(t *testing.T, path string, machine elf.Machine) {
	t.Helper()

	f, err := elf.Open(path)
	require.NoError(t, err)

	defer f.Close()

	assert.Equal(t, machine, f.Machine, "%s", path)
	assert.Equal(t, elf.ET_EXEC, f.Type, "%s: an executable", path)

	for _, p := range f.Progs {
		assert.NotEqual(t, elf.PT_INTERP, p.Type, "%s: static, no program interpreter", path)
	}

	libs, err := f.ImportedLibraries()
	require.NoError(t, err)
	assert.Empty(t, libs, "%s: no shared libraries", path)
}

// TestImageArm64 checks the index's linux/arm64 image without running it (no arm64 CPU here):
// the same configuration as amd64's, an arm64 static executable at the entrypoint owned by
// root and executable by all, /state owned by 568, the same files otherwise.
func TestImageArm64(t *testing.T) {
	layout := imageLayout(t)

	amd, amdLayers := platformImage(t, layout, "amd64")
	arm, armLayers := platformImage(t, layout, "arm64")

	assertImageConfig(t, arm, "arm64")
	assert.Equal(t, amd.Config, arm.Config, "same entrypoint, user, environment, port and labels on both architectures")

	bin := layerEntries(t, armLayers)
	exe, ok := bin["backup-oracle"]
	require.True(t, ok, "the entrypoint /backup-oracle is in the arm64 image")
	assert.Equal(t, 0, exe.hdr.Uid)
	assert.Equal(t, int64(0o755), exe.hdr.Mode&0o7777)

	path := filepath.Join(t.TempDir(), "backup-oracle")
	require.NoError(t, os.WriteFile(path, exe.body, 0o600))
	assertStaticELF(t, path, elf.EM_AARCH64)

	state, ok := bin["state"]
	require.True(t, ok, "/state")
	assert.Equal(t, 568, state.hdr.Uid, "/state belongs to 568")

	amdFiles := layerEntries(t, amdLayers)
	assert.Len(t, bin, len(amdFiles), "the same files on both architectures")

	for name, e := range amdFiles {
		if name == "backup-oracle" {
			assert.NotEqual(t, e.body, exe.body, "each architecture has its own binary")
			continue
		}

		assert.Equal(t, e.body, bin[name].body, "%s: the same on both architectures", name)
	}
}

// TestImageTarballIsAmd64: bin/backup-oracle-image.tar (for docker load) holds the index's
// linux/amd64 image, not another build.
func TestImageTarballIsAmd64(t *testing.T) {
	layout := imageLayout(t)

	p := os.Getenv("IMAGE_TAR")
	if p == "" {
		t.Fatal("IMAGE_TAR is not set (make test-go sets it with IMAGE_OCI)")
	}

	outer := t.TempDir()
	extract(t, p, outer, false)

	var manifest []struct{ Config string }
	readJSON(t, filepath.Join(outer, "manifest.json"), &manifest)
	require.Len(t, manifest, 1)

	for _, d := range imageIndex(t, layout) {
		if d.Platform != nil && d.Platform.Architecture == "amd64" {
			var m struct{ Config ociDescriptor }
			readJSON(t, blobPath(layout, d.Digest), &m)
			assert.Equal(t, m.Config.Digest, manifest[0].Config, "the tarball's image configuration is the amd64 image's (same digest)")
		}
	}
}

// layerEntry is one file or directory of an image's layers.
type layerEntry struct {
	hdr  *tar.Header
	body []byte
}

// layerEntries reads the layers' tar streams (gzip-compressed) into a map by clean path, later
// layers overriding earlier ones.
func layerEntries(t *testing.T, layers []string) map[string]layerEntry {
	t.Helper()

	out := map[string]layerEntry{}

	for _, l := range layers {
		f, err := os.Open(l)
		require.NoError(t, err)

		gz, err := gzip.NewReader(bufio.NewReader(f))
		require.NoError(t, err)

		tr := tar.NewReader(gz)

		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}

			require.NoError(t, err)

			var body bytes.Buffer
			_, err = io.Copy(&body, tr) //nolint:gosec // our own image
			require.NoError(t, err)

			name := filepath.Clean(h.Name)
			if name == "." {
				continue
			}

			out[name] = layerEntry{hdr: h, body: body.Bytes()}
		}

		require.NoError(t, f.Close())
	}

	return out
}
