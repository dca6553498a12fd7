package test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// renamedSentence is how the chart refuses a value that was renamed: "<old> was renamed to
// <new>" (chart README, "Upgrading").
var renamedSentence = regexp.MustCompile(`\S+ was renamed to \S+`)

// TestPreviousValuesAccepted renders this chart with every value set of the previous release's
// chart (PREVIOUS_RELEASE, read from git): each renders, or is refused with a sentence naming
// the value's new name; a value silently dropped or refused by the schema alone would strand a
// user's upgrade.
func TestPreviousValuesAccepted(t *testing.T) {
	rev := os.Getenv("PREVIOUS_RELEASE")
	if rev == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("PREVIOUS_RELEASE is not set (run through `make test-chart`)")
		}

		t.Skip("PREVIOUS_RELEASE is not set; run through `make test-chart`")
	}

	git := func(args ...string) string {
		out, err := exec.CommandContext(context.Background(), "git", args...).Output()
		if err != nil {
			t.Fatalf("git %v: %v (a shallow clone lacks the previous release %s: fetch it)", args, err, rev)
		}

		return string(out)
	}

	files := strings.Fields(git("ls-tree", "--full-name", "--name-only", rev, "--", "../testdata/values/"))
	if len(files) == 0 {
		t.Fatalf("%s has no chart/testdata/values", rev)
	}

	dir := t.TempDir()

	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			path := filepath.Join(dir, filepath.Base(f))
			if err := os.WriteFile(path, []byte(git("show", rev+":"+f)), 0o600); err != nil {
				t.Fatal(err)
			}

			out, err := render(t, "-f", path)
			if err != nil && !renamedSentence.MatchString(out) {
				t.Errorf("%s's %s is refused without naming the new key:\n%s", rev, f, out)
			}
		})
	}
}
