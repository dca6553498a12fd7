package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDockerfileCopiesEveryPackage: no Docker engine runs here, so guard the one way the image
// build breaks silently: a package the binary imports that the Dockerfile does not copy.
func TestDockerfileCopiesEveryPackage(t *testing.T) {
	df, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	require.NoError(t, err)

	out, err := exec.CommandContext(context.Background(), "go", "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	require.NoError(t, err)

	const module = "github.com/backup-oracle/backup-oracle/"

	for _, pkg := range strings.Fields(string(out)) {
		if pkg == strings.TrimSuffix(module, "/") { // the root package: what it embeds
			assert.Contains(t, string(df), "COPY openapi.go openapi.yaml ./", "the image build needs the root package (the embedded OpenAPI spec)")
			continue
		}

		rel, ok := strings.CutPrefix(pkg, module)
		if !ok {
			continue
		}

		top := strings.SplitN(rel, "/", 2)[0]
		assert.Contains(t, string(df), "COPY "+top+" ./"+top, "the image build needs %s (imported as %s)", top, pkg)
	}
}
