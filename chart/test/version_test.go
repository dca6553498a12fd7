package test

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// semver is Semantic Versioning 2.0.0's MAJOR.MINOR.PATCH[-PRERELEASE] (no build metadata: an
// OCI tag cannot hold '+').
var semver = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$`)

// chartMeta is the part of Chart.yaml the version checks read.
type chartMeta struct {
	Version     string            `yaml:"version"`
	AppVersion  string            `yaml:"appVersion"`
	Annotations map[string]string `yaml:"annotations"`
}

func readChart(t *testing.T) chartMeta {
	t.Helper()

	b, err := os.ReadFile("../Chart.yaml")
	if err != nil {
		t.Fatal(err)
	}

	var c chartMeta
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}

	return c
}

// TestOneVersion: the chart's version, its appVersion, the default image tag it renders, the
// binary's --version (built by make with the Makefile's VERSION) and the release notes all name
// one semantic version; the license is the SPDX identifier of LICENSE (Apache-2.0).
func TestOneVersion(t *testing.T) {
	c := readChart(t)

	if !semver.MatchString(c.Version) {
		t.Fatalf("Chart.yaml version %q is not a semantic version", c.Version)
	}

	if c.AppVersion != c.Version {
		t.Errorf("Chart.yaml appVersion %q differs from its version %q: they are one version", c.AppVersion, c.Version)
	}

	if got := c.Annotations["artifacthub.io/license"]; got != "Apache-2.0" {
		t.Errorf("artifacthub.io/license is %q, want Apache-2.0 (LICENSE)", got)
	}

	image := regexp.MustCompile(`(?m)^\s+image: "([^"]+)"$`).FindAllStringSubmatch(mustRender(t, "-f", "../testdata/values/default.yaml"), -1)
	if len(image) != 1 {
		t.Fatalf("want one image in the default render, got %v", image)
	}

	if want := "ghcr.io/backup-oracle/backup-oracle:" + c.Version; image[0][1] != want {
		t.Errorf("the default render's image is %q, want %q", image[0][1], want)
	}

	out, err := exec.CommandContext(context.Background(), toolBin(t, "BACKUP_ORACLE_BIN"), "--version").Output()
	if err != nil {
		t.Fatal(err)
	}

	if want := "backup-oracle " + c.Version + " ("; !strings.HasPrefix(string(out), want) {
		t.Errorf("--version says %q, want it to start with %q (make build: VERSION is the commit's tag, else the chart's version)", out, want)
	}
}

// TestReleaseNotes: the version's notes are where the Helm ecosystem reads them (Chart.yaml's
// artifacthub.io/changes: a YAML list of kind and description, kinds Artifact Hub knows) and in
// the chart README under "Release notes", headed by the version.
func TestReleaseNotes(t *testing.T) {
	c := readChart(t)

	var changes []struct {
		Kind        string `yaml:"kind"`
		Description string `yaml:"description"`
	}
	if err := yaml.Unmarshal([]byte(c.Annotations["artifacthub.io/changes"]), &changes); err != nil {
		t.Fatalf("artifacthub.io/changes: %v", err)
	}

	if len(changes) == 0 {
		t.Fatal("artifacthub.io/changes lists no change for " + c.Version)
	}

	kinds := map[string]bool{"added": true, "changed": true, "deprecated": true, "removed": true, "fixed": true, "security": true}
	for _, ch := range changes {
		if !kinds[ch.Kind] || strings.TrimSpace(ch.Description) == "" {
			t.Errorf("artifacthub.io/changes entry %+v: want a kind of %v and a description", ch, kinds)
		}
	}

	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}

	_, notes, ok := strings.Cut(string(readme), "\n## Release notes\n")
	if !ok {
		t.Fatal("chart/README.md has no '## Release notes' section")
	}

	if !strings.Contains(notes, "\n### "+c.Version+"\n") {
		t.Errorf("chart/README.md's release notes have no '### %s' heading", c.Version)
	}
}
