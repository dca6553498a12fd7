package policies_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// Both policy sets cover every layout, mover and mode the chart renders (chart/test/helm_test.go,
// policySets): policies/<dir> of the ClusterPolicy set has policies/<dir>-cel of the CEL set (the
// defaults: clusterpolicy and cel), and tests/<dir>/<suite> has tests/<dir>-cel/<suite> with the
// same cases, except those written below with the reason the other set cannot have them.

// long100 is the 100-character PVC name of the suites: the ClusterPolicy set restores it, the
// CEL set denies names over 63 characters.
const long100 = "analytics-warehouse-columnar-storage-shard-analytics-warehouse-columnar-storage-shard-analytics-warz"

const (
	// whyLong: policies README, "Long names".
	whyLong = "the CEL set denies names over 63 characters: Kyverno 1.19.1's GeneratingPolicy writes the PVC's name into a label of what it generates"
	// whyUnchanged: a patched assertion of a PVC left as it came.
	whyUnchanged = "the MutatingPolicy reports pass with the PVC unchanged where the ClusterPolicy's mutate rule is skipped by its precondition (asserted as skip)"
	// whyNotMatched: policies README, "Known limits of the CLI".
	whyNotMatched = "the CLI reports nothing for a GeneratingPolicy whose matchConditions exclude a PVC, so not generating is asserted by the ClusterPolicy suite only"
)

// setOnlySuites are suites of one set without a counterpart in the other, with why.
var setOnlySuites = map[string]string{
	"clusterpolicy/stale-rd": "the stale-RD check is in the ClusterPolicy set only: in the CEL set it needs resource.List, which the CLI serves only with clusterResources, and then ignores apiCallResponses; the CEL set relies on the RD's ownerReference",
	"cel/cleanup":            "kyverno test does not run a ClusterCleanupPolicy; make e2e runs both sets' cleanup with Kyverno's real cleanup controller",
}

// setOnlyCases are cases of one set's suite ("<set>/<suite>: <case>", see suiteCases) without a
// counterpart in the other set's, with why.
var setOnlyCases = map[string]string{
	"clusterpolicy/admission: " + long100 + " patched to patched-long100.yaml":               whyLong,
	"clusterpolicy/generate-create: " + long100:                                              whyLong,
	"clusterpolicy/generate-create: " + long100 + " generates generated/rd-long100.yaml":     whyLong,
	"clusterpolicy/generate-create: " + long100 + " generates generated/secret-long100.yaml": whyLong,
	"clusterpolicy/generate-bound: " + long100:                                               whyLong,
	"clusterpolicy/generate-bound: " + long100 + " generates generated/rs-long100.yaml":      whyLong,
	"clusterpolicy/generate-bound: " + long100 + " generates generated/secret-long100.yaml":  whyLong,
	"clusterpolicy/generate-create: fresh-app":                                               whyNotMatched,
	"cel/admission: fresh-app patched to unchanged-fresh-app.yaml":                           whyUnchanged,
	"cel/admission: unknown-app patched to unchanged-unknown-app.yaml":                       whyUnchanged,
	"cel/near-miss: redis-accepted patched to unchanged-redis-accepted.yaml":                 whyUnchanged,
	"cel/not-ready: my-app patched to pvc-down.yaml":                                         whyUnchanged,
	"app-layout-cel/admission: new-app patched to app-layout-unchanged-new-app.yaml":         whyUnchanged,
}

// counterpart is the other set's directory of a set directory.
func counterpart(dir string) string {
	switch {
	case dir == "clusterpolicy":
		return "cel"
	case dir == "cel":
		return "clusterpolicy"
	case strings.HasSuffix(dir, "-cel"):
		return strings.TrimSuffix(dir, "-cel")
	default:
		return dir + "-cel"
	}
}

// suite is the part of a kyverno test suite that says what it tests.
type suite struct {
	Policies []string `yaml:"policies"`
	Results  []struct {
		Resources         []string `yaml:"resources"`
		GeneratedResource string   `yaml:"generatedResource"`
		PatchedResources  string   `yaml:"patchedResources"`
	} `yaml:"results"`
}

// suiteCases reads tests/<name>/kyverno-test.yaml: its cases (each resource a result names, and
// each generated or patched resource asserted for it) and the policy files it loads.
func suiteCases(t *testing.T, name string) (cases, policies []string) {
	t.Helper()

	raw, err := os.ReadFile(filepath.Join("tests", name, "kyverno-test.yaml"))
	require.NoError(t, err)

	var s suite
	require.NoError(t, yaml.Unmarshal(raw, &s), name)

	fixture := func(path string) string { return strings.TrimPrefix(path, "../../fixtures/") }

	for _, r := range s.Results {
		for _, res := range r.Resources {
			cases = append(cases, res)
			if r.GeneratedResource != "" {
				cases = append(cases, res+" generates "+fixture(r.GeneratedResource))
			}

			if r.PatchedResources != "" {
				cases = append(cases, res+" patched to "+fixture(r.PatchedResources))
			}
		}
	}

	slices.Sort(cases)

	return slices.Compact(cases), s.Policies
}

// renderedSets lists the directories of rendered policies (policies/<dir>/*.yaml).
func renderedSets(t *testing.T) []string {
	t.Helper()

	files, err := filepath.Glob("*/*.yaml")
	require.NoError(t, err)

	dirs := make([]string, 0, len(files))
	for _, f := range files {
		dirs = append(dirs, filepath.Dir(f))
	}

	slices.Sort(dirs)

	return slices.Compact(dirs)
}

// suiteNames lists the kyverno test suites as <dir>/<suite> (tests/<dir>/<suite>/kyverno-test.yaml).
func suiteNames(t *testing.T) []string {
	t.Helper()

	files, err := filepath.Glob("tests/*/*/kyverno-test.yaml")
	require.NoError(t, err)

	names := make([]string, 0, len(files))
	for _, f := range files {
		names = append(names, filepath.ToSlash(strings.TrimPrefix(filepath.Dir(f), "tests"+string(filepath.Separator))))
	}

	slices.Sort(names)

	return names
}

// TestSetsCoverTheSameLayouts: every directory of rendered policies has its counterpart of the
// other set, and kyverno test suites; each suite tests its own directory's policies.
func TestSetsCoverTheSameLayouts(t *testing.T) {
	rendered := renderedSets(t)
	require.NotEmpty(t, rendered)

	suites := suiteNames(t)

	for _, dir := range rendered {
		assert.Contains(t, rendered, counterpart(dir), "policies/%s has no counterpart of the other set (chart/test/helm_test.go, policySets)", dir)
		assert.True(t, slices.ContainsFunc(suites, func(s string) bool { return strings.HasPrefix(s, dir+"/") }),
			"policies/%s has no kyverno test suite under tests/%s", dir, dir)
	}

	for _, s := range suites {
		_, policies := suiteCases(t, s)
		dir, _, _ := strings.Cut(s, "/")

		assert.Contains(t, rendered, dir, "tests/%s tests no rendered set", s)

		for _, p := range policies {
			assert.True(t, strings.HasPrefix(p, "../../../"+dir+"/"), "tests/%s loads %s, not a policy of policies/%s", s, p, dir)
		}
	}
}

// TestSetsHaveTheSameCases: a case (a resource a result names, or a resource generated or
// patched for it) in one set's suite is in the other set's counterpart suite, unless
// setOnlySuites or setOnlyCases say why it cannot be; an exception that no longer holds fails.
func TestSetsHaveTheSameCases(t *testing.T) {
	suites := suiteNames(t)
	require.NotEmpty(t, suites)

	usedSuites, usedCases := map[string]bool{}, map[string]bool{}

	for _, s := range suites {
		dir, name, _ := strings.Cut(s, "/")
		other := counterpart(dir) + "/" + name

		if !slices.Contains(suites, other) {
			if _, ok := setOnlySuites[s]; ok {
				usedSuites[s] = true
			} else {
				t.Errorf("tests/%s has no counterpart tests/%s: write it, or say in setOnlySuites why the other set cannot have it", s, other)
			}

			continue
		}

		mine, _ := suiteCases(t, s)
		theirs, _ := suiteCases(t, other)

		for _, c := range mine {
			if slices.Contains(theirs, c) {
				continue
			}

			key := s + ": " + c
			if _, ok := setOnlyCases[key]; ok {
				usedCases[key] = true
			} else {
				t.Errorf("tests/%s has the case %q, tests/%s does not: add it there, or say in setOnlyCases why the other set cannot have it", s, c, other)
			}
		}
	}

	for s := range setOnlySuites {
		assert.True(t, usedSuites[s], "setOnlySuites names %s, which is not (or no longer) a suite of one set only", s)
	}

	for c := range setOnlyCases {
		assert.True(t, usedCases[c], "setOnlyCases names %q, which is not (or no longer) a case of one set only", c)
	}
}
