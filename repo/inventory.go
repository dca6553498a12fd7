package repo

import (
	"slices"
	"strings"
	"time"
)

// Stored is one backup source an index holds: a Kopia source, a restic repository, or a tag of a
// shared restic repository. It is what an inventory lists.
type Stored struct {
	// Source is the identity as the backend stores it ("app-backup@web:/data", "s3:…/web/app").
	Source string
	// PVC is a PVC whose backups are stored under Source: the one Index.Find would look up
	// there, found by inverting the backend's naming (see KopiaIdentity.PVCOf). The zero PVC when
	// Source maps back to no PVC (another path, a username cut at 50 characters, a name the
	// templates cannot produce). Namespace alone may be set when only it maps back.
	PVC PVC
	// Snapshots counts complete snapshots; Newest is the newest of them (nil when none).
	Snapshots int
	Newest    *Snapshot
	// Err is why the index cannot vouch for this source (wraps ErrUnverifiable), nil otherwise.
	Err error
}

// SortStored orders an inventory by namespace, PVC, then source.
func SortStored(s []Stored) {
	slices.SortFunc(s, func(a, b Stored) int {
		if c := strings.Compare(a.PVC.Namespace, b.PVC.Namespace); c != 0 {
			return c
		}

		if c := strings.Compare(a.PVC.Name, b.PVC.Name); c != 0 {
			return c
		}

		return strings.Compare(a.Source, b.Source)
	})
}

// Age is how old the newest snapshot is at now; ok is false when there is none.
func (s Stored) Age(now time.Time) (time.Duration, bool) {
	if s.Newest == nil {
		return 0, false
	}

	return now.Sub(s.Newest.StartTime), true
}

// Inventory is what one backend's index holds, for operators (GET /backups, the console).
type Inventory struct {
	Backend string
	Stored  []Stored
	// IndexTime is when the index listed was built; zero when there is none.
	IndexTime time.Time
	// Err is why the backend is not authoritative now (Stored is then empty), nil when it is.
	Err error
}
