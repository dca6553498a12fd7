package restic

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/backup-oracle/backup-oracle/repo"
)

// TestMoverRule: which verified snapshots VolSync's restic mover would consider, and which it
// would misread, per field of the row `restic snapshots` prints (the rule: mover.go, cited
// there). Expectations written by hand from the mover's `grep /data` on the table: the row holds
// the hostname, the tags joined by commas and the first path; each further path is a row of
// its own.
func TestMoverRule(t *testing.T) {
	cases := []struct {
		name               string
		snap               repo.Snapshot
		restores, misreads bool
	}{
		{"no paths at all", repo.Snapshot{Host: "volsync"}, false, false},
		{"the mover's own backup", repo.Snapshot{Host: "volsync", Paths: []string{"/data"}}, true, false},
		{"another host, a path under /data", repo.Snapshot{Host: "laptop", Paths: []string{"/srv/data/app"}}, true, false},
		{"another path, the mover's host", repo.Snapshot{Host: "volsync", Paths: []string{"/srv/app"}}, false, false},
		{"a host name holding /data", repo.Snapshot{Host: "x/data", Paths: []string{"/srv/app"}}, true, false},
		{"the only tag holds /data", repo.Snapshot{Host: "laptop", Tags: []string{"ns/database"}, Paths: []string{"/srv/app"}}, true, false},
		{"a later tag holds /data", repo.Snapshot{Host: "laptop", Tags: []string{"first", "ns/database"}, Paths: []string{"/srv/app"}}, true, false},
		{"/data split across two tags", repo.Snapshot{Host: "laptop", Tags: []string{"x/", "data"}, Paths: []string{"/srv/app"}}, false, false},
		{"one path, no /data", repo.Snapshot{Host: "laptop", Paths: []string{"/srv/app"}}, false, false},
		{"a second path with /data", repo.Snapshot{Host: "laptop", Paths: []string{"/srv/app", "/data"}}, false, true},
		{"both paths with /data", repo.Snapshot{Host: "volsync", Paths: []string{"/data", "/mnt/data"}}, true, true},
		{"a third path with /data", repo.Snapshot{Host: "laptop", Paths: []string{"/a", "/b", "/data"}}, false, true},
		{"two paths, none with /data", repo.Snapshot{Host: "volsync", Paths: []string{"/a", "/b"}}, false, false},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.restores, moverRestores(tc.snap), "restores")
			assert.Equal(t, tc.misreads, moverMisreads(tc.snap), "misreads")
		})
	}
}

// TestMoverSnapshots: the split keeps the order of the snapshots the mover would consider and
// counts the others, and counts misread snapshots whether or not they are considered.
func TestMoverSnapshots(t *testing.T) {
	own := func(id string) repo.Snapshot { return repo.Snapshot{ID: id, Host: "volsync", Paths: []string{"/data"}} }
	foreign := func(id string) repo.Snapshot {
		return repo.Snapshot{ID: id, Host: "laptop", Paths: []string{"/srv/app"}}
	}
	misread := func(id string) repo.Snapshot {
		return repo.Snapshot{ID: id, Host: "laptop", Paths: []string{"/srv/app", "/data"}}
	}
	both := func(id string) repo.Snapshot {
		return repo.Snapshot{ID: id, Host: "volsync", Paths: []string{"/data", "/x/data"}}
	}

	cases := []struct {
		name             string
		in               []repo.Snapshot
		kept             []string
		skipped, misread int
	}{
		{"none", nil, nil, 0, 0},
		{"only the mover's", []repo.Snapshot{own("a"), own("b")}, []string{"a", "b"}, 0, 0},
		{"only foreign", []repo.Snapshot{foreign("a"), foreign("b"), foreign("c")}, nil, 3, 0},
		{"mixed, order kept", []repo.Snapshot{foreign("a"), own("b"), foreign("c"), own("d")}, []string{"b", "d"}, 2, 0},
		{"misread and skipped", []repo.Snapshot{misread("a"), own("b")}, []string{"b"}, 1, 1},
		{"misread and kept", []repo.Snapshot{both("a"), both("b"), foreign("c")}, []string{"a", "b"}, 1, 2},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kept, skipped, misread := moverSnapshots(tc.in)

			var ids []string
			for _, s := range kept {
				ids = append(ids, s.ID)
			}

			assert.Equal(t, tc.kept, ids, "kept")
			assert.Equal(t, tc.skipped, skipped, "skipped")
			assert.Equal(t, tc.misread, misread, "misread")
		})
	}
}

// TestMoverErrors: both answers are unknown (repo.ErrNotSelected) and name the repository, the
// count and the text the mover looks for.
func TestMoverErrors(t *testing.T) {
	for _, err := range []error{errMoverMisreads("s3:host/b/ns/pvc", 3), errNothingRestorable("s3:host/b/ns/pvc", 3)} {
		assert.True(t, errors.Is(err, repo.ErrNotSelected), err.Error())
		assert.Contains(t, err.Error(), `"s3:host/b/ns/pvc" holds 3 snapshot(s)`)
		assert.Contains(t, err.Error(), `"/data"`)
	}
}
