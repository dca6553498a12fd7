package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness"
)

// compatibleLicenses are the SPDX identifiers under which a module may be compiled into the
// Apache-2.0 binary and image we distribute: permissive licenses (their notices kept), and
// MPL-2.0, whose copyleft is per file (we ship its files unmodified; their source is public).
// Strong copyleft (GPL, LGPL: static linking, AGPL) and unknown licenses are not on it.
var compatibleLicenses = map[string]bool{ //nolint:gochecknoglobals // the policy, in one place
	"Apache-2.0": true, "MIT": true, "BSD-2-Clause": true, "BSD-3-Clause": true,
	// golang.org/x/...: the Go project's BSD-3-Clause text, which go-license-detector reports
	// under this closest SPDX name.
	"BSD-Source-Code": true,
	"ISC":             true, "0BSD": true, "Zlib": true, "CC0-1.0": true, "Unlicense": true, "MPL-2.0": true,
}

// reviewedLicenses are modules whose license the scanner cannot tell, read by hand: module ->
// SPDX identifier and where it says so. Empty: the scanner tells every module's license.
var reviewedLicenses = map[string]string{} //nolint:gochecknoglobals // the reviewed exceptions

// sbomComponent is the part of a CycloneDX component the license check reads.
type sbomComponent struct {
	Name     string `json:"name"`
	Version  string `json:"version"`
	Licenses []struct {
		License struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"license"`
	} `json:"licenses"`
	Evidence struct {
		Licenses []struct {
			License struct {
				ID   string `json:"id"`
				Name string `json:"name"`
			} `json:"license"`
		} `json:"licenses"`
	} `json:"evidence"`
}

// licenses returns the SPDX identifiers (or names) stated or detected for the component.
func (c sbomComponent) licenses() []string {
	var out []string

	for _, l := range c.Licenses {
		out = append(out, l.License.ID+l.License.Name)
	}

	for _, l := range c.Evidence.Licenses {
		out = append(out, l.License.ID+l.License.Name)
	}

	return out
}

// TestDependencyLicenses reads the SBOMs `make sbom` wrote for each platform's binary (the
// licenses cyclonedx-gomod detected in every module compiled into it) and fails on a module
// without a license or with one not compatible with distributing the binary under Apache-2.0.
// It logs the count per license (README, "License").
func TestDependencyLicenses(t *testing.T) {
	dir := os.Getenv("SBOM_DIR")
	if dir == "" {
		harness.Require(t, "SBOM_DIR (run through `make test-go`, which runs `make sbom` first)")
	}

	files, err := filepath.Glob(filepath.Join(dir, "backup-oracle-linux-*.cdx.json"))
	require.NoError(t, err)
	require.Len(t, files, 2, "one SBOM per platform (amd64, arm64)")

	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			var bom struct {
				Components []sbomComponent `json:"components"`
			}
			readJSON(t, f, &bom)
			require.Greater(t, len(bom.Components), 20, "the binary's modules")

			count := map[string]int{}

			for _, c := range bom.Components {
				ids := c.licenses()
				if reviewed, ok := reviewedLicenses[c.Name]; ok && len(ids) == 0 {
					ids = []string{reviewed}
				}

				if !assert.NotEmpty(t, ids, "%s %s: no license detected; read it and add it to reviewedLicenses", c.Name, c.Version) {
					continue
				}

				// Several detected texts: the module is offered under each (or the detector hesitates
				// between close texts); one compatible is enough, an incompatible one is named.
				if !slices.ContainsFunc(ids, func(id string) bool { return compatibleLicenses[id] }) {
					t.Errorf("%s %s: license %v is not compatible with distributing the binary under Apache-2.0", c.Name, c.Version, ids)
				}

				count[strings.Join(ids, " or ")]++
			}

			t.Logf("%d modules: %s", len(bom.Components), summarize(count))
		})
	}
}

func summarize(count map[string]int) string {
	keys := make([]string, 0, len(count))
	for k := range count {
		keys = append(keys, k)
	}

	sort.Slice(keys, func(i, j int) bool {
		return count[keys[i]] > count[keys[j]] || count[keys[i]] == count[keys[j]] && keys[i] < keys[j]
	})

	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, count[k]))
	}

	return strings.Join(parts, ", ")
}
