package repo

import (
	"errors"
	"fmt"
	"time"
)

// ErrCutoverPending: a blue/green cutover is declared and the colour being left holds snapshots
// of the PVC, none taken at or after the cutover's instant: its final backup is not in the index
// yet. Restoring the older one would silently lose what the old colour wrote since.
var ErrCutoverPending = errors.New("waiting for the final backup of the cutover")

// Cutover is a blue/green cutover declared in Git (CUTOVER_AT, CUTOVER_FROM): at instant At the
// colour whose repository is backend From is left; its final backup of every PVC starts at or
// after At. The zero value declares none.
type Cutover struct {
	At   time.Time
	From string
}

// IsZero reports whether no cutover is declared.
func (c Cutover) IsZero() bool { return c.At.IsZero() && c.From == "" }

// Validate checks a declared cutover against the configured backend names; every problem wraps
// ErrInvalidConfig.
func (c Cutover) Validate(backends []string) error {
	if c.IsZero() {
		return nil
	}

	var errs []error

	if c.At.IsZero() {
		errs = append(errs, Problemf("CUTOVER_AT is required with CUTOVER_FROM: the RFC 3339 instant of the cutover, e.g. 2026-12-06T18:00:00Z"))
	}

	switch {
	case c.From == "":
		errs = append(errs, Problemf("CUTOVER_FROM is required with CUTOVER_AT: the name of the backend of the colour being left"))
	case len(backends) < 2:
		errs = append(errs, Problemf("CUTOVER_FROM %q: a cutover needs two backends (BACKENDS_FILE): the colour being left and this one", c.From))
	default:
		found := false
		for _, b := range backends {
			found = found || b == c.From
		}

		if !found {
			errs = append(errs, Problemf("CUTOVER_FROM %q is not a backend; the backends are %q", c.From, backends))
		}
	}

	return errors.Join(errs...)
}

// CutoverWait is one PVC waiting for its final backup.
type CutoverWait struct {
	PVC PVC
	// Newest is the newest snapshot of the colour being left: older than the cutover.
	Newest Snapshot
}

// Hold applies the cutover to the answers of every backend for pvc (before they are combined):
// when the colour being left (From) holds snapshots of the PVC and the newest started before At,
// the answer is Unknown wrapping ErrCutoverPending, naming the cutover, that snapshot and its
// age, and the wait is returned. Otherwise (no cutover, a point in time asked — the operator
// chose the snapshot —, From holding no snapshot of the PVC, or its final backup present) it
// returns false and the answers are combined as always: the newest snapshot of any backend wins,
// so a PVC the new colour has backed up since is restored from its own newer snapshot.
func (c Cutover) Hold(pvc PVC, answers []Answer, p PointInTime, now time.Time) (Answer, *CutoverWait, bool) {
	if c.IsZero() || !p.IsZero() {
		return Answer{}, nil, false
	}

	for _, a := range answers {
		if a.Backend != c.From || a.Latest == nil || !a.Latest.StartTime.Before(c.At) {
			continue
		}

		newest := *a.Latest
		w := &CutoverWait{PVC: pvc, Newest: newest}
		out := a
		out.Decision, out.Selected = Unknown, nil
		out.Reason = fmt.Errorf("%w at %s from backend %s: its newest snapshot of %s (%s) started %s, %s before the cutover and %s ago; "+
			"the answer becomes restore from that backend once a snapshot started at or after the cutover is in the index "+
			"(remove the cutover to restore the newest backup as usual, e.g. when the old colour is gone)",
			ErrCutoverPending, c.At.UTC().Format(time.RFC3339), c.From, pvc, newest.ID, newest.StartTime.UTC().Format(time.RFC3339),
			c.At.Sub(newest.StartTime).Round(time.Second), now.Sub(newest.StartTime).Round(time.Second))

		return out, w, true
	}

	return Answer{}, nil, false
}

// CutoverStatus is what an operator sees of a declared cutover: the PVCs asked about that wait
// for their final backup, the longest wait first.
type CutoverStatus struct {
	Cutover
	// Waiting are the waiting PVCs the oracle was asked about (at most a bounded number are
	// remembered), longest wait first.
	Waiting []CutoverWaiting
}

// CutoverWaiting is a waiting PVC and since when it was first answered so.
type CutoverWaiting struct {
	CutoverWait
	Since time.Time
}
