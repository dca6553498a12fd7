// Package policies_test ties the Kyverno policies to the oracle's identity function: the
// ReplicationSources the policies generate (as asserted by the kyverno test suites) must make
// VolSync's Kopia mover write snapshots under exactly the source repo.KopiaIdentity looks up.
// The mover's side is kopiamover (its rules, restated from its source), never repo's functions.
package policies_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/backup-oracle/backup-oracle/integration/harness/kopiamover"
	"github.com/backup-oracle/backup-oracle/repo"
)

// moverSources are the sources, written by hand from the mover's rules, of every generated RS
// fixture: dotted names lose their dots; a name the mover would cut at 50 characters gets the
// policies' explicit collision-free username (41 characters, "-", sha256("<namespace>/<pvc>")[:8]).
var moverSources = map[string]string{
	"rs-my-app.yaml":      "my-app-backup@web:/data",
	"rs-my.app.data.yaml": "myappdata-backup@web:/data",
	"rs-long60.yaml":      "postgres-primary-data-for-the-billing-ser-8fc9c94c@web:/data",
	"rs-long100.yaml":     "analytics-warehouse-columnar-storage-shar-94c766e8@web:/data",
}

var (
	rsName      = regexp.MustCompile(`(?m)^  name: (.+)$`)
	rsNamespace = regexp.MustCompile(`(?m)^  namespace: (.+)$`)
	rsPVC       = regexp.MustCompile(`(?m)^    backup-oracle.io/pvc: (.+)$`)
	sourcePVC   = regexp.MustCompile(`(?m)^  sourcePVC: (.+)$`)
	rsUsername  = regexp.MustCompile(`(?m)^    username: (.+)$`)
	rsHostname  = regexp.MustCompile(`(?m)^    hostname: (.+)$`)
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

			mover := kopiamover.ReplicationSource{Name: name, Namespace: ns,
				Username: field(t, rsUsername, data), Hostname: field(t, rsHostname, data)}.Source()
			oracle := identity.Source(pvc)

			if mover != oracle.String() {
				t.Errorf("mover writes %s, oracle looks up %s (rule: the lookup must be the mover's identity of the generated RS)", mover, oracle)
			}

			if want, ok := moverSources[filepath.Base(file)]; !ok {
				t.Errorf("no hand-written source for %s: add it to moverSources", file)
			} else if mover != want {
				t.Errorf("the mover's rules give %s for RS %s/%s, hand-written %s", mover, ns, name, want)
			}

			mocked := regexp.MustCompile(`(?s)/exists/` + regexp.QuoteMeta(ns+"/"+pvcName+"?unknownStatus=200") + `\n.*?source: (\S+)`).FindSubmatch(mocks)
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

// TestGeneratedReplicationDestinationsRestoreTheirSource checks, for every ReplicationDestination
// the kyverno suites expect, that the source VolSync's Kopia mover restores from (its rules for an
// RD: explicit username and hostname, else sourceIdentity, else the RD's own name and namespace)
// is the one the generated ReplicationSource of the same PVC writes.
func TestGeneratedReplicationDestinationsRestoreTheirSource(t *testing.T) {
	files, err := filepath.Glob("tests/fixtures/generated/rd-*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no generated ReplicationDestination fixtures: %v", err)
	}

	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}

			rd := kopiamover.ReplicationDestination{Name: field(t, rsName, data), Namespace: field(t, rsNamespace, data),
				Username: field(t, rsUsername, data), Hostname: field(t, rsHostname, data)}

			want, ok := moverSources["rs-"+strings.TrimPrefix(filepath.Base(file), "rd-")]
			if !ok {
				t.Fatalf("no ReplicationSource fixture for %s", file)
			}

			if got, err := rd.Source(); err != nil || got != want {
				t.Errorf("the RD restores from %s (%v), its RS writes %s", got, err, want)
			}
		})
	}
}

// layouts are the identity settings of the chart's other values files (testdata/values/<set>.yaml,
// rendered into policies/<set>/) as the oracle reads them, with the sources VolSync's Kopia mover
// uses for each generated RS and RD fixture, written by hand from the mover's rules.
var layouts = map[string]struct {
	identity repo.KopiaIdentity
	sources  map[string]string // fixture file -> mover's source
}{
	"custom-identity": {
		identity: repo.KopiaIdentity{SourceName: "{pvc}-src", UserName: "{pvc}", HostName: "{namespace}.prod", Path: "/data"},
		sources: map[string]string{
			"rs-my.app.data.yaml": "my.app.data@web.prod:/data", "rd-my.app.data.yaml": "my.app.data@web.prod:/data",
			"rs-long60.yaml": "postgres-primary-data-for-the-billing-service-in-productionx@web.prod:/data",
			"rd-long60.yaml": "postgres-primary-data-for-the-billing-service-in-productionx@web.prod:/data",
		},
	},
	"blue-green": {
		identity: repo.DefaultKopiaIdentity(),
		sources: map[string]string{
			"rs-app.yaml": "app-backup@web:/data", "rd-app.yaml": "app-backup@web:/data",
			"rs-cache.yaml": "cache-backup@web:/data", "rd-cache.yaml": "cache-backup@web:/data",
		},
	},
	"custom-path": {
		identity: repo.KopiaIdentity{SourceName: "{pvc}-backup", Path: "/var/lib/postgresql"},
		sources: map[string]string{
			"rs-my.app.data.yaml": "myappdata-backup@web:/var/lib/postgresql", "rd-my.app.data.yaml": "myappdata-backup@web:/var/lib/postgresql",
			"rs-long60.yaml": "postgres-primary-data-for-the-billing-ser-8fc9c94c@web:/var/lib/postgresql",
			"rd-long60.yaml": "postgres-primary-data-for-the-billing-ser-8fc9c94c@web:/var/lib/postgresql",
		},
	},
}

var (
	rdSourceName = regexp.MustCompile(`(?m)^      sourceName: (.+)$`)
	rdSourcePath = regexp.MustCompile(`(?m)^      sourcePathOverride: (.+)$`)
	// rdSourceNamespace: sourceIdentity.sourceNamespace.
	rdSourceNamespace = regexp.MustCompile(`(?m)^      sourceNamespace: (.+)$`)
	rsSourcePath      = regexp.MustCompile(`(?m)^    sourcePathOverride: (.+)$`)
)

// optional returns re's match in data, or "".
func optional(re *regexp.Regexp, data []byte) string {
	if m := re.FindSubmatch(data); m != nil {
		return string(m[1])
	}

	return ""
}

// TestEveryLayoutStatesTheOraclesIdentity checks, for the chart's other identity settings, that
// every RS and RD the kyverno suites expect makes VolSync's Kopia mover write and restore exactly
// the source the oracle looks up for its PVC, and that this is the hand-written source.
func TestEveryLayoutStatesTheOraclesIdentity(t *testing.T) {
	for set, layout := range layouts {
		files, err := filepath.Glob(filepath.Join("tests/fixtures/generated", set, "r[sd]-*.yaml"))
		if err != nil || len(files) != len(layout.sources) {
			t.Fatalf("%s: fixtures %v (%v), want one per hand-written source", set, files, err)
		}

		for _, file := range files {
			t.Run(set+"/"+filepath.Base(file), func(t *testing.T) {
				data, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}

				name, ns := field(t, rsName, data), field(t, rsNamespace, data)
				pvc := repo.PVC{Namespace: ns, Name: field(t, regexp.MustCompile(`(?m)^    backup-oracle.io/pvc: (.+)$`), data)}

				var mover string
				if strings.HasPrefix(filepath.Base(file), "rs-") {
					mover = kopiamover.ReplicationSource{Name: name, Namespace: ns, Username: optional(rsUsername, data),
						Hostname: optional(rsHostname, data), SourcePathOverride: optional(rsSourcePath, data)}.Source()
				} else {
					rd := kopiamover.ReplicationDestination{Name: name, Namespace: ns, Username: optional(rsUsername, data),
						Hostname: optional(rsHostname, data), SourceName: optional(rdSourceName, data),
						SourceNamespace: optional(rdSourceNamespace, data), SourcePathOverride: optional(rdSourcePath, data)}

					var err error
					if mover, err = rd.Source(); err != nil {
						t.Fatalf("the mover refuses the generated RD: %v", err)
					}

					if err := rd.CRDValid(); err != nil {
						t.Error(err)
					}
				}

				if want := layout.sources[filepath.Base(file)]; mover != want {
					t.Errorf("the mover's rules give %s, hand-written %s", mover, want)
				}

				if oracle := layout.identity.Source(pvc).String(); mover != oracle {
					t.Errorf("mover uses %s, oracle looks up %s", mover, oracle)
				}
			})
		}
	}

	// The ${APP}/${APP}-dst layout (gate mode): the user's own RS <app> and RD <app>-dst with
	// sourceIdentity.sourceName <app>, as in their Git repository.
	app := repo.KopiaIdentity{SourceName: "{pvc}", Path: "/data"}.Source(repo.PVC{Namespace: "dev", Name: "gitea"}).String()
	rs := kopiamover.ReplicationSource{Name: "gitea", Namespace: "dev"}.Source()
	rd, err := kopiamover.ReplicationDestination{Name: "gitea-dst", Namespace: "dev", SourceName: "gitea"}.Source()

	if app != "gitea@dev:/data" || rs != app || rd != app || err != nil {
		t.Errorf("app layout: oracle %s, the user's RS %s, RD %s (%v); want gitea@dev:/data for all", app, rs, rd, err)
	}
}
