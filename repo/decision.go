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
	Source        string
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
}

// Authoritative reports whether the answer may be acted upon (restore or fresh).
func (a Answer) Authoritative() bool { return a.Decision != Unknown }

// Decide turns a backend's finding into an answer. err is whatever kept the backend from
// answering authoritatively (not loaded, stale, unreadable); any non-nil err yields Unknown,
// whatever the finding says, because "fresh" must never be guessed.
func Decide(pvc PVC, backend string, f Finding, indexTime time.Time, err error) Answer {
	a := Answer{PVC: pvc, Backend: backend, Source: f.Source, IndexTime: indexTime,
		SnapshotCount: len(f.Snapshots), Latest: f.Latest()}

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

// Combine merges the answers of several backends, given in order of preference:
// Restore from the first backend that has a snapshot; otherwise Unknown if any backend is
// unknown (with every reason joined); Fresh only when every backend authoritatively found nothing.
// An empty list is Unknown: no backend is no evidence.
func Combine(pvc PVC, answers []Answer) Answer {
	if len(answers) == 0 {
		return Answer{PVC: pvc, Decision: Unknown, Reason: fmt.Errorf("%w: no backend configured", ErrInvalidConfig)}
	}

	if len(answers) == 1 {
		return answers[0]
	}

	var (
		reasons  []error
		backends []string
	)

	for _, a := range answers {
		if a.Decision == Restore {
			return a
		}

		if a.Decision == Unknown {
			reasons = append(reasons, fmt.Errorf("%s: %w", a.Backend, a.Reason))
		}

		backends = append(backends, a.Backend)
	}

	out := answers[0]
	out.Backend = strings.Join(backends, ",")

	if len(reasons) > 0 {
		out.Decision, out.Reason = Unknown, errors.Join(reasons...)
	}

	return out
}
