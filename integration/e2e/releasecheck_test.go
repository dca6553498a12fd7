//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness"
)

// imagePlatforms are the platforms the image is released for (README, "Install").
var imagePlatforms = []string{"linux/amd64", "linux/arm64"} //nolint:gochecknoglobals // test table

// platformDigests reads the released image index and returns the digest of each platform's
// image; it requires exactly imagePlatforms.
func platformDigests(t *testing.T, rel released) map[string]string {
	t.Helper()

	var idx struct {
		MediaType string `json:"mediaType"`
		Manifests []struct {
			Digest   string `json:"digest"`
			Platform struct {
				OS           string `json:"os"`
				Architecture string `json:"architecture"`
			} `json:"platform"`
		} `json:"manifests"`
	}
	require.NoError(t, json.Unmarshal([]byte(mustCommand(t, rel.env, harness.Tool(t, "crane"), "manifest", rel.image+":"+rel.version)), &idx))
	require.Equal(t, "application/vnd.oci.image.index.v1+json", idx.MediaType, "the image tag is an OCI image index")

	out := map[string]string{}
	for _, m := range idx.Manifests {
		out[m.Platform.OS+"/"+m.Platform.Architecture] = m.Digest
	}

	want := make([]string, 0, len(out))
	for p := range out {
		want = append(want, p)
	}

	require.ElementsMatch(t, imagePlatforms, want, "the index's platforms")

	return out
}

// verifyRelease runs what README "Install" tells a user to run, against the registry: cosign
// verify of the image index, of each platform's image and of the chart, and of each platform's
// SBOM attestation, with the release's public key; each fails with another key.
func verifyRelease(t *testing.T, rel released) {
	cosign := harness.Tool(t, "cosign")
	digests := platformDigests(t, rel)

	refs := []string{rel.image + ":" + rel.version, rel.chart + ":" + rel.version}
	for _, p := range imagePlatforms {
		refs = append(refs, rel.image+"@"+digests[p])
	}

	for _, ref := range refs {
		out := mustCommand(t, rel.env, cosign, "verify", "--key", rel.key, "--insecure-ignore-tlog=true", ref)
		assert.Contains(t, out, `"docker-reference"`, "%s: cosign verify prints the verified claims", ref)

		_, err := command(rel.env, "", cosign, "verify", "--key", rel.other, "--insecure-ignore-tlog=true", ref)
		assert.Error(t, err, "%s: verified with a key that did not sign it", ref)
	}

	for _, p := range imagePlatforms {
		ref := rel.image + "@" + digests[p]
		out := mustCommand(t, rel.env, cosign, "verify-attestation", "--key", rel.key, "--insecure-ignore-tlog=true", "--type", "cyclonedx", ref)
		sbom := attestedSBOM(t, out)
		assert.Equal(t, "github.com/backup-oracle/backup-oracle", sbom.Metadata.Component.Name, "%s: the SBOM's subject", p)
		assert.Contains(t, sbom.property("cdx:gomod:build:env:GOARCH"), strings.TrimPrefix(p, "linux/"), "%s: the SBOM of that platform's build", p)
		assert.Contains(t, sbom.componentNames(), "github.com/gin-gonic/gin", "%s: the SBOM lists the HTTP framework the binary is built on", p)

		_, err := command(rel.env, "", cosign, "verify-attestation", "--key", rel.other, "--insecure-ignore-tlog=true", "--type", "cyclonedx", ref)
		assert.Error(t, err, "%s: attestation verified with a key that did not sign it", ref)
	}
}

// cycloneDX is the part of a CycloneDX document the test reads.
type cycloneDX struct {
	Metadata struct {
		Component struct {
			Name       string `json:"name"`
			Properties []struct {
				Name  string `json:"name"`
				Value string `json:"value"`
			} `json:"properties"`
		} `json:"component"`
		Properties []struct {
			Name  string `json:"name"`
			Value string `json:"value"`
		} `json:"properties"`
	} `json:"metadata"`
	Components []struct {
		Name string `json:"name"`
	} `json:"components"`
}

func (c cycloneDX) property(name string) []string {
	var out []string

	for _, p := range append(c.Metadata.Properties, c.Metadata.Component.Properties...) {
		if p.Name == name {
			out = append(out, p.Value)
		}
	}

	return out
}

func (c cycloneDX) componentNames() []string {
	out := make([]string, 0, len(c.Components))
	for _, x := range c.Components {
		out = append(out, x.Name)
	}

	return out
}

// attestedSBOM decodes cosign verify-attestation's output (one DSSE envelope per line) and
// returns the CycloneDX predicate of its in-toto statement.
func attestedSBOM(t *testing.T, out string) cycloneDX {
	t.Helper()

	line, _, _ := strings.Cut(strings.TrimSpace(out), "\n")

	var env struct {
		Payload string `json:"payload"`
	}
	require.NoError(t, json.Unmarshal([]byte(line), &env), out)

	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	require.NoError(t, err)

	var st struct {
		PredicateType string    `json:"predicateType"`
		Predicate     cycloneDX `json:"predicate"`
	}
	require.NoError(t, json.Unmarshal(payload, &st))
	assert.Equal(t, "https://cyclonedx.org/bom", st.PredicateType)

	return st.Predicate
}

// checkReleasedArtifacts checks that the pulled chart and the image of both platforms name one
// version, and the binaries are those of their platforms: the amd64 one says the version.
func checkReleasedArtifacts(t *testing.T, rel released) {
	helm, crane := harness.Tool(t, "helm"), harness.Tool(t, "crane")

	chart := mustCommand(t, rel.env, helm, "show", "chart", "oci://"+rel.chart, "--version", rel.version, "--plain-http")
	assert.Contains(t, chart, "\nversion: "+rel.version+"\n", "the pulled chart's version")
	assert.Contains(t, chart, "\nappVersion: "+rel.version+"\n", "the pulled chart's appVersion")
	assert.Contains(t, chart, "artifacthub.io/license: Apache-2.0", "the pulled chart's license")

	values := mustCommand(t, rel.env, helm, "show", "values", "oci://"+rel.chart, "--version", rel.version, "--plain-http")
	assert.Contains(t, values, "\n  repository: "+rel.image+"\n", "the packaged chart's default image is the registry's")

	for _, p := range imagePlatforms {
		var cfg struct {
			Architecture string `json:"architecture"`
			Config       struct {
				Entrypoint []string          `json:"Entrypoint"`
				User       string            `json:"User"`
				Labels     map[string]string `json:"Labels"`
			} `json:"config"`
		}
		require.NoError(t, json.Unmarshal([]byte(mustCommand(t, rel.env, crane, "config", "--platform", p, rel.image+":"+rel.version)), &cfg))
		assert.Equal(t, strings.TrimPrefix(p, "linux/"), cfg.Architecture)
		assert.Equal(t, []string{"/backup-oracle"}, cfg.Config.Entrypoint, p)
		assert.Equal(t, "568:568", cfg.Config.User, p)
		assert.Equal(t, rel.version, cfg.Config.Labels["org.opencontainers.image.version"], "%s: version label", p)
		assert.Equal(t, "Apache-2.0", cfg.Config.Labels["org.opencontainers.image.licenses"], "%s: license label", p)

		bin := exportedFile(t, rel, p, "backup-oracle")
		f, err := elf.Open(bin)
		require.NoError(t, err)
		assert.Equal(t, map[string]elf.Machine{"linux/amd64": elf.EM_X86_64, "linux/arm64": elf.EM_AARCH64}[p], f.Machine, p)
		require.NoError(t, f.Close())

		if p == "linux/amd64" {
			out := mustCommand(t, nil, bin, "--version")
			assert.True(t, strings.HasPrefix(out, "backup-oracle "+rel.version+" ("), "the released binary's --version: %s", out)
		}
	}
}

// exportedFile writes the file name of the platform's released image (crane export: the
// flattened filesystem) to a temporary file and returns its path.
func exportedFile(t *testing.T, rel released, platform, name string) string {
	t.Helper()

	fs := filepath.Join(t.TempDir(), "fs.tar")
	mustCommand(t, rel.env, harness.Tool(t, "crane"), "export", "--platform", platform, rel.image+":"+rel.version, fs)

	f, err := os.Open(fs)
	require.NoError(t, err)

	defer f.Close()

	tr := tar.NewReader(f)

	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			t.Fatalf("%s: no %s in the image", platform, name)
		}

		require.NoError(t, err)

		if filepath.Clean(h.Name) != name {
			continue
		}

		var b bytes.Buffer
		_, err = io.Copy(&b, tr) //nolint:gosec // the image under test
		require.NoError(t, err)

		out := filepath.Join(t.TempDir(), name)
		require.NoError(t, os.WriteFile(out, b.Bytes(), 0o755)) //nolint:gosec // an executable, run by the test

		return out
	}
}
