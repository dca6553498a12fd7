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
		{"long name is cut to 50", repo.DefaultKopiaIdentity(), repo.PVC{Namespace: "db", Name: long},
			long[:50] + "@db:/data"},
		{"cut may end in a dash", repo.DefaultKopiaIdentity(), repo.PVC{Namespace: "db", Name: strings.Repeat("b", 49) + "-x"},
			strings.Repeat("b", 49) + "-@db:/data"},
		{"leading dot-separated parts", repo.DefaultKopiaIdentity(), repo.PVC{Namespace: "n", Name: "0.1.2"}, "012-backup@n:/data"},
		{"explicit username and hostname are verbatim", repo.KopiaIdentity{UserName: "{namespace}.{pvc}", HostName: "cluster-a", Path: "/data"},
			repo.PVC{Namespace: "web", Name: "a.b"}, "web.a.b@cluster-a:/data"},
		{"source name template", repo.KopiaIdentity{SourceName: "{namespace}-{pvc}", Path: "/mnt"},
			repo.PVC{Namespace: "web", Name: "a.b"}, "web-ab@web:/mnt"},
		{"empty after sanitising", repo.KopiaIdentity{SourceName: "{pvc}", Path: "/data"},
			repo.PVC{Namespace: "web", Name: "..."}, "volsync-default@web:/data"},
		// Hand-written: the rule is cut at 50, after sanitising (DOMAIN.md 2 and 8).
		{"dotted", repo.DefaultKopiaIdentity(), repo.PVC{Namespace: "shop", Name: "my.app.data"}, "myappdata-backup@shop:/data"},
		{"61 characters cut at 50", repo.DefaultKopiaIdentity(),
			repo.PVC{Namespace: "db", Name: "analytics-warehouse-clickhouse-data-volume-claim-replica-0001"},
			"analytics-warehouse-clickhouse-data-volume-claim-r@db:/data"},
		{"49 characters: not cut", repo.DefaultKopiaIdentity(),
			repo.PVC{Namespace: "search", Name: "elasticsearch-data-quickstart-es-default-0"},
			"elasticsearch-data-quickstart-es-default-0-backup@search:/data"},
		{"exactly 50 characters: not cut", repo.DefaultKopiaIdentity(),
			repo.PVC{Namespace: "search", Name: "elasticsearch-data-quickstart-es-default-10"},
			"elasticsearch-data-quickstart-es-default-10-backup@search:/data"},
		{"StatefulSet replica cut to a trailing dash", repo.DefaultKopiaIdentity(),
			repo.PVC{Namespace: "db", Name: "datadir-cassandra-cluster-dc1-rack1-production-01-0"},
			"datadir-cassandra-cluster-dc1-rack1-production-01-@db:/data"},
		{"its sibling replica shares the username", repo.DefaultKopiaIdentity(),
			repo.PVC{Namespace: "db", Name: "datadir-cassandra-cluster-dc1-rack1-production-01-1"},
			"datadir-cassandra-cluster-dc1-rack1-production-01-@db:/data"},
		{"dots dropped before the cut", repo.DefaultKopiaIdentity(),
			repo.PVC{Namespace: "db", Name: "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z.0.1.2.3.4.5.6.7.8.9"},
			"abcdefghijklmnopqrstuvwxyz0123456789-backup@db:/data"},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, tc.id.Validate())
			assert.Equal(t, tc.want, tc.id.Source(tc.pvc).String(), "the source VolSync's Kopia mover writes (rule: username cut to 50 after sanitising)")

			if tc.id == repo.DefaultKopiaIdentity() {
				assert.Equal(t, kopiamover.PolicySource(tc.pvc.Namespace, tc.pvc.Name), tc.id.Source(tc.pvc).String(),
					"the mover's rules (kopiamover) disagree with the oracle's lookup")
			}
		})
	}
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
		{"relative path and no source", repo.KopiaIdentity{UserName: "u", Path: "data"}, []string{"source name template is needed", "must be absolute"}},
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
