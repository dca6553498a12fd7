//go:build kyvernocli

package policies_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// missingTestFields are the fields of the kyverno test format a version's CLI does not know
// (apiCallResponses, the mocked oracle, and results[].operation, UPDATE, are 1.19 CLI fields): a
// suite using one fails to load with `unknown field "<field>"`. They are limits of the CLI's test
// format, not of the policies: the same behaviour runs on that version's real controllers in
// `make e2e`.
var missingTestFields = map[string][]string{
	"v1.17.2": {"apiCallResponses", "operation"},
	"v1.18.2": {"apiCallResponses", "operation"},
	"v1.19.1": nil,
}

// otherCLILimits are the other suites a version's CLI cannot run, each with the part of the
// CLI's output that says why.
var otherCLILimits = map[string]map[string]string{
	// The CLI does not resolve VolSync kinds from the ClusterResource's CRDs, nor lists PVCs from
	// its resources, for a DeletingPolicy.
	"v1.17.2": {"cel/cleanup": `no matches for kind "ReplicationSource" in version "volsync.backube/v1alpha1"`},
	// The 1.18 CLI does not list PVCs from the suite's resources for a DeletingPolicy.
	"v1.18.2": {"cel/cleanup": `failed to list resource: persistentvolumeclaims resource not found`},
	"v1.19.1": {},
}

// fieldUse finds a test-format field as a YAML key in a suite (top level or in a result).
var fieldUse = regexp.MustCompile(`(?m)^\s*-?\s*(apiCallResponses|operation):`)

// cliLimits returns, for a version, the suites its CLI cannot run, each with the part of the
// CLI's output that says why: the suites using a field the CLI does not know (the first one in
// the file, which the CLI reports), and otherCLILimits. A limited suite must still fail for
// exactly that reason, so a CLI that learns the feature shows up here. known is false for a
// version without stated limits.
func cliLimits(version string, suites []string) (limits map[string]string, known bool) {
	fields, ok1 := missingTestFields[version]
	other, ok2 := otherCLILimits[version]
	if !ok1 || !ok2 {
		return nil, false
	}

	limits = map[string]string{}

	for _, suite := range suites {
		raw, err := os.ReadFile(filepath.Join("tests", suite, "kyverno-test.yaml"))
		if err != nil {
			continue // reported by the run
		}

		for _, m := range fieldUse.FindAllStringSubmatch(string(raw), -1) {
			if slices.Contains(fields, m[1]) {
				limits[suite] = `unknown field "` + m[1] + `"`
				break
			}
		}
	}

	for suite, why := range other {
		limits[suite] = why
	}

	return limits, true
}

var passed = regexp.MustCompile(`Test Summary: ([1-9][0-9]*) tests passed and 0 tests failed`)

// TestKyvernoTestSuites runs every suite under tests/ (a directory holding kyverno-test.yaml)
// with the CLI of every Kyverno version of KYVERNO_BINS ("<version>=<folder> ...", set by
// make test-policies): each passes, or is one of cliLimits and fails for its stated reason.
func TestKyvernoTestSuites(t *testing.T) {
	env := os.Getenv("KYVERNO_BINS")
	if env == "" {
		t.Fatal("KYVERNO_BINS is not set: run `make test-policies`")
	}

	files, err := filepath.Glob("tests/*/*/kyverno-test.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no suites under tests/: %v", err)
	}

	suites := make([]string, 0, len(files))
	for _, f := range files {
		suites = append(suites, strings.TrimPrefix(filepath.Dir(f), "tests/"))
	}

	var versions []string

	for _, entry := range strings.Fields(env) {
		version, dir, ok := strings.Cut(entry, "=")
		if !ok {
			t.Fatalf("KYVERNO_BINS entry %q is not <version>=<folder>", entry)
		}

		versions = append(versions, version)

		limits, known := cliLimits(version, suites)
		if !known {
			t.Errorf("Kyverno %s has no entry in missingTestFields and otherCLILimits: state what its CLI cannot run (or nothing)", version)

			continue
		}

		for suite := range otherCLILimits[version] {
			if !slices.Contains(suites, suite) {
				t.Errorf("otherCLILimits[%s] names %s, which is not a suite", version, suite)
			}
		}

		t.Run(version, func(t *testing.T) {
			runSuites(t, filepath.Join(dir, "kubectl-kyverno"), ".", suites, limits)
		})
	}

	for version := range missingTestFields {
		if !slices.Contains(versions, version) {
			t.Errorf("missingTestFields has Kyverno %s, which the Makefile (KYVERNO_VERSIONS) does not pin", version)
		}
	}
}

// runSuites runs, in one CLI invocation, every suite without a limit (they must all pass), then
// the limited ones: together first, which reports every suite the CLI cannot load with its
// error, then one by one those that load (their limit shows when they run).
func runSuites(t *testing.T, cli, root string, suites []string, limits map[string]string) {
	t.Helper()

	var ok, limited []string

	for _, suite := range suites {
		if _, l := limits[suite]; l {
			limited = append(limited, suite)
		} else {
			ok = append(ok, suite)
		}
	}

	if len(ok) > 0 {
		out, err := kyvernoTest(cli, root, ok...)
		m := passed.FindStringSubmatch(out)
		if err != nil || m == nil {
			t.Fatalf("kyverno test %v: %v\n%s", ok, err, out)
		}

		t.Logf("%d suites, %s tests passed: %v", len(ok), m[1], ok)
	}

	if len(limited) == 0 {
		return
	}

	out, err := kyvernoTest(cli, root, limited...)
	if err == nil {
		t.Fatalf("kyverno test %v passed: a limit of cliLimits is gone: remove it from missingTestFields or otherCLILimits\n%s", limited, out)
	}

	loadErrors := loadErrorsOf(out)

	for _, suite := range limited {
		got, notLoaded := loadErrors[suite]
		if !notLoaded {
			got, err = kyvernoTest(cli, root, suite)
			if err == nil {
				t.Errorf("kyverno test %s passed: its limit %q is gone, remove it from missingTestFields or otherCLILimits", suite, limits[suite])

				continue
			}
		}

		if !strings.Contains(got, limits[suite]) {
			t.Errorf("kyverno test %s: expected the known limit %q, got:\n%s", suite, limits[suite], got)

			continue
		}

		t.Logf("%s: known limit of this CLI: %s", suite, limits[suite])
	}
}

func kyvernoTest(cli, root string, suites ...string) (string, error) {
	args := []string{"test", "--remove-color"}
	for _, s := range suites {
		args = append(args, filepath.Join("tests", s))
	}

	cmd := exec.Command(cli, args...) //nolint:gosec // pinned tool
	cmd.Dir = root
	out, err := cmd.CombinedOutput()

	return string(out), err
}

var loadError = regexp.MustCompile(`(?m)^\s*Path: tests/(\S+)/kyverno-test\.yaml\n\s*Error: (.*)$`)

// loadErrorsOf maps each suite the CLI could not load to its error, from the "Test errors"
// part of its output.
func loadErrorsOf(out string) map[string]string {
	m := map[string]string{}
	for _, e := range loadError.FindAllStringSubmatch(out, -1) {
		m[e[1]] = e[2]
	}

	return m
}
