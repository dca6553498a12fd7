package kopiamover_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/backup-oracle/backup-oracle/integration/harness/kopiamover"
)

// The expected strings are written by hand from the mover's rules (see the package comment),
// so this statement is itself checked against something other than code.
func TestPolicySource(t *testing.T) {
	cases := []struct{ namespace, pvc, want string }{
		{"web", "postgres", "postgres-backup@web:/data"},
		{"web", "my.app.data", "myappdata-backup@web:/data"},
		// 42 characters: "…-0-backup" is 49, not cut; 43 characters: exactly 50, not cut.
		{"search", "elasticsearch-data-quickstart-es-default-0", "elasticsearch-data-quickstart-es-default-0-backup@search:/data"},
		{"search", "elasticsearch-data-quickstart-es-default-10", "elasticsearch-data-quickstart-es-default-10-backup@search:/data"},
		// The mover would cut these at 50 after sanitising (the StatefulSet ordinal cut away, the
		// name ending in '-', replicas -0 and -1 sharing one username): the policies set an
		// explicit collision-free username instead (hashes: sha256sum of "db/<pvc>").
		{"db", "datadir-cassandra-cluster-dc1-rack1-production-01-0", "datadir-cassandra-cluster-dc1-rack1-produ-f72b680e@db:/data"},
		{"db", "datadir-cassandra-cluster-dc1-rack1-production-01-1", "datadir-cassandra-cluster-dc1-rack1-produ-65604fac@db:/data"},
		{"db", "analytics-warehouse-clickhouse-data-volume-claim-replica-0001", "analytics-warehouse-clickhouse-data-volum-50b462f4@db:/data"},
		// Dots are dropped before the cut, so a dotted long name keeps more characters.
		{"db", "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z.0.1.2.3.4.5.6.7.8.9", "abcdefghijklmnopqrstuvwxyz0123456789-backup@db:/data"},
		{"n", "0.1.2", "012-backup@n:/data"},
	}

	for _, tc := range cases {
		assert.Equal(t, tc.want, kopiamover.PolicySource(tc.namespace, tc.pvc), "%s/%s", tc.namespace, tc.pvc)
	}
}

// TestMoverCutsWithoutExplicitUsername: what the mover derives by itself for those names (an RS
// of the user's own, or backups from before the policies set usernames) is cut and shared.
func TestMoverCutsWithoutExplicitUsername(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"datadir-cassandra-cluster-dc1-rack1-production-01-0-backup", "datadir-cassandra-cluster-dc1-rack1-production-01-@db:/data"},
		{"datadir-cassandra-cluster-dc1-rack1-production-01-1-backup", "datadir-cassandra-cluster-dc1-rack1-production-01-@db:/data"},
		{"analytics-warehouse-clickhouse-data-volume-claim-replica-0001-backup", "analytics-warehouse-clickhouse-data-volume-claim-r@db:/data"},
	} {
		assert.Equal(t, tc.want, kopiamover.ReplicationSource{Name: tc.name, Namespace: "db"}.Source())
	}
}

func TestUsername(t *testing.T) {
	cases := []struct{ explicit, name, want string }{
		{"", "app-backup", "app-backup"},
		{"", "-_app_-", "app"},
		{"", "app-backup--test", "app-backup--test"},
		{"", "App_Backup.123", "App_Backup123"},
		{"", "ÄpP!", "pP"},
		{"", "", "volsync-default"},
		{"", "...", "volsync-default"},
		{"", "-_-", "volsync-default"},
		{"", strings.Repeat("a", 49) + "_b", strings.Repeat("a", 49) + "_"},
		{"", strings.Repeat("z", 51), strings.Repeat("z", 50)},
		{"user@domain.com", "ignored", "user@domain.com"},
	}

	for _, tc := range cases {
		assert.Equal(t, tc.want, kopiamover.Username(tc.explicit, tc.name), "%q %q", tc.explicit, tc.name)
	}
}

func TestHostname(t *testing.T) {
	cases := []struct{ explicit, namespace, name, want string }{
		{"", "web", "x", "web"},
		{"", "my_ns", "x", "my-ns"},
		{"", "_ns_", "x", "ns"},
		{"", "-.web.-", "x", "web"},
		{"", "a.b", "x", "a.b"},
		{"", "", "obj.name_1", "obj.name-1"},
		{"", "!!", "__", "volsync-default"},
		{"cluster-a", "web", "x", "cluster-a"},
		{"", strings.Repeat("h", 63), "x", strings.Repeat("h", 63)}, // no cut for hostnames
	}

	for _, tc := range cases {
		assert.Equal(t, tc.want, kopiamover.Hostname(tc.explicit, tc.namespace, tc.name), "%q %q %q", tc.explicit, tc.namespace, tc.name)
	}
}

func TestObjects(t *testing.T) {
	assert.Equal(t, "myappdata@web:/var/lib/app",
		kopiamover.ReplicationSource{Name: "my.app.data", Namespace: "web", SourcePathOverride: "/var/lib/app"}.Source())
	assert.Equal(t, "u@h:/data",
		kopiamover.ReplicationSource{Name: "rs", Namespace: "web", Username: "u", Hostname: "h"}.Source())
	assert.Equal(t, "volsync-default@my-ns:/data", kopiamover.ReplicationSource{Name: "..", Namespace: "my_ns."}.Source())
}
