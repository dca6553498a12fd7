// Package policies_test ties the Kyverno policies to the oracle's identity function: the
// ReplicationSources the policies generate (as asserted by the kyverno test suites) must make
// VolSync's Kopia mover write snapshots under exactly the source repo.KopiaIdentity looks up.
package policies_test

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/backup-oracle/backup-oracle/repo"
)

var (
	rsName      = regexp.MustCompile(`(?m)^  name: (.+)$`)
	rsNamespace = regexp.MustCompile(`(?m)^  namespace: (.+)$`)
	rsPVC       = regexp.MustCompile(`(?m)^    backup-oracle.io/pvc: (.+)$`)
	sourcePVC   = regexp.MustCompile(`(?m)^  sourcePVC: (.+)$`)
)

// TestGeneratedReplicationSourcesMatchOracleIdentity checks, for every ReplicationSource the
// kyverno suites expect the policies to generate, that the identity VolSync's Kopia mover derives
// from it (username from the RS name, hostname from the namespace, path /data) is the one the
// oracle looks up for its PVC, and that the oracle answer mocked for that PVC names it.
func TestGeneratedReplicationSourcesMatchOracleIdentity(t *testing.T) {
	files, err := filepath.Glob("tests/fixtures/generated/rs-*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no generated ReplicationSource fixtures: %v", err)
	}

	mocks, err := os.ReadFile("tests/clusterpolicy/admission/kyverno-test.yaml")
	if err != nil {
		t.Fatal(err)
	}

	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}

			name, ns, pvcName := field(t, rsName, data), field(t, rsNamespace, data), field(t, rsPVC, data)
			if got := field(t, sourcePVC, data); got != pvcName {
				t.Errorf("sourcePVC %q, annotation names PVC %q", got, pvcName)
			}

			pvc := repo.PVC{Namespace: ns, Name: pvcName}
			identity := repo.DefaultKopiaIdentity()

			if want := identity.SourceName; expandPVC(want, pvc) != name {
				t.Errorf("RS name %q, the oracle's source name template %q gives %q", name, want, expandPVC(want, pvc))
			}

			mover := repo.KopiaSource{
				UserName: repo.KopiaUsername(name),
				Host:     repo.KopiaHostname(ns, name),
				Path:     repo.DefaultKopiaPath,
			}
			oracle := identity.Source(pvc)

			if mover != oracle {
				t.Errorf("mover writes %s, oracle looks up %s", mover, oracle)
			}

			mocked := regexp.MustCompile(`(?s)/exists/` + regexp.QuoteMeta(ns+"/"+pvcName) + `\n.*?source: (\S+)`).FindSubmatch(mocks)
			if mocked == nil || string(mocked[1]) != oracle.String() {
				t.Errorf("the admission suite's mocked answer for %s does not name %s", pvc, oracle)
			}
		})
	}
}

func field(t *testing.T, re *regexp.Regexp, data []byte) string {
	t.Helper()

	m := re.FindSubmatch(data)
	if m == nil {
		t.Fatalf("no match for %s", re)
	}

	return string(m[1])
}

// expandPVC expands the {pvc} and {namespace} placeholders of a name template.
func expandPVC(tmpl string, pvc repo.PVC) string {
	return regexp.MustCompile(`\{(pvc|namespace)\}`).ReplaceAllStringFunc(tmpl, func(p string) string {
		if p == "{pvc}" {
			return pvc.Name
		}

		return pvc.Namespace
	})
}
