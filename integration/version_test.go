package integration

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

// TestVersionFromGitTag runs the Makefile's version rules in a scratch git repository holding
// the Makefile and a Chart.yaml: a build's version is its commit's tag v<semver>, else the
// chart's version; make release-check refuses a tag or an appVersion the chart's version
// differs from, with a sentence saying what to change.
func TestVersionFromGitTag(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not found")
	}

	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "chart"), 0o755))

	mk, err := os.ReadFile("../Makefile")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Makefile"), mk, 0o644))

	chart := func(version, app string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "chart", "Chart.yaml"),
			[]byte("apiVersion: v2\nname: backup-oracle\nversion: "+version+"\nappVersion: \""+app+"\"\n"), 0o644))
	}

	git := func(args ...string) {
		cmd := exec.CommandContext(context.Background(), "git", append([]string{"-c", "user.name=test", "-c", "user.email=test@example.invalid",
			"-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"}, args...)...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "git %v: %s", args, out)
	}

	makeRun := func(target string) (string, error) {
		cmd := exec.CommandContext(context.Background(), "make", "-s", target)
		cmd.Dir = dir
		cmd.Env = withoutEnv(os.Environ(), "VERSION", "IMAGE_TAG", "MAKEFLAGS", "MAKELEVEL")
		out, err := cmd.CombinedOutput()

		return strings.TrimSpace(string(out)), err
	}

	chart("1.4.2", "1.4.2")
	git("init", "-q", ".")
	git("add", ".")
	git("commit", "-qm", "one")

	steps := []struct {
		name    string
		do      func()
		version string
		refusal string // empty: release-check passes
	}{
		{"no tag: the chart's version", func() {}, "1.4.2", ""},
		{"a tag that is not a version is ignored", func() { git("tag", "latest") }, "1.4.2", ""},
		{"the commit's tag", func() { git("tag", "v1.4.2") }, "1.4.2", ""},
		{"after the tagged commit: the chart's version", func() { git("commit", "-q", "--allow-empty", "-m", "two") }, "1.4.2", ""},
		{"a tag the chart disagrees with", func() { git("tag", "v1.5.0") }, "1.5.0",
			"VERSION 1.5.0 (the git tag) is not chart/Chart.yaml's version 1.4.2: set the chart's version and appVersion to the tag's"},
		{"a pre-release tag the chart does not carry", func() {
			chart("1.5.0", "1.4.9")
			git("commit", "-qam", "three")
			git("tag", "v1.5.0-rc.1")
		}, "1.5.0-rc.1", "VERSION 1.5.0-rc.1 (the git tag) is not chart/Chart.yaml's version 1.5.0"},
		{"a pre-release", func() {
			chart("1.5.0-rc.2", "1.5.0-rc.2")
			git("commit", "-qam", "four")
			git("tag", "v1.5.0-rc.2")
		}, "1.5.0-rc.2", ""},
		{"appVersion differs from the tagged version", func() {
			chart("1.6.0", "1.4.9")
			git("commit", "-qam", "five")
			git("tag", "v1.6.0")
		}, "1.6.0", "chart/Chart.yaml's appVersion 1.4.9 is not its version 1.6.0"},
	}

	for _, s := range steps {
		s.do()

		got, err := makeRun("print-version")
		require.NoError(t, err, got)
		assert.Equal(t, s.version, got, "%s: make print-version", s.name)

		out, err := makeRun("release-check")
		if s.refusal == "" {
			assert.NoError(t, err, "%s: release-check refused: %s", s.name, out)
		} else {
			assert.Error(t, err, "%s: release-check passed", s.name)
			assert.Contains(t, out, s.refusal, s.name)
		}
	}
}

// withoutEnv drops the named variables from env (a VERSION set outside would override the
// Makefile's rule).
func withoutEnv(env []string, names ...string) []string {
	out := env[:0:0]

next:
	for _, kv := range env {
		for _, n := range names {
			if strings.HasPrefix(kv, n+"=") {
				continue next
			}
		}

		out = append(out, kv)
	}

	return out
}
