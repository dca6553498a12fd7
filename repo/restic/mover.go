package restic

import (
	"fmt"
	"slices"
	"strings"

	"github.com/backup-oracle/backup-oracle/repo"
)

// moverPathMark is the text VolSync's restic mover looks for in a snapshot's row.
const moverPathMark = "/data"

// moverRestores reports whether VolSync's restic mover would consider s when it restores
// (per-PVC layout, snapshot verified with the password).
//
// The rule, from backube/volsync v0.16.0, mover-restic/entry.sh, select_restic_snapshot_to_restore
// (the function do_restore calls), restated: the mover lists every snapshot of the repository
// with `restic snapshots` in restic's table format, whatever its host or path, and keeps only
// the rows in which the text "/data" occurs (`grep /data`); a kept row's first field is taken as
// the snapshot's id and its second and third as its time. restic prints one row per snapshot
// holding its id, time, hostname, its tags joined by commas and its first path; each further
// path goes on a continuation row that holds no id or time (restic v0.19.1's table, checked).
// So a snapshot is a candidate exactly when its hostname, one of its tags or its first path
// contains "/data". The mover's own backups (`restic backup` run in the volume mounted at /data)
// record the single path /data and qualify; a snapshot written by another tool for another path
// (the restic CLI in /srv/app, say) does not, and the mover, finding no candidate, logs "No
// eligible snapshots found", restores nothing and succeeds. The host is not checked: the mover
// passes `--host volsync` to `restic restore`, but restic applies that filter only when it looks
// for "latest", never to an explicit id (restic v0.19.1, internal/data/snapshot_find.go,
// SnapshotFilter.FindLatest). Without the password a snapshot's paths cannot be read, so every
// snapshot object counts (see the README).
func moverRestores(s repo.Snapshot) bool {
	first := ""
	if len(s.Paths) > 0 {
		first = s.Paths[0]
	}

	return strings.Contains(s.Host, moverPathMark) || strings.Contains(strings.Join(s.Tags, ","), moverPathMark) ||
		strings.Contains(first, moverPathMark)
}

// moverMisreads reports whether the mover would misread s: a path after the first contains
// "/data", so its continuation row is kept and that path taken for a snapshot id with a made-up
// time (`date --date=" "`, today at midnight). What the mover then selects depends on the order
// of the rows, and a restore of that "id" fails: no answer can promise what it restores.
func moverMisreads(s repo.Snapshot) bool {
	return len(s.Paths) > 1 && slices.ContainsFunc(s.Paths[1:], func(p string) bool { return strings.Contains(p, moverPathMark) })
}

// moverSnapshots splits verified snapshots (order kept) into those the mover would consider
// and how many it would skip; misread counts the snapshots it would misread (moverMisreads).
func moverSnapshots(snaps []repo.Snapshot) (restorable []repo.Snapshot, skipped, misread int) {
	for _, s := range snaps {
		if moverMisreads(s) {
			misread++
		}

		if moverRestores(s) {
			restorable = append(restorable, s)
		} else {
			skipped++
		}
	}

	return restorable, skipped, misread
}

// errMoverMisreads is the answer for a repository holding snapshots the mover would misread.
func errMoverMisreads(location string, n int) error {
	return fmt.Errorf("%w: repository %q holds %d snapshot(s) with several paths of which a later one contains %q: "+
		"VolSync's restic mover would read such a path as a snapshot id (restic prints further paths on rows of their own) "+
		"and its restore would fail or pick another snapshot. Remove them (restic forget) or restore by hand",
		repo.ErrNotSelected, location, n, moverPathMark)
}

// errNothingRestorable is the answer for a repository whose snapshots (n of them, all verified)
// the mover would all skip. It is neither "restore" (the mover would restore nothing and report
// success: the volume would start empty) nor "fresh" (data exists: the PVC's own repository
// holds it, and an empty volume backed up over it would bury it), so it wraps
// repo.ErrNotSelected: unknown, with the reason.
func errNothingRestorable(location string, n int) error {
	return fmt.Errorf("%w: repository %q holds %d snapshot(s), none of which VolSync's restic mover would restore "+
		"(its restore considers only snapshots whose hostname, tags or first path contain %q; VolSync's own backups record the path /data): "+
		"it would restore nothing and report success. Restore by hand, or remove (restic forget) what the mover cannot use",
		repo.ErrNotSelected, location, n, moverPathMark)
}
