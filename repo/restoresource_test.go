package repo_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness/kopiamover"
	"github.com/backup-oracle/backup-oracle/repo"
)

func TestParseKopiaSource(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want repo.KopiaSource
	}{
		{"data-volsync@media:/data", repo.KopiaSource{UserName: "data-volsync", Host: "media", Path: "/data"}},
		{"app@media.cluster-a:/pvc/app", repo.KopiaSource{UserName: "app", Host: "media.cluster-a", Path: "/pvc/app"}},
		{"my.app@web:/var/lib/a:b@c", repo.KopiaSource{UserName: "my.app", Host: "web", Path: "/var/lib/a:b@c"}}, // the path keeps what follows
		{"u@h:/", repo.KopiaSource{UserName: "u", Host: "h", Path: "/"}},
	} {
		got, err := repo.ParseKopiaSource(tc.in)
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
		assert.Equal(t, tc.in, got.String(), "round trip")
	}

	for _, tc := range []struct{ in, why string }{
		{"", "no '@'"},
		{"data-volsync", "no '@'"},
		{"data@media", "no ':'"},
		{"@media:/data", "the username is empty"},
		{"a:b@media:/data", "the username is empty or holds ':'"},
		{"data@:/data", "the hostname is empty"},
		{"data@a@b:/data", "the hostname is empty or holds '@'"},
		{"data@media:data", "the path is not absolute"},
		{"data@media:", "the path is not absolute"},
		{"data @media:/data", "white space"},
		{"data@media:/my data", "white space"},
		{"data@media:/data\n", "white space"},
	} {
		_, err := repo.ParseKopiaSource(tc.in)
		require.ErrorIs(t, err, repo.ErrInvalidParameter, "%q", tc.in)
		assert.Contains(t, err.Error(), tc.why, "%q", tc.in)
		assert.Contains(t, err.Error(), "want <username>@<hostname>:<path>", "%q: the error says the form", tc.in)
	}
}

func TestCheckOwner(t *testing.T) {
	media := repo.PVC{Namespace: "media", Name: "data"}

	for _, tc := range []struct {
		identity repo.KopiaIdentity
		host     string
		ok       bool
	}{
		{repo.DefaultKopiaIdentity(), "media", true},
		{repo.DefaultKopiaIdentity(), "media.cluster-a", true}, // kopiur's <namespace>.<cluster>
		{repo.DefaultKopiaIdentity(), "media.a.b", true},
		{repo.DefaultKopiaIdentity(), "mediax", false},
		{repo.DefaultKopiaIdentity(), "medi", false},
		{repo.DefaultKopiaIdentity(), "other", false},
		{repo.DefaultKopiaIdentity(), "other.media", false},
		{repo.DefaultKopiaIdentity(), "media-", false},
		{repo.KopiaIdentity{SourceName: "{pvc}-src", HostName: "{namespace}.prod", Path: "/data"}, "media.prod", true},
		{repo.KopiaIdentity{SourceName: "{pvc}-src", HostName: "{namespace}.prod", Path: "/data"}, "media.prod.eu", true},
		{repo.KopiaIdentity{SourceName: "{pvc}-src", HostName: "{namespace}.prod", Path: "/data"}, "media", false},
	} {
		err := tc.identity.CheckOwner(media, repo.KopiaSource{UserName: "u", Host: tc.host, Path: "/data"})
		if tc.ok {
			assert.NoError(t, err, "%s with hostname template %q", tc.host, tc.identity.HostName)
			continue
		}

		require.ErrorIs(t, err, repo.ErrForeignSource, "%s with hostname template %q", tc.host, tc.identity.HostName)
		assert.Contains(t, err.Error(), "a PVC may only name a source of its own namespace")
	}
}

// The destinations are written by hand; every one is then held to the fork's rules as
// kopiamover restates them: the fork accepts the RD (and the CRD its fields) and restores exactly
// the source named.
func TestKopiaDestinationOf(t *testing.T) {
	cut := "datadir-cassandra-cluster-dc1-rack1-production-01-" // the mover's cut: 50 characters ending in '-'

	for _, tc := range []struct {
		src  string
		want repo.KopiaDestination
	}{
		{"data-volsync@media:/data", repo.KopiaDestination{Username: "data-volsync", Hostname: "media"}},
		{"my.app.data@web.prod:/data", repo.KopiaDestination{Username: "my.app.data", Hostname: "web.prod"}},
		{"postgres-primary-data-for-the-billing-service-in-productionx@web:/data",
			repo.KopiaDestination{Username: "postgres-primary-data-for-the-billing-service-in-productionx", Hostname: "web"}},
		{"data-volsync@media:/srv/data", repo.KopiaDestination{SourceName: "data-volsync", SourceNamespace: "media", SourcePathOverride: "/srv/data"}},
		{"app@media.cluster-a:/pvc/app", repo.KopiaDestination{SourceName: "app", SourceNamespace: "media.cluster-a", SourcePathOverride: "/pvc/app"}},
		{"postgres-primary-data-for-the-billing-ser-8fc9c94c@web:/var/lib/postgresql",
			repo.KopiaDestination{SourceName: "postgres-primary-data-for-the-billing-ser-8fc9c94c", SourceNamespace: "web", SourcePathOverride: "/var/lib/postgresql"}},
		{cut + "@db:/data", repo.KopiaDestination{SourceName: cut + "x", SourceNamespace: "db", SourcePathOverride: "/data"}},
		{cut + "@db:/srv", repo.KopiaDestination{SourceName: cut + "x", SourceNamespace: "db", SourcePathOverride: "/srv"}},
		{"App_1@db:/srv", repo.KopiaDestination{SourceName: "App_1", SourceNamespace: "db", SourcePathOverride: "/srv"}},
	} {
		t.Run(tc.src, func(t *testing.T) {
			src, err := repo.ParseKopiaSource(tc.src)
			require.NoError(t, err)

			got, err := repo.KopiaDestinationOf(src)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.want.SourceName != "", got.SourceIdentity())

			rd := moverDestination(got)
			require.NoError(t, rd.CRDValid())

			restores, err := rd.Source()
			require.NoError(t, err, "the fork refuses the RD")
			assert.Equal(t, tc.src, restores, "the fork restores another source")
		})
	}

	for _, tc := range []struct{ src, why string }{
		{"my.app.data@web:/srv", "with a path other than /data"},                     // a dot: the derivation drops it
		{"data@web_x:/srv", "with a path other than /data"},                          // '_' becomes '-' in a derived hostname
		{"data@web.:/srv", "with a path other than /data"},                           // a trailing '.' is trimmed
		{"-data@web:/srv", "with a path other than /data"},                           // a leading '-' is trimmed
		{"data-@web:/srv", "with a path other than /data"},                           // a trailing '-' only after a cut at 50
		{strings.Repeat("a", 51) + "@web:/srv", "with a path other than /data"},      // longer than the cut
		{strings.Repeat("a", 48) + "-@web:/data", "can state neither this username"}, // 49 characters ending in '-': not a cut
		{"ÄpP@web:/data", "can state neither"},
	} {
		src, err := repo.ParseKopiaSource(tc.src)
		require.NoError(t, err, tc.src)

		_, err = repo.KopiaDestinationOf(src)
		require.ErrorIs(t, err, repo.ErrNotRestorable, tc.src)
		assert.Contains(t, err.Error(), tc.why, tc.src)
	}
}

// moverDestination is the RD of the fork stating d, in namespace "ns" (another than any source's:
// the RD must not depend on its own namespace).
func moverDestination(d repo.KopiaDestination) kopiamover.ReplicationDestination {
	return kopiamover.ReplicationDestination{Name: "restore", Namespace: "ns", Username: d.Username, Hostname: d.Hostname,
		SourceName: d.SourceName, SourceNamespace: d.SourceNamespace, SourcePathOverride: d.SourcePathOverride}
}

// FuzzKopiaDestinationOf: whatever the annotation says, a parsed source prints back as given, and
// a destination, when there is one, makes the fork (kopiamover) restore exactly that source.
func FuzzKopiaDestinationOf(f *testing.F) {
	for _, s := range []string{"data-volsync@media:/data", "app@media.cluster-a:/pvc/app", "my.app@web:/srv",
		"datadir-cassandra-cluster-dc1-rack1-production-01-@db:/data", "a@b:/", "x@y.z:/a:b"} {
		f.Add(s)
	}

	f.Fuzz(func(t *testing.T, s string) {
		src, err := repo.ParseKopiaSource(s)
		if err != nil {
			if !errors.Is(err, repo.ErrInvalidParameter) {
				t.Fatalf("%q: %v does not wrap ErrInvalidParameter", s, err)
			}

			return
		}

		if src.String() != s {
			t.Fatalf("%q parses to %+v, printed %q", s, src, src.String())
		}

		d, err := repo.KopiaDestinationOf(src)
		if err != nil {
			if !errors.Is(err, repo.ErrNotRestorable) {
				t.Fatalf("%q: %v does not wrap ErrNotRestorable", s, err)
			}

			return
		}

		rd := moverDestination(d)
		if err := rd.CRDValid(); err != nil {
			t.Fatalf("%q: %v", s, err)
		}

		if got, err := rd.Source(); err != nil || got != s {
			t.Fatalf("%q: the fork restores %q (%v) from %+v", s, got, err, d)
		}
	})
}

func TestSettleRestoreSource(t *testing.T) {
	pvc := repo.PVC{Namespace: "media", Name: "data"}
	src := repo.KopiaSource{UserName: "data-volsync", Host: "media", Path: "/data"}
	q := repo.Query{PVC: pvc, Source: src}

	a := repo.SettleRestoreSource(repo.Answer{PVC: pvc, Decision: repo.Fresh, Backend: "kopia-fs", Source: src.String()}, q)
	assert.Equal(t, repo.Unknown, a.Decision, "never fresh for a named source")
	require.ErrorIs(t, a.Reason, repo.ErrSourceNotFound)
	assert.Contains(t, a.Reason.Error(), "data-volsync@media:/data")
	assert.Contains(t, a.Reason.Error(), repo.RestoreSourceAnnotation)
	assert.Equal(t, src.String(), a.RestoreSource)

	restore := repo.Answer{PVC: pvc, Decision: repo.Restore, SnapshotCount: 1}
	a = repo.SettleRestoreSource(restore, q)
	assert.Equal(t, repo.Restore, a.Decision)
	assert.Equal(t, src.String(), a.RestoreSource)

	fresh := repo.Answer{PVC: pvc, Decision: repo.Fresh}
	assert.Equal(t, fresh, repo.SettleRestoreSource(fresh, repo.Query{PVC: pvc}), "nothing named: unchanged")
}
