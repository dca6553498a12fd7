package restic_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness"
	"github.com/backup-oracle/backup-oracle/repo"
	"github.com/backup-oracle/backup-oracle/repo/restic"
)

// nearMiss is what a test expects of one near miss: where, why, how many snapshots.
type nearMiss struct {
	rel       string // repository, relative to the bucket
	rule      string
	snapshots int
}

// Rules as the README states them (written out, not taken from the package).
const (
	noNamespaceLevel = "a repository named after the PVC without the namespace level (it may hold this PVC's data from any namespace)"
	joined           = "a repository named <namespace>-<pvc>, one level instead of two"
	split            = "a repository at <namespace>/<pvc>, two levels instead of one"
	deeper           = "a repository one directory level deeper than the oracle's template puts it (the movers' repository base has a level the oracle's prefix lacks, e.g. <base>/clusterA/<namespace>/<pvc>)"
)

// TestPerPVCNearMisses: repositories written by the real restic CLI on the real S3 server at
// another level of the bucket than the template puts them are near misses of the PVC they
// probably belong to; other PVCs' own repositories, namespaces' directories and repositories
// without snapshots are not.
func TestPerPVCNearMisses(t *testing.T) {
	st, _ := s3Storage(t)
	cli := harness.NewResticCLI(t, st.s3)

	write := func(rel string, snapshots int) {
		cli.Init(st.url(rel), password, "2")
		for range snapshots {
			cli.Backup(st.url(rel), password)
		}
	}

	// The default template, {prefix}/{namespace}/{pvc} with prefix "volsync".
	write("volsync/web/cache", 1)      // web/cache's own
	write("volsync/shop/db", 1)        // shop/db's own
	write("volsync/shop/redis", 0)     // shop/redis's own, initialised by a restore, empty
	write("volsync/redis", 1)          // no namespace level
	write("volsync/shop-queue", 2)     // <namespace>-<pvc>
	write("volsync/shop-empty", 0)     // <namespace>-<pvc>, no snapshot
	write("volsync/shop-x/app", 1)     // shop-x/app's own: volsync/shop-x is a namespace's directory
	write("volsync/team/web", 0)       // a PVC named like the namespace web (volsync/web is a directory)
	write("volsync/shop/snapshots", 1) // a PVC named "snapshots": volsync/shop is still no repository

	write("volsync/clusterA/shop/orders", 1) // one level deeper (a movers' base …/volsync/clusterA)
	// A file someone left at that level: the level is still descended into (only a config object
	// makes a directory a repository).
	require.NoError(t, os.WriteFile(st.fsPath("volsync/clusterA/README"), []byte("cluster A's backups"), 0o600))

	// The case: prefix "" (the bucket's root), the movers' base one level deeper. A
	// level named like a namespace is descended into where the layout's own directory holds no
	// snapshot.
	write("cluster-a/web/app", 1)

	// A flat template, {prefix}/{namespace}-{pvc} with prefix "flat".
	write("flat/app-db", 1)     // app/db's own
	write("flat/shop/redis", 1) // two levels instead of one
	write("flat/queue", 1)      // no namespace

	cases := []struct {
		name     string
		template string
		prefix   string
		pvc      repo.PVC
		own      int // snapshots in the PVC's own repository
		want     []nearMiss
	}{
		{"no namespace level", "", "volsync", pvc("shop", "redis"), 0, []nearMiss{{"volsync/redis", noNamespaceLevel, 1}}},
		{"no namespace level, from any namespace", "", "volsync", pvc("dev", "redis"), 0, []nearMiss{{"volsync/redis", noNamespaceLevel, 1}}},
		{"namespace-pvc", "", "volsync", pvc("shop", "queue"), 0, []nearMiss{{"volsync/shop-queue", joined, 2}}},
		{"a repository without snapshot is none", "", "volsync", pvc("shop", "empty"), 0, nil},
		{"the same name in another namespace is none", "", "volsync", pvc("shop", "cache"), 0, nil},
		{"a namespace's directory is no repository", "", "volsync", pvc("team", "web"), 0, nil},
		{"a directory holding a PVC named snapshots is no repository", "", "volsync", pvc("x", "shop"), 0, nil},
		{"a namespace-pvc directory of another namespace is none", "", "volsync", pvc("shop", "x"), 0, nil},
		{"nothing anywhere", "", "volsync", pvc("shop", "absent"), 0, nil},
		{"own backup", "", "volsync", pvc("shop", "db"), 1, nil},
		{"one level deeper", "", "volsync", pvc("shop", "orders"), 0, []nearMiss{{"volsync/clusterA/shop/orders", deeper, 1}}},
		{"one level deeper, empty prefix", "", "", pvc("web", "app"), 0, []nearMiss{{"cluster-a/web/app", deeper, 1}}},
		{"empty prefix: another prefix's repositories are one level deeper", "", "", pvc("web", "cache"), 0,
			[]nearMiss{{"volsync/web/cache", deeper, 1}}},
		{"flat: two levels", "{prefix}/{namespace}-{pvc}", "flat", pvc("shop", "redis"), 0, []nearMiss{{"flat/shop/redis", split, 1}}},
		{"flat: no namespace", "{prefix}/{namespace}-{pvc}", "flat", pvc("shop", "queue"), 0, []nearMiss{{"flat/queue", noNamespaceLevel, 1}}},
		{"flat: another PVC's own repository is none", "{prefix}/{namespace}-{pvc}", "flat", pvc("x", "app-db"), 0, nil},
		{"flat: own backup", "{prefix}/{namespace}-{pvc}", "flat", pvc("app", "db"), 1, nil},
	}

	modes := []struct {
		name string
		set  func(*restic.Options)
	}{
		{"fleet listed at every load, without password", func(*restic.Options) {}},
		{"lookups confirm between fleet listings, with password", func(o *restic.Options) {
			o.Password, o.FleetRefreshInterval, o.LookupWait = password, 10*time.Minute, time.Minute
		}},
	}

	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			indexes := map[string]repo.Index{}

			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					idx, ok := indexes[tc.prefix]
					if !ok {
						opts := st.options()
						opts.Prefix, opts.RepositoryTemplate, opts.VerifyWait = tc.prefix, tc.template, time.Minute
						m.set(&opts)

						var err error
						idx, err = newRepo(t, opts).Load(context.Background())
						require.NoError(t, err)
						indexes[tc.prefix] = idx
					}

					f, err := idx.Find(context.Background(), tc.pvc)
					require.NoError(t, err)
					require.Len(t, f.Snapshots, tc.own)

					var got []nearMiss
					for _, n := range idx.NearMisses(tc.pvc) {
						got = append(got, nearMiss{rel: n.Source, rule: n.Rule, snapshots: n.Snapshots})
						assert.False(t, n.Latest.IsZero(), "a near miss says when its newest snapshot was stored")
					}

					var want []nearMiss
					for _, n := range tc.want {
						want = append(want, nearMiss{rel: st.source(n.rel), rule: n.rule, snapshots: n.snapshots})
					}

					assert.Equal(t, want, got)
				})
			}
		})
	}
}

// TestPerPVCNearMissCost: a fleet without stray repositories costs no request more than before;
// each stray repository costs one listing of its snapshots/.
func TestPerPVCNearMissCost(t *testing.T) {
	st, _ := s3Storage(t)
	cli := harness.NewResticCLI(t, st.s3)

	cli.Init(st.url("volsync/web/app"), password, "2")
	cli.Backup(st.url("volsync/web/app"), password)

	opts := st.options()
	opts.Prefix = prefix

	load := func() int64 {
		r := newRepo(t, opts)
		before := r.Requests()
		_, err := r.Load(context.Background())
		require.NoError(t, err)

		return diff(r.Requests(), before).Lists
	}

	assert.Equal(t, int64(3), load(), "volsync/, volsync/web/, volsync/web/app/snapshots/")

	cli.Init(st.url("volsync/app"), password, "2")
	cli.Backup(st.url("volsync/app"), password)

	// volsync/app/ is listed as a namespace (as before); its sub-directories data/, index/, keys/
	// and snapshots/ as repositories (as before); and its snapshots/ once more, as a stray.
	assert.Equal(t, int64(3+1+4+1), load())
}

// TestPerPVCNearMissPrecision: on a fleet of the benchmark's shape (4 namespaces × 50 PVCs at
// their default repositories, copied from one written by the real restic CLI), no PVC reports
// a near miss: neither those with their own backup nor 1,000 look-alikes without one (the same
// names in a namespace without backups, names like a namespace, the namespace-pvc join split
// the other way, suffixed names). The README quotes the figure.
func TestPerPVCNearMissPrecision(t *testing.T) {
	st, srv := s3Storage(t)
	cli := harness.NewResticCLI(t, srv)

	const template = "template/ns/pvc"

	cli.Init(st.url(template), password, "2")
	cli.Backup(st.url(template), password)

	const n = 200

	fleet := copyFleet(t, st, template, prefix, n)

	opts := st.options()
	opts.Prefix = prefix
	idx, err := newRepo(t, opts).Load(context.Background())
	require.NoError(t, err)

	lookups := make([]repo.PVC, 0, 6*n)
	for _, p := range fleet {
		lookups = append(lookups, p,
			pvc("ns-99", p.Name),                  // the same name where nothing is stored
			pvc(p.Namespace, p.Namespace),         // a PVC named like a namespace's directory
			pvc("ns", p.Namespace[3:]+"-"+p.Name), // joins to ns-0x-pvc-…, no such directory
			pvc(p.Namespace, p.Name+"-0"),
			pvc(p.Namespace, "data-"+p.Name),
		)
	}

	nearMisses := 0

	for _, p := range lookups {
		nearMisses += len(idx.NearMisses(p))
	}

	t.Logf("%d near misses in %d lookups (%d PVCs with a backup, %d look-alikes without)", nearMisses, len(lookups), n, len(lookups)-n)
	assert.Zero(t, nearMisses)
}
