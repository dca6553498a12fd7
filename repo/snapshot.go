package repo

import (
	"context"
	"slices"
	"strings"
	"time"
)

// Snapshot summarises one backup of one source. Backends fill what their format records:
// Kopia sets sizes and file counts, restic sets Host, Paths and Tags.
type Snapshot struct {
	ID        string
	StartTime time.Time
	EndTime   time.Time
	TotalSize int64
	FileCount int64
	Host      string
	Paths     []string
	Tags      []string
	// ApproxTime is set when StartTime is not the time the backup tool recorded but an
	// approximation (restic without the password: the storage object's modification time, which
	// is later than the snapshot's time and changes when a repository is copied). Such a time
	// orders snapshots but cannot place them in time (see DecideAt).
	ApproxTime bool
}

// Finding is what one backend's index knows of the source a PVC maps to.
// Snapshots are ordered oldest first; an empty slice from a complete index means "no backup".
// Snapshots may be shared with the immutable index: callers must not modify them.
type Finding struct {
	// Source is the identity looked up, as the backend stores it (e.g. "app-backup@web:/data").
	Source    string
	Snapshots []Snapshot
	// NearMisses, when Snapshots is empty, are what the index holds of this PVC under another
	// identity (Index.NearMisses, filled by the cache).
	NearMisses []NearMiss
}

// Latest returns the newest snapshot, or nil when there is none.
func (f Finding) Latest() *Snapshot {
	if len(f.Snapshots) == 0 {
		return nil
	}

	return &f.Snapshots[len(f.Snapshots)-1]
}

// Index is a complete, point-in-time view of one backend's snapshots.
// Implementations are immutable once built and safe for concurrent use.
type Index interface {
	// Find returns the snapshots stored under the identity pvc maps to. An error means the
	// index cannot answer authoritatively for this PVC (wrap ErrUnverifiable, ErrInvalidConfig, ...).
	Find(ctx context.Context, pvc PVC) (Finding, error)
	// FindSource returns the snapshots of src, the Kopia source pvc names (Query.Source), as Find
	// does for the source pvc maps to. It first checks that src belongs to pvc's namespace
	// (ErrForeignSource) and that the movers can restore it (ErrNotRestorable); a backend without
	// named sources returns an error wrapping ErrNamedSourceUnsupported.
	FindSource(ctx context.Context, pvc PVC, src KopiaSource) (Finding, error)
	// Stats counts what the index holds, for metrics and logs.
	Stats() IndexStats
	// Nearby lists, sorted, what is stored next to the identity pvc maps to (for Kopia: the
	// other sources of the same hostname; for restic: the other repositories or tags of the
	// namespace), for operators: a surprising "fresh" is most often an identity mismatch, which
	// this makes visible. It never decides an answer.
	Nearby(pvc PVC) []string
	// NearMisses lists the sources that probably hold pvc's data under an identity slightly
	// different from the one pvc maps to (another path, another naming scheme, a cut username,
	// another level of the bucket), each with the rule that matched it. The same PVC name in
	// another namespace is never a near miss. Cheap and without I/O: the cache calls it for
	// lookups that find no snapshot.
	NearMisses(pvc PVC) []NearMiss
	// Stored lists every source holding at least one complete snapshot, or that the index
	// cannot vouch for (Stored.Err set), sorted by Source, each mapped back to its PVC where
	// the backend's naming allows (the inventory of GET /backups). No I/O.
	Stored() []Stored
}

// IndexStats counts the sources and snapshots an index holds, and names the repository.
type IndexStats struct {
	Sources   int
	Snapshots int
	// Fitting counts the sources the identity settings could have produced (a PVC maps to
	// them). A repository holding sources but none fitting is what identity settings that
	// differ from the movers' look like.
	Fitting int
	// Unrestorable counts the snapshots read that the movers would not restore (restic: outside
	// the mover's "/data" rule, see repo/restic mover.go), counted in neither Snapshots nor
	// Sources: a backend holding only those holds no backup.
	Unrestorable int
	// Layout is how well the settings fit the sources, and the schemes the others follow
	// (Kopia; the zero value elsewhere).
	Layout LayoutFit
	// RepositoryID is the unique id of the repository the index was read from (Kopia's
	// uniqueID, hex), empty when the backend has none (a fleet of restic repositories).
	RepositoryID string
	// Bytes estimates the memory the index holds (bytes), so an alert can fire before the
	// process reaches its memory limit; 0 when the backend does not estimate it.
	Bytes int64
}

// IndexStatus describes one backend's index for operators. It carries no secrets.
type IndexStatus struct {
	Backend     string
	LoadedAt    time.Time // start of the last successful load; zero before the first
	LastAttempt time.Time
	Generation  uint64 // number of successful loads
	Stats       IndexStats
	// LastError is the error of the most recent load, nil when it succeeded.
	LastError error
	// NotReady is why lookups are not authoritative now, nil when they are.
	NotReady error
	// Refused holds the counts of the last index a guard refused (no source, or none fitting
	// the identity settings), so the operator the refusal sends to /status finds the sources it
	// talks about; nil when the last load was not refused.
	Refused *IndexStats
}

// Explanation is everything one backend knows of one PVC, for operators.
type Explanation struct {
	Backend   string
	Finding   Finding
	Nearby    []string
	IndexTime time.Time
	// Err is why the backend cannot answer authoritatively, nil when it can.
	Err error
}

// SortSnapshots orders snapshots oldest first: by start time, then by id so equal times order
// the same way on every load. Every backend orders its findings with it.
func SortSnapshots(s []Snapshot) {
	slices.SortFunc(s, func(a, b Snapshot) int {
		if c := a.StartTime.Compare(b.StartTime); c != 0 {
			return c
		}

		return strings.Compare(a.ID, b.ID)
	})
}
