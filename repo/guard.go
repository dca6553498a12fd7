package repo

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Guard errors: reasons an answer that would have been Fresh is Unknown.
var (
	// ErrNearMiss: the PVC's identity has no snapshot, but snapshots that probably hold its data
	// exist under a slightly different identity.
	ErrNearMiss = errors.New("near miss")
	// ErrExpectedBackup: the expected-backups ledger lists the PVC, yet no backup was found.
	ErrExpectedBackup = errors.New("expected a backup")
	// ErrRepositoryMismatch: the repository at the configured location is not the pinned one
	// (re-initialised, wiped or mis-pointed).
	ErrRepositoryMismatch = errors.New("repository mismatch")
)

// NearMiss is a source that probably holds a PVC's data under another identity.
type NearMiss struct {
	// Backend is filled by the cache.
	Backend string
	// Source is the identity as stored ("redis-backup@shop:/var/lib/redis").
	Source string
	// Rule says why it is a near miss ("same username and hostname, another path").
	Rule      string
	Snapshots int
	Latest    time.Time
}

func (n NearMiss) String() string {
	s := n.Source + " (" + n.Rule
	if n.Backend != "" {
		s += ", backend " + n.Backend
	}

	return s + ")"
}

// NearMissMode is what a near miss does to a would-be Fresh answer (NEAR_MISS).
type NearMissMode string

// Near-miss modes.
const (
	// NearMissDeny answers Unknown (the default).
	NearMissDeny NearMissMode = "deny"
	// NearMissWarn answers Fresh, reporting the near misses in the answer and the logs.
	NearMissWarn NearMissMode = "warn"
	// NearMissOff does not look for near misses.
	NearMissOff NearMissMode = "off"
)

// ParseNearMissMode parses NEAR_MISS.
func ParseNearMissMode(s string) (NearMissMode, error) {
	switch m := NearMissMode(s); m {
	case NearMissDeny, NearMissWarn, NearMissOff:
		return m, nil
	}

	return "", Problemf("NEAR_MISS %q: want deny, warn or off", s)
}

// AcceptNearMiss is the acknowledgement a Query can carry (the PVC's annotation
// backup-oracle.io/accept-near-miss, passed by the policies as ?accept=near-miss).
const AcceptNearMiss = "near-miss"

// Query is one question: a PVC, and what the asker acknowledges.
type Query struct {
	PVC PVC
	// PointInTime is what a restore asks for (VolSync's restoreAsOf / previous); zero: the
	// newest snapshot.
	PointInTime PointInTime
	// AcceptNearMiss: an operator checked that the PVC must start empty although near misses
	// exist; the answer is what it would be without the near-miss guard, and says so.
	AcceptNearMiss bool
	// Source is the Kopia source the PVC names (RestoreSourceAnnotation, ?source=) instead of
	// the one the identity settings give; zero: none named. See SettleRestoreSource.
	Source KopiaSource
}

// Ledger is the expected-backups ledger: the PVCs known to have had a backup.
type Ledger interface {
	// Expected reports whether pvc is listed. An error means the ledger cannot be read or
	// parsed: then no answer may be Fresh.
	Expected(pvc PVC) (bool, error)
}

// Guards turn a would-be Fresh answer into Unknown when the evidence says a backup probably
// exists elsewhere: a listed PVC of the expected-backups ledger with nothing found, or near
// misses. They never touch Restore or Unknown answers.
type Guards struct {
	NearMiss NearMissMode
	// Ledger is optional.
	Ledger Ledger
}

// Guard names, for metrics and logs.
const (
	GuardExpectedBackup = "expected-backup"
	GuardNearMiss       = "near-miss"
)

// GuardEvent says what a guard did to one answer.
type GuardEvent struct {
	Guard string // GuardExpectedBackup or GuardNearMiss
	// Outcome is "denied", "warned" or "accepted".
	Outcome string
}

// Apply applies the guards to a, the combined answer for q. The ledger comes first: an
// acknowledged near miss does not override it (take the PVC out of the ledger to start it
// empty).
func (g Guards) Apply(a Answer, q Query) (Answer, []GuardEvent) {
	if a.Decision != Fresh {
		return a, nil
	}

	if g.Ledger != nil {
		expected, err := g.Ledger.Expected(q.PVC)
		switch {
		case err != nil:
			a.Decision = Unknown
			a.Reason = fmt.Errorf("%w: the expected-backups ledger cannot be read, so no PVC may start empty: %w", ErrExpectedBackup, err)

			return a, []GuardEvent{{GuardExpectedBackup, "denied"}}
		case expected:
			a.Decision = Unknown
			a.Reason = fmt.Errorf("%w: %s is listed in the expected-backups ledger, but no snapshot was found under %s: "+
				"wrong repository, prefix or identity? (remove it from the ledger only if it must start empty)", ErrExpectedBackup, q.PVC, a.Source)

			return a, []GuardEvent{{GuardExpectedBackup, "denied"}}
		}
	}

	if len(a.NearMisses) == 0 || g.NearMiss == NearMissOff {
		return a, nil
	}

	list := nearMissList(a.NearMisses)

	switch {
	case q.AcceptNearMiss:
		a.Accepted = AcceptNearMiss

		return a, []GuardEvent{{GuardNearMiss, "accepted"}}
	case g.NearMiss == NearMissWarn:
		a.Warnings = append(a.Warnings, "near miss (NEAR_MISS=warn, answered fresh): "+list)

		return a, []GuardEvent{{GuardNearMiss, "warned"}}
	default:
		a.Decision = Unknown
		a.Reason = fmt.Errorf("%w: no snapshot under %s, but snapshots that probably hold this PVC's data exist under %s. "+
			"Fix the identity settings (or the ReplicationSource/Destination) to restore from them, or name the one to restore from on the PVC "+
			"(annotation "+RestoreSourceAnnotation+": \"<username>@<hostname>:<path>\"); if the PVC must start empty, "+
			"annotate it backup-oracle.io/accept-near-miss: \"<reason>\"", ErrNearMiss, a.Source, list)

		return a, []GuardEvent{{GuardNearMiss, "denied"}}
	}
}

func nearMissList(ns []NearMiss) string {
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = n.String()
	}

	return strings.Join(parts, "; ")
}
