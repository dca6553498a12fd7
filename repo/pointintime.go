package repo

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// ErrNotSelected: snapshots exist, but none is the one the requested point in time selects.
// VolSync's movers then restore nothing and report success (DOMAIN.md 1), so the answer is
// Unknown: neither "fresh" (data exists) nor "restore" (nothing would be restored).
var ErrNotSelected = errors.New("no snapshot at the requested point in time")

// PointInTime is what a ReplicationDestination asks to restore: VolSync's spec.<mover>.restoreAsOf
// and spec.<mover>.previous. The zero value is "the newest snapshot" (a plain restore).
//
// The rule (Select) is VolSync's: backube/volsync mover-restic/entry.sh,
// select_restic_snapshot_to_restore: snapshots newest first; with restoreAsOf, skip those whose
// time, cut to the second, is after restoreAsOf (cut to the second too: `date +%s`); then skip
// `previous` more; what is left first is restored, and nothing when the list runs out (the mover
// then logs "No eligible snapshots found" and restores nothing). The Kopia fork (perfectra1n,
// mover-kopia/entry.sh, select_snapshot_to_restore) applies the same filter (startTime <=
// restoreAsOf) and offset (KOPIA_PREVIOUS). The time compared is the snapshot's start time.
type PointInTime struct {
	// AsOf is restoreAsOf; zero means no upper bound.
	AsOf time.Time
	// Previous is how many of the eligible snapshots to skip, newest first; 0 is the newest.
	Previous int
}

// IsZero reports whether p selects the newest snapshot, as a plain restore does.
func (p PointInTime) IsZero() bool { return p.AsOf.IsZero() && p.Previous == 0 }

// String describes p for messages, e.g. "restoreAsOf 2026-11-20T02:00:00Z, previous 1".
func (p PointInTime) String() string {
	switch {
	case p.IsZero():
		return "latest"
	case p.AsOf.IsZero():
		return "previous " + strconv.Itoa(p.Previous)
	case p.Previous == 0:
		return "restoreAsOf " + p.AsOf.UTC().Format(time.RFC3339)
	}

	return fmt.Sprintf("restoreAsOf %s, previous %d", p.AsOf.UTC().Format(time.RFC3339), p.Previous)
}

// ParseAsOf parses a restoreAsOf value as VolSync's CRD does: RFC 3339 with the 'T' and a zone
// ("2026-11-20T02:00:00Z", "2026-11-20T03:00:00+01:00"). An error wraps ErrInvalidParameter and
// names the parameter and its value.
func ParseAsOf(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: asOf %q is not an RFC 3339 time such as 2026-11-20T02:00:00Z", ErrInvalidParameter, s)
	}

	return t, nil
}

// ParsePrevious parses a previous value: a non-negative integer, at most 10000.
func ParsePrevious(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > maxPrevious {
		return 0, fmt.Errorf("%w: previous %q must be an integer from 0 to %d", ErrInvalidParameter, s, maxPrevious)
	}

	return n, nil
}

// maxPrevious bounds previous: retention keeps far fewer snapshots.
const maxPrevious = 10_000

// Eligible returns the snapshots restoreAsOf lets through, newest first (snapshots are given
// oldest first, as in a Finding). Without AsOf it is every snapshot, newest first.
func (p PointInTime) Eligible(snapshots []Snapshot) []Snapshot {
	out := make([]Snapshot, 0, len(snapshots))
	limit := p.AsOf.Truncate(time.Second)

	for i := len(snapshots) - 1; i >= 0; i-- {
		s := snapshots[i]
		if !p.AsOf.IsZero() && s.StartTime.Truncate(time.Second).After(limit) {
			continue
		}

		out = append(out, s)
	}

	return out
}

// Select returns the snapshot VolSync would restore from snapshots (oldest first), or false when
// the mover would restore nothing.
func (p PointInTime) Select(snapshots []Snapshot) (Snapshot, bool) {
	e := p.Eligible(snapshots)
	if p.Previous >= len(e) {
		return Snapshot{}, false
	}

	return e[p.Previous], true
}

// DecideAt is Decide for a ReplicationDestination restoring at p:
//   - err: Unknown, as always;
//   - no snapshot at all: Fresh (the point in time changes nothing: nothing exists);
//   - p selects a snapshot: Restore, with Answer.Selected set to it;
//   - snapshots exist but p selects none: Unknown wrapping ErrNotSelected. VolSync would restore
//     nothing and the PVC would start empty although backups exist: answering "fresh" would let
//     that empty volume be backed up over good data, "restore" would promise data that does not
//     come. A snapshot whose time is only approximate (Snapshot.ApproxTime) cannot be placed in
//     time: a non-zero p over such snapshots is Unknown wrapping ErrUnverifiable.
func DecideAt(pvc PVC, backend string, f Finding, p PointInTime, indexTime time.Time, err error) Answer {
	a := Decide(pvc, backend, f, indexTime, err)
	a.PointInTime = p

	if a.Decision != Restore {
		return a
	}

	a.Selected = nil

	if !p.IsZero() && approximate(f.Snapshots) {
		a.Decision, a.Reason = Unknown, fmt.Errorf("%w: %s: the snapshots' times are storage modification times, not the times restic recorded; "+
			"a point in time needs the password (RESTIC_PASSWORD) to read them", ErrUnverifiable, p)

		return a
	}

	s, ok := p.Select(f.Snapshots)
	if !ok {
		a.Decision, a.Reason = Unknown, notSelected(f.Snapshots, p)
		return a
	}

	a.Selected = &s

	return a
}

func approximate(snapshots []Snapshot) bool {
	for _, s := range snapshots {
		if s.ApproxTime {
			return true
		}
	}

	return false
}

func notSelected(snapshots []Snapshot, p PointInTime) error {
	e := p.Eligible(snapshots)
	oldest := snapshots[0].StartTime.UTC().Format(time.RFC3339)

	if len(e) == 0 {
		return fmt.Errorf("%w: %d snapshot(s) exist, none at or before %s (the oldest is from %s); VolSync would restore nothing",
			ErrNotSelected, len(snapshots), p.AsOf.UTC().Format(time.RFC3339), oldest)
	}

	return fmt.Errorf("%w: %s: only %d snapshot(s) are eligible, previous %d skips them all; VolSync would restore nothing",
		ErrNotSelected, p, len(e), p.Previous)
}
