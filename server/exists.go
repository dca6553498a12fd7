package server

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/backup-oracle/backup-oracle/repo"
)

// existsResponse keeps the predecessor's fields (exists, decision, authoritative, namespace, pvc,
// backend, source, error) so existing policies work unchanged, and adds the evidence.
type existsResponse struct {
	Exists          bool          `json:"exists"`
	Decision        repo.Decision `json:"decision"`
	Authoritative   bool          `json:"authoritative"`
	Namespace       string        `json:"namespace,omitempty"`
	PVC             string        `json:"pvc,omitempty"`
	Backend         string        `json:"backend,omitempty"`
	Source          string        `json:"source,omitempty"`
	SnapshotCount   int           `json:"snapshotCount"`
	LatestSnapshot  *snapshotJSON `json:"latestSnapshot,omitempty"`
	IndexAgeSeconds *float64      `json:"indexAgeSeconds,omitempty"`
	// PointInTime and SelectedSnapshot are set when ?asOf or ?previous was given: what was asked
	// and the snapshot VolSync would restore for it.
	PointInTime      *pointJSON    `json:"pointInTime,omitempty"`
	SelectedSnapshot *snapshotJSON `json:"selectedSnapshot,omitempty"`
	Error            string        `json:"error,omitempty"`
}

type snapshotJSON struct {
	ID   string    `json:"id"`
	Time time.Time `json:"time"`
	Size int64     `json:"size"`
}

// statusOf is the one table mapping outcomes to HTTP status codes.
func statusOf(a repo.Answer) int {
	switch {
	case errors.Is(a.Reason, repo.ErrInvalidName), errors.Is(a.Reason, repo.ErrInvalidParameter):
		return http.StatusBadRequest
	case a.Decision == repo.Restore, a.Decision == repo.Fresh:
		return http.StatusOK
	default: // Unknown, whatever the cause: Kyverno's apiCall.default takes over.
		return http.StatusServiceUnavailable
	}
}

func (h *handler) exists(c *gin.Context) {
	pvc := repo.PVC{Namespace: c.Param("namespace"), Name: c.Param("pvc")}

	var a repo.Answer

	p, perr := pointInTime(c)

	switch err := errors.Join(pvc.Validate(), perr); {
	case err != nil:
		a = repo.Answer{PVC: pvc, Decision: repo.Unknown, Reason: err}
	default:
		ctx, cancel := context.WithTimeout(c.Request.Context(), h.timeout)
		a = h.oracle.LookupAt(ctx, pvc, p)
		cancel()
	}

	code := statusOf(a)
	if code != http.StatusBadRequest {
		h.metrics.decisions.WithLabelValues(a.Backend, string(a.Decision)).Inc()
	}

	if a.Decision == repo.Unknown && code != http.StatusBadRequest {
		h.logger.Warn("unknown answer", "pvc", pvc.String(), "backend", a.Backend, "reason", a.Reason)
	}

	c.JSON(code, h.render(a))
}

func (h *handler) render(a repo.Answer) existsResponse {
	r := existsResponse{
		Exists:        a.Decision == repo.Restore,
		Decision:      a.Decision,
		Authoritative: a.Authoritative(),
		Namespace:     a.PVC.Namespace,
		PVC:           a.PVC.Name,
		Backend:       a.Backend,
		Source:        a.Source,
		SnapshotCount: a.SnapshotCount,
	}

	if s := a.Latest; s != nil {
		r.LatestSnapshot = &snapshotJSON{ID: s.ID, Time: s.StartTime.UTC(), Size: s.TotalSize}
	}

	if r.PointInTime = renderPoint(a.PointInTime); r.PointInTime != nil && a.Selected != nil {
		r.SelectedSnapshot = &snapshotJSON{ID: a.Selected.ID, Time: a.Selected.StartTime.UTC(), Size: a.Selected.TotalSize}
	}

	if !a.IndexTime.IsZero() {
		age := h.now().Sub(a.IndexTime).Seconds()
		r.IndexAgeSeconds = &age
	}

	if a.Reason != nil {
		r.Error = a.Reason.Error()
	}

	return r
}
