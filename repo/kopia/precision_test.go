package kopia_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness/kopiamover"
	"github.com/backup-oracle/backup-oracle/repo"
	"github.com/backup-oracle/backup-oracle/repo/kopia/kopiademo"
)

// The mixed repository of the near-miss measurement: namespaces in each of four layouts, a rare
// one and migrations, PVC names built to trap a loose rule. The layouts are restated here from
// the movers' rules (kopiamover), not from repo's functions under test.

// layout names where a PVC's data is stored.
type layout string

const (
	layoutBackup  layout = "{pvc}-backup"  // this chart's policies
	layoutVolsync layout = "{pvc}-volsync" // a predecessor's RS and RD names
	layoutApp     layout = "{pvc}"         // ${APP} components: RS named after the app
	layoutKopiur  layout = "kopiur"        // <policy>@<namespace>.<cluster>:/pvc/<pvc>
	layoutBk      layout = "{pvc}-bk"      // a rare scheme, in two namespaces only
)

// stored is where the mover of layout l writes PVC pvc's data (kopiamover: the mover's rules).
func stored(l layout, pvc repo.PVC) repo.KopiaSource {
	switch l {
	case layoutBackup: // the policies state a collision-free username for long names
		user, rest, _ := strings.Cut(kopiamover.PolicySource(pvc.Namespace, pvc.Name), "@")
		host, path, _ := strings.Cut(rest, ":")

		return repo.KopiaSource{UserName: user, Host: host, Path: path}
	case layoutKopiur:
		return repo.KopiaSource{UserName: "daily", Host: pvc.Namespace + ".cluster-b", Path: "/pvc/" + pvc.Name}
	}

	rs := strings.ReplaceAll(string(l), "{pvc}", pvc.Name)

	return repo.KopiaSource{UserName: kopiamover.Username("", rs), Host: kopiamover.Hostname("", pvc.Namespace, rs), Path: kopiamover.Path("")}
}

var (
	apps = []string{"jellyfin", "sonarr", "radarr", "lidarr", "prowlarr", "immich", "paperless", "nextcloud", "gitea", "forgejo",
		"vaultwarden", "grafana", "loki", "prometheus", "postgres", "redis", "minio", "mealie", "home-assistant", "zigbee2mqtt",
		"mqtt", "node-red", "plex", "tautulli", "overseerr", "syncthing", "photoprism", "bookstack", "wikijs", "n8n"}
	kinds = []string{"", "-config", "-data", "-cache", "-db", "-media", "-0", "-1"}
	words = []string{"data", "config", "cache", "db", "media"}
)

// mixedNamespace is one namespace: its layouts (a migration has two), its PVCs.
type mixedNamespace struct {
	name    string
	layouts []layout
	pvcs    []string
}

// mixedWorld builds the namespaces: per-category ones in each of the four layouts, per-app ones
// (every PVC starts with the namespace's name), two of the rare layout and four migrations.
func mixedWorld() []mixedNamespace {
	rng := rand.New(rand.NewPCG(18, 7)) //nolint:gosec // a fixed, reproducible shape
	four := []layout{layoutBackup, layoutVolsync, layoutApp, layoutKopiur}

	var out []mixedNamespace

	add := func(name string, ls []layout, pvcs []string) { out = append(out, mixedNamespace{name, ls, pvcs}) }

	for i := range 100 {
		seen := map[string]bool{}

		var pvcs []string

		for len(pvcs) < 20 {
			var p string

			switch rng.IntN(20) {
			case 0:
				p = words[rng.IntN(len(words))] // a bare common word
			case 1:
				p = "my." + apps[rng.IntN(len(apps))] + ".data" // dotted
			case 2:
				p = apps[rng.IntN(len(apps))] + "-" + strings.Repeat("volume-claim-", 4) + fmt.Sprint(rng.IntN(3)) // long
			default:
				p = apps[rng.IntN(len(apps))] + kinds[rng.IntN(len(kinds))]
			}

			if !seen[p] {
				seen[p] = true
				pvcs = append(pvcs, p)
			}
		}

		add(fmt.Sprintf("cat-%03d", i), []layout{four[i%4]}, pvcs)
	}

	for i, app := range apps[:16] { // per-app namespaces
		add(app, []layout{four[i%4]}, []string{app, app + "-config", app + "-cache", app + "-media"})
	}

	for i := range 2 {
		add(fmt.Sprintf("legacy-%d", i), []layout{layoutBk}, []string{"gitea", "gitea-db", "redis", "data", "config-main"})
	}

	for i := range 4 { // a migration: the newer half under this chart's layout
		add(fmt.Sprintf("moving-%d", i), []layout{layoutBackup, layoutVolsync}, []string{"sonarr", "radarr", "lidarr", "plex", "plex-config", "cache"})
	}

	return out
}

// trapNames are lookups of PVCs without a backup built to catch a loose rule: common words,
// prefixes and extensions of stored names, dotted variants.
func trapNames(ns mixedNamespace) []string {
	have := map[string]bool{}
	for _, p := range ns.pvcs {
		have[p] = true
	}

	var out []string

	add := func(p string) {
		if !have[p] && (repo.PVC{Namespace: ns.name, Name: p}).Validate() == nil && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}

	for _, w := range words {
		add(w)
	}

	for _, p := range ns.pvcs {
		if i := strings.LastIndexAny(p, "-."); i > 0 {
			add(p[:i]) // a prefix of a stored name
		}

		add(p + "-0")
		add(p + "-2")
		add(strings.Replace(p, "-", ".", 1)) // dotted where the stored one is dashed
	}

	return out
}

// truth: the sources in ns that a mover of ns's layouts would have written for pvc.
func truth(ns mixedNamespace, pvc string, present map[repo.KopiaSource]bool) []string {
	var out []string

	for _, l := range ns.layouts {
		if s := stored(l, repo.PVC{Namespace: ns.name, Name: pvc}); present[s] {
			out = append(out, s.String())
		}
	}

	return out
}

// TestNearMissRecallAndPrecision measures the near-miss rule on the mixed repository: recall
// (every PVC whose data is stored under a layout the settings do not produce has that source
// named among its near misses: must be 100 %) and false near misses per lookup (trap lookups
// without data reporting one). Run with -v for the figures the README quotes.
func TestNearMissRecallAndPrecision(t *testing.T) {
	world := mixedWorld()
	present := map[repo.KopiaSource]bool{}

	var backups []kopiademo.Backup

	for _, ns := range world {
		for i, p := range ns.pvcs {
			l := ns.layouts[i%len(ns.layouts)]
			s := stored(l, repo.PVC{Namespace: ns.name, Name: p})

			if !present[s] {
				present[s] = true
				backups = append(backups, kopiademo.Backup{Source: s})
			}
		}
	}

	f := newFixture(t)
	f.write(backups...)

	for _, settings := range []repo.KopiaIdentity{identity, {SourceName: "{pvc}", Path: "/data"}} {
		t.Run(settings.SourceName, func(t *testing.T) {
			idx := loadWith(t, f.path, settings, "")
			require.Equal(t, len(present), idx.Stats().Sources)

			var planted, found, traps, falseNear, trueTraps int

			for _, ns := range world {
				lookups := append(slices.Clone(ns.pvcs), trapNames(ns)...)

				for li, name := range lookups {
					pvc := repo.PVC{Namespace: ns.name, Name: name}

					fd, err := idx.Find(context.Background(), pvc)
					require.NoError(t, err)

					if len(fd.Snapshots) > 0 {
						continue // restored: near misses are not looked for
					}

					want := truth(ns, name, present)
					got := nearSources(idx.NearMisses(pvc))

					switch {
					case len(want) > 0:
						planted++
						if li >= len(ns.pvcs) {
							trueTraps++ // a trap name a mover of this layout would have stored where data is
						}

						if hasAll(got, want) {
							found++
						} else {
							t.Errorf("%s: data under %v, near misses %v", pvc, want, got)
						}
					default:
						traps++
						if len(got) > 0 {
							falseNear++
							t.Logf("false near miss: %s: %v", pvc, got)
						}
					}
				}
			}

			t.Logf("settings %s: %d sources; recall %d/%d planted near misses (%d of them trap names whose layout name exists); "+
				"%d false near misses in %d lookups without data (%.2f %%)", settings.SourceName, len(present), found, planted, trueTraps,
				falseNear, traps, 100*float64(falseNear)/float64(traps))
			assert.Equal(t, planted, found, "recall must be 100 %")
			assert.LessOrEqual(t, 100*falseNear, traps, "at most 1 %% of lookups without data are blocked by a false near miss")
			assert.Greater(t, planted, 1000, "the planted set is large")
			assert.Greater(t, traps, 5000)
		})
	}
}

func hasAll(got, want []string) bool {
	for _, w := range want {
		if !slices.Contains(got, w) {
			return false
		}
	}

	return true
}
