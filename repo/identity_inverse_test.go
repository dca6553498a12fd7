package repo_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/backup-oracle/backup-oracle/repo"
)

// TestKopiaPVCOf: sources as the mover writes them (DOMAIN.md 2, 8), and the PVC each maps back
// to under the policies' identity and other schemes.
func TestKopiaPVCOf(t *testing.T) {
	def := repo.DefaultKopiaIdentity()
	long := "analytics-warehouse-clickhouse-data-volume-claim-replica-0001"

	cases := []struct {
		name string
		id   repo.KopiaIdentity
		src  string // user@host:path
		want repo.PVC
	}{
		{"plain", def, "postgres-backup@shop:/data", repo.PVC{Namespace: "shop", Name: "postgres"}},
		{"dotted name comes back without dots (the mover dropped them)", def, "myappdata-backup@web:/data", repo.PVC{Namespace: "web", Name: "myappdata"}},
		{"a name ending in -backup", def, "a-backup-backup@web:/data", repo.PVC{Namespace: "web", Name: "a-backup"}},
		{"cut at 50 (the mover alone): only the namespace", def, "analytics-warehouse-clickhouse-data-volume-claim-r@analytics:/data", repo.PVC{Namespace: "analytics"}},
		{"collision-free username of a long name: only the namespace", def, "analytics-warehouse-clickhouse-data-volum-5be1bac6@analytics:/data", repo.PVC{Namespace: "analytics"}},
		{"other path: only the namespace", def, "redis-backup@shop:/var/lib/redis", repo.PVC{Namespace: "shop"}},
		{"not our suffix: only the namespace", def, "redis@shop:/data", repo.PVC{Namespace: "shop"}},
		{"host that is no namespace", def, "x-backup@Not_A_NS:/data", repo.PVC{}},
		{"onedr0p style: RS named after the app", repo.KopiaIdentity{SourceName: "{pvc}", Path: "/data"}, "gitea@apps:/data", repo.PVC{Namespace: "apps", Name: "gitea"}},
		{"explicit username and hostname templates", repo.KopiaIdentity{UserName: "{pvc}", HostName: "{namespace}.prod", Path: "/data"}, "my.db@web.prod:/data", repo.PVC{Namespace: "web", Name: "my.db"}},
		{"explicit hostname not matching: nothing", repo.KopiaIdentity{UserName: "{pvc}", HostName: "{namespace}.prod", Path: "/data"}, "db@web.staging:/data", repo.PVC{}},
		{"hostname template, username not ours: the namespace from the template's group", repo.KopiaIdentity{UserName: "{pvc}", HostName: "{namespace}-prod", Path: "/data"}, "other@web-prod:/var/lib", repo.PVC{Namespace: "web"}},
		{"a namespace of 63 characters, the longest allowed", def, "redis@" + strings.Repeat("n", 63) + ":/var/lib/redis", repo.PVC{Namespace: strings.Repeat("n", 63)}},
		{"kopiur style path", repo.KopiaIdentity{UserName: "daily", HostName: "{namespace}", SourceName: "x", Path: "/pvc/data"}, "daily@web:/pvc/data", repo.PVC{Namespace: "web"}},
		{"namespace in the source name", repo.KopiaIdentity{SourceName: "{namespace}-{pvc}", Path: "/data"}, "web-app@web:/data", repo.PVC{Namespace: "web", Name: "app"}},
		{"namespace in the source name disagreeing with the host", repo.KopiaIdentity{SourceName: "{namespace}-{pvc}", Path: "/data"}, "db-app@web:/data", repo.PVC{Namespace: "web"}},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.id.PVCOf(parseSource(t, tc.src))
			assert.Equal(t, tc.want, got)

			if got.Name != "" {
				assert.Equal(t, tc.src, tc.id.Source(got).String(), "a returned PVC maps forward to the source")
			}
		})
	}

	// The long PVC's source does not map back (a hash), but its forward mapping is the one listed
	// above (sha256sum of "analytics/<long>").
	assert.Equal(t, "analytics-warehouse-clickhouse-data-volum-5be1bac6@analytics:/data", def.Source(repo.PVC{Namespace: "analytics", Name: long}).String())
}

// FuzzKopiaPVCOfRoundTrip: whatever PVC, inverting its source yields a PVC with the same
// source, or none.
func FuzzKopiaPVCOfRoundTrip(f *testing.F) {
	for _, s := range []string{"web/app", "web/my.app.data", "a/" + strings.Repeat("x", 70), "ns/a-backup"} {
		f.Add(s)
	}

	id := repo.DefaultKopiaIdentity()

	f.Fuzz(func(t *testing.T, s string) {
		ns, name, _ := strings.Cut(s, "/")
		p := repo.PVC{Namespace: ns, Name: name}

		if p.Validate() != nil {
			return
		}

		src := id.Source(p)
		got := id.PVCOf(src)

		if got.Name != "" {
			assert.Equal(t, src, id.Source(got))
		}

		assert.Equal(t, p.Namespace, got.Namespace, "the namespace always comes back under the default identity")
	})
}

func parseSource(t *testing.T, s string) repo.KopiaSource {
	t.Helper()

	user, rest, _ := strings.Cut(s, "@")
	host, path, _ := strings.Cut(rest, ":")

	return repo.KopiaSource{UserName: user, Host: host, Path: path}
}
