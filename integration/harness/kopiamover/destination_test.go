package kopiamover_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness/kopiamover"
)

// Every expected string below is written by hand from the rule it tests (destination.go).

type destinationCase struct {
	name string
	rd   kopiamover.ReplicationDestination
	want string // "" when the fork rejects the RD
}

func checkDestinations(t *testing.T, cases []destinationCase) {
	t.Helper()

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.rd.Source()
			if tc.want == "" {
				require.ErrorIs(t, err, kopiamover.ErrRejected)
				assert.Empty(t, got)

				return
			}

			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// D1: a username without a hostname, or a hostname without a username, is refused, whatever
// else the RD says; both or neither pass.
func TestDestinationPairing(t *testing.T) {
	checkDestinations(t, []destinationCase{
		{"username alone", kopiamover.ReplicationDestination{Name: "d", Namespace: "web", Username: "u"}, ""},
		{"hostname alone", kopiamover.ReplicationDestination{Name: "d", Namespace: "web", Hostname: "h"}, ""},
		{"username with sourceIdentity", kopiamover.ReplicationDestination{Name: "d", Namespace: "web", Username: "u", SourceName: "app"}, ""},
		{"hostname with sourceIdentity", kopiamover.ReplicationDestination{Name: "d", Namespace: "web", Hostname: "h", SourceName: "app"}, ""},
		{"both", kopiamover.ReplicationDestination{Name: "d", Namespace: "web", Username: "u", Hostname: "h"}, "u@h:/data"},
		{"neither", kopiamover.ReplicationDestination{Name: "d", Namespace: "web"}, "d@web:/data"},
	})
}

// The RD the custom-path policies generated before this rule was restated: the username the RS
// writes, sourceIdentity {sourceName: the RS's name, sourcePathOverride}, no hostname. The fork
// refuses it (D1): the PVC would wait for ever.
func TestOldCustomPathDestinationIsRejected(t *testing.T) {
	for _, rd := range []kopiamover.ReplicationDestination{
		{Name: "my.app.data-backup", Namespace: "web", Username: "myappdata-backup",
			SourceName: "my.app.data-backup", SourcePathOverride: "/var/lib/postgresql"},
		{Name: "postgres-primary-data-for-the-billing-service-in-productionx-backup", Namespace: "web",
			Username:   "postgres-primary-data-for-the-billing-ser-8fc9c94c",
			SourceName: "postgres-primary-data-for-the-billing-service-in-productionx-backup", SourcePathOverride: "/var/lib/postgresql"},
	} {
		_, err := rd.Source()
		require.ErrorIs(t, err, kopiamover.ErrRejected, "%+v", rd)
		assert.Contains(t, err.Error(), "without a hostname")
	}
}

// D2: the username is the stated one, else sourceName's (sanitised and cut as an RS name is),
// else the RD's own name's.
func TestDestinationUsername(t *testing.T) {
	long := "postgres-primary-data-for-the-billing-service-in-productionx-backup" // 67 characters
	checkDestinations(t, []destinationCase{
		{"stated", kopiamover.ReplicationDestination{Name: "d", Namespace: "web", Username: "my.app", Hostname: "web", SourceName: "app"}, "my.app@web:/data"},
		{"from sourceName", kopiamover.ReplicationDestination{Name: "app-dst", Namespace: "web", SourceName: "app"}, "app@web:/data"},
		{"sourceName sanitised", kopiamover.ReplicationDestination{Name: "d", Namespace: "web", SourceName: "my.app.data-backup"}, "myappdata-backup@web:/data"},
		{"sourceName cut at 50", kopiamover.ReplicationDestination{Name: "d", Namespace: "web", SourceName: long},
			"postgres-primary-data-for-the-billing-service-in-p@web:/data"},
		// The policies' collision-free username (50 characters) survives as the sourceName.
		{"a 50-character username as sourceName", kopiamover.ReplicationDestination{Name: "d", Namespace: "web",
			SourceName: "postgres-primary-data-for-the-billing-ser-8fc9c94c"}, "postgres-primary-data-for-the-billing-ser-8fc9c94c@web:/data"},
		// A cut that ends in '-' cannot be a sourceName (the trim removes it) but one more
		// character is cut away again.
		{"trailing dash trimmed", kopiamover.ReplicationDestination{Name: "d", Namespace: "db",
			SourceName: "datadir-cassandra-cluster-dc1-rack1-production-01-"}, "datadir-cassandra-cluster-dc1-rack1-production-01@db:/data"},
		{"one character more, cut again", kopiamover.ReplicationDestination{Name: "d", Namespace: "db",
			SourceName: "datadir-cassandra-cluster-dc1-rack1-production-01-x"}, "datadir-cassandra-cluster-dc1-rack1-production-01-@db:/data"},
		{"empty sourceName is no sourceIdentity", kopiamover.ReplicationDestination{Name: "app-dst", Namespace: "web", SourceNamespace: "prod",
			SourcePathOverride: "/srv"}, "app-dst@web:/data"},
		{"own name cut", kopiamover.ReplicationDestination{Name: long, Namespace: "web"}, "postgres-primary-data-for-the-billing-service-in-p@web:/data"},
	})
}

// D3: a stated hostname is taken as it is and makes the RD restore /data, whatever sourceIdentity
// says; without one, sourceIdentity gives the hostname and its sourcePathOverride the path.
func TestDestinationHostnameAndPath(t *testing.T) {
	checkDestinations(t, []destinationCase{
		{"stated hostname drops the path", kopiamover.ReplicationDestination{Name: "app-dst", Namespace: "web", Username: "u", Hostname: "h",
			SourceName: "app", SourcePathOverride: "/var/lib/app"}, "u@h:/data"},
		{"stated hostname drops the discovered path", kopiamover.ReplicationDestination{Name: "app-dst", Namespace: "web", Username: "u", Hostname: "h",
			SourceName: "app", DiscoverablePathOverride: "/var/lib/app"}, "u@h:/data"},
		{"sourceIdentity path", kopiamover.ReplicationDestination{Name: "app-dst", Namespace: "web", SourceName: "app",
			SourcePathOverride: "/var/lib/app"}, "app@web:/var/lib/app"},
		{"stated /data is /data", kopiamover.ReplicationDestination{Name: "app-dst", Namespace: "web", SourceName: "app",
			SourcePathOverride: "/data"}, "app@web:/data"},
		{"a path without sourceName is ignored", kopiamover.ReplicationDestination{Name: "app", Namespace: "web",
			SourcePathOverride: "/var/lib/app"}, "app@web:/data"},
		{"own namespace sanitised", kopiamover.ReplicationDestination{Name: "d", Namespace: "my_ns"}, "d@my-ns:/data"},
	})
}

// D4: discovery lends the named RS's path only when the RD states none and no sourcePVCName,
// and only on the sourceIdentity branch.
func TestDestinationDiscovery(t *testing.T) {
	checkDestinations(t, []destinationCase{
		{"discovered path", kopiamover.ReplicationDestination{Name: "app-dst", Namespace: "web", SourceName: "app",
			DiscoverablePathOverride: "/var/lib/app"}, "app@web:/var/lib/app"},
		{"stated path wins", kopiamover.ReplicationDestination{Name: "app-dst", Namespace: "web", SourceName: "app",
			SourcePathOverride: "/srv", DiscoverablePathOverride: "/var/lib/app"}, "app@web:/srv"},
		{"sourcePVCName skips discovery", kopiamover.ReplicationDestination{Name: "app-dst", Namespace: "web", SourceName: "app",
			SourcePVCName: "data", DiscoverablePathOverride: "/var/lib/app"}, "app@web:/data"},
		{"sourcePVCName changes no hostname", kopiamover.ReplicationDestination{Name: "app-dst", Namespace: "web", SourceName: "app",
			SourcePVCName: "other-pvc"}, "app@web:/data"},
	})
}

// D5: sourceNamespace is the hostname, sanitised, defaulting to the RD's namespace; any
// hostname the sanitising leaves as it is can be stated through it.
func TestDestinationSourceNamespace(t *testing.T) {
	checkDestinations(t, []destinationCase{
		{"default", kopiamover.ReplicationDestination{Name: "d", Namespace: "web", SourceName: "app"}, "app@web:/data"},
		{"another namespace", kopiamover.ReplicationDestination{Name: "d", Namespace: "web", SourceName: "app", SourceNamespace: "prod"}, "app@prod:/data"},
		{"a dotted hostname", kopiamover.ReplicationDestination{Name: "d", Namespace: "media", SourceName: "data-volsync",
			SourceNamespace: "media.cluster-a", SourcePathOverride: "/srv"}, "data-volsync@media.cluster-a:/srv"},
		{"sanitised", kopiamover.ReplicationDestination{Name: "d", Namespace: "web", SourceName: "app", SourceNamespace: "-my_ns."}, "app@my-ns:/data"},
		{"ignored with a stated hostname", kopiamover.ReplicationDestination{Name: "d", Namespace: "web", Username: "u", Hostname: "h",
			SourceName: "app", SourceNamespace: "prod"}, "u@h:/data"},
	})
}

// The CRD's pattern keeps a username ending in '-' (or '_') out of spec.kopia.username.
func TestDestinationCRDPattern(t *testing.T) {
	for _, tc := range []struct {
		username, hostname string
		ok                 bool
	}{
		{"myappdata-backup", "web", true},
		{"my.app.data", "web.prod", true},
		{"a", "b", true},
		{"", "", true},
		{"datadir-cassandra-cluster-dc1-rack1-production-01-", "db", false},
		{"app_", "web", false},
		{"app", "-web", false},
		{"user@domain", "web", false},
	} {
		err := kopiamover.ReplicationDestination{Name: "d", Namespace: "web", Username: tc.username, Hostname: tc.hostname}.CRDValid()
		assert.Equal(t, tc.ok, err == nil, "%q %q: %v", tc.username, tc.hostname, err)
	}
}

func TestDestinationOf(t *testing.T) {
	rd := kopiamover.DestinationOf(map[string]any{
		"metadata": map[string]any{"name": "d", "namespace": "web"},
		"spec": map[string]any{"kopia": map[string]any{"username": "u", "hostname": "h", "sourceIdentity": map[string]any{
			"sourceName": "s", "sourceNamespace": "n", "sourcePVCName": "p", "sourcePathOverride": "/x"}}},
	})
	assert.Equal(t, kopiamover.ReplicationDestination{Name: "d", Namespace: "web", Username: "u", Hostname: "h",
		SourceName: "s", SourceNamespace: "n", SourcePVCName: "p", SourcePathOverride: "/x"}, rd)
	assert.Equal(t, kopiamover.ReplicationDestination{}, kopiamover.DestinationOf(map[string]any{}))
}
