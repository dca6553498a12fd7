package repo_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness/kopiamover"
	"github.com/backup-oracle/backup-oracle/repo"
)

// The expected side of these tests is VolSync's Kopia mover as restated, from its source, by
// kopiamover, and hand-written strings for the edge cases; never repo's own functions.

func TestKopiaIdentitySource(t *testing.T) {
	long := strings.Repeat("a", 45) + "-database-volume" // 61 characters
	cases := []struct {
		name string
		id   repo.KopiaIdentity
		pvc  repo.PVC
		want string
	}{
		{"plain", repo.DefaultKopiaIdentity(), repo.PVC{Namespace: "web", Name: "app"}, "app-backup@web:/data"},
		{"dots are dropped", repo.DefaultKopiaIdentity(), repo.PVC{Namespace: "web", Name: "my.app.data"}, "myappdata-backup@web:/data"},
		// sha256("db/"+long) starts f3e4737a (sha256sum); the policies set this username explicitly.
		{"long name gets a collision-free username", repo.DefaultKopiaIdentity(), repo.PVC{Namespace: "db", Name: long},
			long[:41] + "-f3e4737a@db:/data"},
		{"a stem may end in a dash", repo.DefaultKopiaIdentity(), repo.PVC{Namespace: "db", Name: strings.Repeat("b", 40) + "-" + strings.Repeat("b", 8) + "-x"},
			strings.Repeat("b", 40) + "--" + "80b2a91f@db:/data"},
		{"leading dot-separated parts", repo.DefaultKopiaIdentity(), repo.PVC{Namespace: "n", Name: "0.1.2"}, "012-backup@n:/data"},
		{"explicit username and hostname are verbatim", repo.KopiaIdentity{UserName: "{namespace}.{pvc}", HostName: "cluster-a", Path: "/data"},
			repo.PVC{Namespace: "web", Name: "a.b"}, "web.a.b@cluster-a:/data"},
		{"source name template", repo.KopiaIdentity{SourceName: "{namespace}-{pvc}", Path: "/mnt"},
			repo.PVC{Namespace: "web", Name: "a.b"}, "web-ab@web:/mnt"},
		{"empty after sanitising", repo.KopiaIdentity{SourceName: "{pvc}", Path: "/data"},
			repo.PVC{Namespace: "web", Name: "..."}, "volsync-default@web:/data"},
		// Hand-written: the mover cuts at 50, after sanitising (DOMAIN.md 2 and 8); where it would
		// cut, the policies set a collision-free username (41 characters, "-", sha256sum's first 8
		// hex digits of "<namespace>/<pvc>").
		{"dotted", repo.DefaultKopiaIdentity(), repo.PVC{Namespace: "shop", Name: "my.app.data"}, "myappdata-backup@shop:/data"},
		{"61 characters: collision-free", repo.DefaultKopiaIdentity(),
			repo.PVC{Namespace: "db", Name: "analytics-warehouse-clickhouse-data-volume-claim-replica-0001"},
			"analytics-warehouse-clickhouse-data-volum-50b462f4@db:/data"},
		{"49 characters: not cut", repo.DefaultKopiaIdentity(),
			repo.PVC{Namespace: "search", Name: "elasticsearch-data-quickstart-es-default-0"},
			"elasticsearch-data-quickstart-es-default-0-backup@search:/data"},
		{"exactly 50 characters: not cut", repo.DefaultKopiaIdentity(),
			repo.PVC{Namespace: "search", Name: "elasticsearch-data-quickstart-es-default-10"},
			"elasticsearch-data-quickstart-es-default-10-backup@search:/data"},
		{"StatefulSet replica: its own username", repo.DefaultKopiaIdentity(),
			repo.PVC{Namespace: "db", Name: "datadir-cassandra-cluster-dc1-rack1-production-01-0"},
			"datadir-cassandra-cluster-dc1-rack1-produ-f72b680e@db:/data"},
		{"its sibling replica does not share it", repo.DefaultKopiaIdentity(),
			repo.PVC{Namespace: "db", Name: "datadir-cassandra-cluster-dc1-rack1-production-01-1"},
			"datadir-cassandra-cluster-dc1-rack1-produ-65604fac@db:/data"},
		{"dots dropped before the cut", repo.DefaultKopiaIdentity(),
			repo.PVC{Namespace: "db", Name: "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z.0.1.2.3.4.5.6.7.8.9"},
			"abcdefghijklmnopqrstuvwxyz0123456789-backup@db:/data"},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, tc.id.Validate())
			assert.Equal(t, tc.want, tc.id.Source(tc.pvc).String(), "the source VolSync's Kopia mover writes for the policies' RS (rule: username sanitised; collision-free where the mover would cut it at 50)")

			if tc.id == repo.DefaultKopiaIdentity() {
				assert.Equal(t, kopiamover.PolicySource(tc.pvc.Namespace, tc.pvc.Name), tc.id.Source(tc.pvc).String(),
					"the mover's rules (kopiamover) disagree with the oracle's lookup")
			}
		})
	}
}

// TestCutSource: the identity the mover derives by itself, cut at 50 characters, is what a long
// name's old backups (and a gate-only RS without an explicit username) are stored under.
func TestCutSource(t *testing.T) {
	long := strings.Repeat("a", 45) + "-database-volume" // 61 characters
	cases := []struct {
		name string
		pvc  repo.PVC
		want string
		cut  bool
	}{
		{"short names are not cut", repo.PVC{Namespace: "web", Name: "app"}, "app-backup@web:/data", false},
		{"long name is cut to 50", repo.PVC{Namespace: "db", Name: long}, long[:50] + "@db:/data", true},
		{"cut may end in a dash", repo.PVC{Namespace: "db", Name: strings.Repeat("b", 49) + "-x"}, strings.Repeat("b", 49) + "-@db:/data", true},
		{"43 characters plus -backup is 50: not cut", repo.PVC{Namespace: "db", Name: strings.Repeat("c", 43)}, strings.Repeat("c", 43) + "-backup@db:/data", false},
		{"44 characters plus -backup is 51: cut", repo.PVC{Namespace: "db", Name: strings.Repeat("c", 44)}, strings.Repeat("c", 44) + "-backu@db:/data", true},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src, cut := repo.DefaultKopiaIdentity().CutSource(tc.pvc)
			assert.Equal(t, tc.want, src.String())
			assert.Equal(t, tc.cut, cut)

			if !cut {
				assert.Equal(t, repo.DefaultKopiaIdentity().Source(tc.pvc), src, "an uncut identity is the identity")
			}
		})
	}

	explicit := repo.KopiaIdentity{SourceName: "{pvc}-backup", UserName: "{pvc}", Path: "/data"}
	_, cut := explicit.CutSource(repo.PVC{Namespace: "db", Name: long})
	assert.False(t, cut, "an explicit username is verbatim: the mover never cuts it")
}

// TestCollisionFreeUsernames: StatefulSet replicas whose RS names share their first 50
// characters (the mover would give both one identity) get different usernames, both 50
// characters long.
func TestCollisionFreeUsernames(t *testing.T) {
	const stem = "prometheus-kube-prometheus-stack-prometheus-db-prometheus-kube-prometheus-stack-prometheus-"

	r0 := repo.DefaultKopiaIdentity().Source(repo.PVC{Namespace: "monitoring", Name: stem + "0"})
	r1 := repo.DefaultKopiaIdentity().Source(repo.PVC{Namespace: "monitoring", Name: stem + "1"})

	// The hashes are sha256sum's of "monitoring/<pvc>".
	assert.Equal(t, "prometheus-kube-prometheus-stack-promethe-a9ac3b55@monitoring:/data", r0.String())
	assert.Equal(t, "prometheus-kube-prometheus-stack-promethe-8aba21c7@monitoring:/data", r1.String())
	assert.Len(t, r0.UserName, repo.MaxKopiaUsernameLen)

	c0, _ := repo.DefaultKopiaIdentity().CutSource(repo.PVC{Namespace: "monitoring", Name: stem + "0"})
	c1, _ := repo.DefaultKopiaIdentity().CutSource(repo.PVC{Namespace: "monitoring", Name: stem + "1"})
	assert.Equal(t, c0, c1, "what the mover derives alone is shared by both replicas")
	assert.Equal(t, "prometheus-kube-prometheus-stack-prometheus-db-pro@monitoring:/data", c0.String())
}

// TestKopiaIdentityMatchesMover compares the oracle's identity with the mover's, field by field,
// for explicit usernames, hostnames and paths too.
func TestKopiaIdentityMatchesMover(t *testing.T) {
	pvcs := []repo.PVC{
		{Namespace: "web", Name: "app"}, {Namespace: "web", Name: "my.app.data"},
		{Namespace: "a.b", Name: "x"}, {Namespace: "db", Name: strings.Repeat("s", 44) + "-data-0"},
	}

	for _, pvc := range pvcs {
		for _, tc := range []struct {
			id    repo.KopiaIdentity
			mover kopiamover.ReplicationSource
		}{
			{repo.DefaultKopiaIdentity(), kopiamover.ReplicationSource{Name: pvc.Name + "-backup", Namespace: pvc.Namespace}},
			{repo.KopiaIdentity{SourceName: "{pvc}", Path: "/var/lib/x"},
				kopiamover.ReplicationSource{Name: pvc.Name, Namespace: pvc.Namespace, SourcePathOverride: "/var/lib/x"}},
			{repo.KopiaIdentity{SourceName: "{namespace}-{pvc}", HostName: "cluster-a", Path: "/data"},
				kopiamover.ReplicationSource{Name: pvc.Namespace + "-" + pvc.Name, Namespace: pvc.Namespace, Hostname: "cluster-a"}},
			{repo.KopiaIdentity{UserName: "{pvc}.{namespace}", HostName: "h", Path: "/data"},
				kopiamover.ReplicationSource{Name: "whatever", Namespace: pvc.Namespace, Username: pvc.Name + "." + pvc.Namespace, Hostname: "h"}},
		} {
			// Where the mover would cut the derived username, the policies set a collision-free
			// one (TestCollisionFreeUsernames); what the mover derives by itself is CutSource.
			if cut, isCut := tc.id.CutSource(pvc); isCut {
				assert.Equal(t, tc.mover.Source(), cut.String(), "%s with %+v", pvc, tc.id)
				continue
			}

			assert.Equal(t, tc.mover.Source(), tc.id.Source(pvc).String(), "%s with %+v", pvc, tc.id)
		}
	}
}

func TestKopiaUsername(t *testing.T) {
	cases := map[string]string{
		"app-backup": "app-backup",
		"-_app_-":    "app",
		"a.b.c":      "abc",
		"":           "volsync-default",
		"...":        "volsync-default",
		"--__--":     "volsync-default",
		"ÄpP!":       "pP",
		// The edges of each kept range, and the characters just outside them.
		"/09:@AZ[`az{":          "09AZaz",
		strings.Repeat("x", 60): strings.Repeat("x", 50),
	}
	for in, want := range cases {
		assert.Equal(t, want, repo.KopiaUsername(in), "input %q", in)
		assert.Equal(t, kopiamover.Username("", in), repo.KopiaUsername(in), "the mover's rules, input %q", in)
	}
}

func TestKopiaHostname(t *testing.T) {
	cases := []struct{ ns, obj, want string }{
		{"web", "x", "web"},
		{"my_ns", "x", "my-ns"},
		{"-.web.-", "x", "web"},
		{"", "obj.name", "obj.name"},
		{"!!", "__", "volsync-default"},
		{"/09:@AZ[`az{", "x", "09AZaz"},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, repo.KopiaHostname(tc.ns, tc.obj), "%q %q", tc.ns, tc.obj)
		assert.Equal(t, kopiamover.Hostname("", tc.ns, tc.obj), repo.KopiaHostname(tc.ns, tc.obj), "the mover's rules, %q %q", tc.ns, tc.obj)
	}
}

func TestKopiaIdentityValidate(t *testing.T) {
	cases := []struct {
		name string
		id   repo.KopiaIdentity
		errs []string
	}{
		{"default", repo.DefaultKopiaIdentity(), nil},
		{"unknown placeholder", repo.KopiaIdentity{SourceName: "{name}-backup", Path: "/data"}, []string{"{name}"}},
		{"relative path and no source", repo.KopiaIdentity{UserName: "u-{pvc}", Path: "data"}, []string{"source name template is needed", "must be absolute"}},
		{"source name without {pvc} (a Flux ${APP} substitution)", repo.KopiaIdentity{SourceName: "gitea", Path: "/data"}, []string{`source name template "gitea" has no {pvc}`}},
		{"username without {pvc}", repo.KopiaIdentity{SourceName: "{pvc}", UserName: "gitea", Path: "/data"}, []string{`username template "gitea" has no {pvc}`}},
		{"namespace alone is not enough", repo.KopiaIdentity{SourceName: "{namespace}-backup", Path: "/data"}, []string{"has no {pvc}"}},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.id.Validate()
			if tc.errs == nil {
				assert.NoError(t, err)
				return
			}

			require.ErrorIs(t, err, repo.ErrInvalidConfig)

			for _, e := range tc.errs {
				assert.Contains(t, err.Error(), e)
			}
		})
	}
}

// FuzzKopiaIdentity checks, for any valid PVC, that the oracle looks up the source VolSync's
// mover writes (kopiamover), and the invariants the mover guarantees.
func FuzzKopiaIdentity(f *testing.F) {
	for _, s := range []string{"app", "my.app.data", strings.Repeat("a", 253), "0", "a-.-b"} {
		f.Add("ns", s)
	}

	f.Fuzz(func(t *testing.T, ns, name string) {
		pvc := repo.PVC{Namespace: ns, Name: name}
		if pvc.Validate() != nil {
			return
		}

		src := repo.DefaultKopiaIdentity().Source(pvc)
		assert.Equal(t, kopiamover.PolicySource(ns, name), src.String(), "the mover writes another source than the oracle looks up")
		assert.NotEmpty(t, src.UserName)
		assert.LessOrEqual(t, len(src.UserName), repo.MaxKopiaUsernameLen)
		assert.True(t, utf8.ValidString(src.UserName))
		assert.NotContains(t, src.UserName, ".")
		assert.Equal(t, ns, src.Host, "a valid namespace is its own hostname")
		assert.Equal(t, "/data", src.Path)
		assert.Equal(t, src, repo.DefaultKopiaIdentity().Source(pvc), "deterministic")
	})
}

func TestOwnerAndFits(t *testing.T) {
	def := repo.DefaultKopiaIdentity()
	app := repo.KopiaIdentity{SourceName: "{pvc}", Path: "/data"}
	explicit := repo.KopiaIdentity{SourceName: "{pvc}-backup", UserName: "{namespace}.{pvc}", HostName: "cluster-a", Path: "/data"}
	hostTmpl := repo.KopiaIdentity{SourceName: "{pvc}-backup", HostName: "{namespace}.prod", Path: "/data"}
	src := func(s string) repo.KopiaSource {
		user, rest, _ := strings.Cut(s, "@")
		host, path, _ := strings.Cut(rest, ":")

		return repo.KopiaSource{UserName: user, Host: host, Path: path}
	}

	cases := []struct {
		name  string
		id    repo.KopiaIdentity
		src   string
		owner string // "" when none
		fits  bool
	}{
		{"default", def, "app-backup@web:/data", "web/app", true},
		{"dots dropped: one owner of several", def, "myappdata-backup@web:/data", "web/myappdata", true},
		{"another path", def, "app-backup@web:/var/lib/app", "", false},
		{"another naming scheme", def, "app@web:/data", "", false},
		{"suffix only", def, "-backup@web:/data", "", false},
		{"not a valid PVC name", def, "App_1-backup@web:/data", "", false},
		{"hashed long name", def, "prometheus-kube-prometheus-stack-promethe-a9ac3b55@monitoring:/data", "", true},
		{"cut long name does not fit", def, "prometheus-kube-prometheus-stack-prometheus-db-pro@monitoring:/data", "", false},
		{"hash-like but upper case", def, "prometheus-kube-prometheus-stack-promethe-A9AC3B55@monitoring:/data", "", false},
		{"app layout", app, "gitea@dev:/data", "dev/gitea", true},
		{"app layout: -backup is another PVC", app, "gitea-backup@dev:/data", "dev/gitea-backup", true},
		{"explicit username and hostname", explicit, "web.app@cluster-a:/data", "web/app", true},
		{"explicit hostname elsewhere", explicit, "web.app@cluster-b:/data", "", false},
		{"hostname template", hostTmpl, "app-backup@web.prod:/data", "web/app", true},
		{"hostname template not matched", hostTmpl, "app-backup@web:/data", "", false},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.id.Matcher()
			owner, ok := m.Owner(src(tc.src))
			if tc.owner == "" {
				assert.False(t, ok, "owner %v", owner)
			} else {
				require.True(t, ok)
				assert.Equal(t, tc.owner, owner.String())
			}

			assert.Equal(t, tc.fits, m.Fits(src(tc.src)))
		})
	}
}

// FuzzKopiaNames compares the username and hostname derivations with the mover's for any
// string, valid Kubernetes name or not (templates can build names the API server would refuse).
func FuzzKopiaNames(f *testing.F) {
	for _, s := range []string{"app-backup", "my.app.data-backup", "_-x-_", "ÄpP!", "a\xffb", strings.Repeat("b", 49) + "-x"} {
		f.Add(s, "web")
	}

	f.Fuzz(func(t *testing.T, name, namespace string) {
		assert.Equal(t, kopiamover.Username("", name), repo.KopiaUsername(name), "username of %q", name)
		assert.Equal(t, kopiamover.Hostname("", namespace, name), repo.KopiaHostname(namespace, name), "hostname of %q %q", namespace, name)
	})
}
