// Package harness finds the real tools integration tests drive (kopia, restic, versitygw,
// kyverno, helm) and starts real servers on 127.0.0.1 for them.
package harness

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Tool returns the path of the named tool: $<NAME>_BIN (e.g. KOPIA_BIN) when set, else the first
// match in PATH. When the tool is missing the test is skipped locally but fails in CI (CI set),
// because a skip in CI would hide an untested feature.
func Tool(t testing.TB, name string) string {
	t.Helper()

	env := strings.ToUpper(strings.ReplaceAll(name, "-", "_")) + "_BIN"
	if p := os.Getenv(env); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s=%s: %v", env, p, err)
		}

		return p
	}

	if p, err := exec.LookPath(name); err == nil {
		return p
	}

	if os.Getenv("CI") != "" {
		t.Fatalf("%s not found: set %s or run the tests through 'make test', which builds it", name, env)
	}

	t.Skipf("%s not found: set %s or run 'make test' (this skip is a failure in CI)", name, env)

	return ""
}

// Require stops a test that lacks what it needs (named in what): skipped locally, failed in CI.
func Require(t testing.TB, what string) {
	t.Helper()

	if os.Getenv("CI") != "" {
		t.Fatalf("missing %s (this would be a skip outside CI)", what)
	}

	t.Skipf("missing %s (this skip is a failure in CI)", what)
}
