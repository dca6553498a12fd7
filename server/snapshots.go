package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/backup-oracle/backup-oracle/repo"
)

// snapshotsResponse is GET /snapshots/{namespace}/{pvc}: every snapshot of the PVC on every
// backend, newest first.
type snapshotsResponse struct {
	Namespace   string          `json:"namespace"`
	PVC         string          `json:"pvc"`
	PointInTime *pointJSON      `json:"pointInTime,omitempty"`
	Snapshots   []snapshotEntry `json:"snapshots"`
	Error       string          `json:"error,omitempty"`
}

// snapshotEntry is one snapshot with the identity it is stored under. Selected marks, per
// backend, the snapshot a restore would get (the newest, or the one ?asOf/?previous selects).
type snapshotEntry struct {
	Backend string `json:"backend"`
	// Source is the identity: Kopia's user@host:path, a restic repository, or repository#tag=.
	Source string `json:"source"`
	snapshotDetail
	Selected bool `json:"selected,omitempty"`
}

// snapshots answers 200 with the list, 404 when the PVC has none (or none at the point in
// time), 503 when a backend cannot answer authoritatively (the list then holds what the others
// know), 400 for invalid names or parameters.
func (h *handler) snapshots(c *gin.Context) {
	pvc := repo.PVC{Namespace: c.Param("namespace"), Name: c.Param("pvc")}
	out := snapshotsResponse{Namespace: pvc.Namespace, PVC: pvc.Name, Snapshots: []snapshotEntry{}}

	p, err := pointInTime(c)
	if err = errors.Join(pvc.Validate(), err); err != nil {
		out.Error = err.Error()
		c.JSON(http.StatusBadRequest, out)

		return
	}

	out.PointInTime = renderPoint(p)

	ctx, cancel := context.WithTimeout(c.Request.Context(), h.timeout)
	defer cancel()

	code, entries, err := listSnapshots(pvc, p, h.oracle.Explain(ctx, pvc))
	out.Snapshots = entries

	if err != nil {
		out.Error = err.Error()
	}

	c.JSON(code, out)
}

// listSnapshots merges the backends' snapshots newest first and says what status they make.
func listSnapshots(pvc repo.PVC, p repo.PointInTime, es []repo.Explanation) (int, []snapshotEntry, error) {
	entries := []snapshotEntry{}

	var (
		unknown    []error
		total      int
		nearMisses []string
	)

	for _, e := range es {
		for _, n := range e.Finding.NearMisses {
			nearMisses = append(nearMisses, fmt.Sprintf("%s (%s, %s)", n.Source, e.Backend, n.Rule))
		}

		a := repo.DecideAt(pvc, e.Backend, e.Finding, p, e.IndexTime, e.Err)
		if a.Decision == repo.Unknown && !errors.Is(a.Reason, repo.ErrNotSelected) {
			unknown = append(unknown, fmt.Errorf("%s: %w", e.Backend, a.Reason))
			continue
		}

		total += len(e.Finding.Snapshots)

		for _, s := range p.Eligible(e.Finding.Snapshots) {
			entries = append(entries, snapshotEntry{Backend: e.Backend, Source: e.Finding.Source, snapshotDetail: detail(s),
				Selected: a.Selected != nil && a.Selected.ID == s.ID})
		}
	}

	slices.SortStableFunc(entries, func(a, b snapshotEntry) int {
		if c := b.StartTime.Compare(a.StartTime); c != 0 {
			return c
		}

		return strings.Compare(a.ID, b.ID)
	})

	switch {
	case len(unknown) > 0:
		return http.StatusServiceUnavailable, entries, errors.Join(unknown...)
	case len(entries) == 0 && total > 0:
		return http.StatusNotFound, entries, fmt.Errorf("%w: %d snapshot(s) of %s exist, none at or before %s",
			repo.ErrNotSelected, total, pvc, p)
	case len(entries) == 0 && len(nearMisses) > 0:
		// Not its snapshots, but an operator looking for them must not conclude there is nothing:
		// /exists refuses to answer fresh for them.
		return http.StatusNotFound, entries, fmt.Errorf("no snapshot of %s on any backend; near misses (probably its data under another identity, see /explain): %s",
			pvc, strings.Join(nearMisses, "; "))
	case len(entries) == 0:
		return http.StatusNotFound, entries, fmt.Errorf("no snapshot of %s on any backend", pvc)
	}

	return http.StatusOK, entries, nil
}

func detail(s repo.Snapshot) snapshotDetail {
	d := snapshotDetail{ID: s.ID, StartTime: s.StartTime.UTC(), Size: s.TotalSize, Files: s.FileCount, Host: s.Host, Paths: s.Paths, Tags: s.Tags,
		ApproxTime: s.ApproxTime}
	if !s.EndTime.IsZero() {
		t := s.EndTime.UTC()
		d.EndTime = &t
	}

	return d
}
