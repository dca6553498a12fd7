package server

import (
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
	Error           string        `json:"error,omitempty"`
}

type snapshotJSON struct {
	ID   string    `json:"id"`
	Time time.Time `json:"time"`
	Size int64     `json:"size"`
}

// statusOf is the one table mapping outcomes to HTTP status codes.
func statusOf(a repo.Answer) int {
	switch {
	case errors.Is(a.Reason, repo.ErrInvalidName):
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
	if err := pvc.Validate(); err != nil {
		a = repo.Answer{PVC: pvc, Decision: repo.Unknown, Reason: err}
	} else {
		ctx := newLazyTimeout(c.Request.Context(), h.now().Add(h.timeout))
		a = h.oracle.Lookup(ctx, pvc)
		ctx.release()
	}

	code := statusOf(a)
	if code != http.StatusBadRequest {
		h.metrics.decisions.WithLabelValues(a.Backend, string(a.Decision)).Inc()
	}

	if a.Decision == repo.Unknown && code != http.StatusBadRequest {
		h.logger.Warn("unknown answer", "pvc", pvc.String(), "backend", a.Backend, "reason", a.Reason)
	}

	if a.Reason == nil && h.renders != nil {
		h.writeMemoised(c, code, a)
		return
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

	if !a.IndexTime.IsZero() {
		age := h.now().Sub(a.IndexTime).Seconds()
		r.IndexAgeSeconds = &age
	}

	if a.Reason != nil {
		r.Error = a.Reason.Error()
	}

	return r
}
