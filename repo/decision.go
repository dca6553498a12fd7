package repo

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Decision is the oracle's answer for one PVC.
type Decision string

// The three decisions. Fresh is only ever produced from a complete, fresh, error-free index.
const (
	Restore Decision = "restore"
	Fresh   Decision = "fresh"
	Unknown Decision = "unknown"
)

// Answer is the decision for one PVC together with the evidence behind it.
type Answer struct {
	PVC      PVC
	Decision Decision
	// Backend names the backend that decided ("kopia-fs", "restic-s3", ...).
	Backend string
	// Source is the identity looked up in that backend.
	Source string
	// RestoreSource echoes the source the PVC named (Query.Source), empty when it named none.
	RestoreSource string
	SnapshotCount int
	Latest        *Snapshot
	// Selected is the snapshot a restore would get: the newest, or the one PointInTime selects.
	// Nil unless the decision is Restore.
	Selected *Snapshot
	// PointInTime is what was asked (zero: the newest snapshot); see DecideAt.
	PointInTime PointInTime
	// IndexTime is when the index that answered was built; zero when there was none.
	IndexTime time.Time
	// Reason explains an Unknown decision and is nil otherwise.
	Reason error
	// NearMisses are snapshots that probably hold this PVC's data under another identity, found
	// when the identity itself has none (see NearMiss and Guards).
	NearMisses []NearMiss
	// Accepted echoes the acknowledgement the decision was taken under ("near-miss"), with the
	// near misses it overrode; empty otherwise.
	Accepted string
	// Warnings are guard findings that did not change the decision (NEAR_MISS=warn).
	Warnings []string
	// Elsewhere lists, for a Restore of several backends, the other backends holding snapshots
	// of this PVC: all older than (or as new as) the one restored from.
	Elsewhere []Elsewhere
}

// Authoritative reports whether the answer may be acted upon (restore or fresh).
func (a Answer) Authoritative() bool { return a.Decision != Unknown }

// Decide turns a backend's finding into an answer. err is whatever kept the backend from
// answering authoritatively (not loaded, stale, unreadable); any non-nil err yields Unknown,
// whatever the finding says, because "fresh" must never be guessed.
func Decide(pvc PVC, backend string, f Finding, indexTime time.Time, err error) Answer {
	a := Answer{PVC: pvc, Backend: backend, Source: f.Source, IndexTime: indexTime,
		SnapshotCount: len(f.Snapshots), Latest: f.Latest(), NearMisses: f.NearMisses}

	switch {
	case err != nil:
		a.Decision, a.Reason = Unknown, err
	case len(f.Snapshots) > 0:
		a.Decision, a.Selected = Restore, a.Latest
	default:
		a.Decision = Fresh
	}

	return a
}

// Combine merges the answers of several backends, given in order of preference. The data
// decides, not the order:
//   - Unknown when any backend is unknown: it could hold a snapshot newer than every other
//     backend's (it always could), and restoring an older one would silently lose what was
//     written since; the reason says so;
//   - otherwise Restore from the backend whose newest complete snapshot is the newest (equal
//     times: the earlier backend in the list); Elsewhere names the other backends holding
//     snapshots, all older or equal;
//   - otherwise Fresh: every backend authoritatively found nothing.
//
// An empty list is Unknown: no backend is no evidence.
func Combine(pvc PVC, answers []Answer) Answer {
	if len(answers) == 0 {
		return Answer{PVC: pvc, Decision: Unknown, Reason: fmt.Errorf("%w: no backend configured", ErrInvalidConfig)}
	}

	if len(answers) == 1 {
		return answers[0]
	}

	var (
		reasons      []error
		backends     []string
		best         = -1
		withSnapshot []string
	)

	for i, a := range answers {
		backends = append(backends, a.Backend)

		switch a.Decision {
		case Unknown:
			reasons = append(reasons, fmt.Errorf("%s: %w", a.Backend, a.Reason))
		case Restore:
			withSnapshot = append(withSnapshot, a.Backend)
			if best < 0 || restored(answers[best]) == nil || (restored(a) != nil && restored(a).StartTime.After(restored(answers[best]).StartTime)) {
				best = i
			}
		case Fresh:
		}
	}

	if len(reasons) > 0 {
		out := answers[0]
		out.Backend, out.Decision = strings.Join(backends, ","), Unknown
		out.Reason = errors.Join(reasons...)

		if len(withSnapshot) > 0 {
			out.Reason = fmt.Errorf("%w\n(%s hold(s) snapshots, but an unknown backend could hold a newer one: restoring an older one would lose what was written since)",
				out.Reason, strings.Join(withSnapshot, ", "))
		}

		return out
	}

	if best >= 0 {
		out := answers[best]
		out.Elsewhere = nil

		for i, a := range answers {
			if i != best && a.Decision == Restore {
				out.Elsewhere = append(out.Elsewhere, Elsewhere{Backend: a.Backend, Source: a.Source, SnapshotCount: a.SnapshotCount, Latest: a.Latest})
			}
		}

		return out
	}

	out := answers[0]
	out.Backend = strings.Join(backends, ",")
	out.NearMisses = nil

	for _, a := range answers {
		out.NearMisses = append(out.NearMisses, a.NearMisses...)
	}

	return out
}

// restored is the snapshot a restore from a would get: the one a point in time selects, else the
// newest.
func restored(a Answer) *Snapshot {
	if a.Selected != nil {
		return a.Selected
	}

	return a.Latest
}

// Elsewhere is another backend's snapshots of a PVC, older than (or as new as) the ones an
// answer restores from.
type Elsewhere struct {
	Backend       string
	Source        string
	SnapshotCount int
	Latest        *Snapshot
}
