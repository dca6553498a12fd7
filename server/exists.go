package server

import (
	"errors"
	"fmt"
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
	// NearMiss lists snapshots that probably hold this PVC's data under another identity.
	NearMiss []nearMissJSON `json:"nearMiss,omitempty"`
	// Accepted echoes an acknowledgement the answer was given under ("near-miss").
	Accepted string `json:"accepted,omitempty"`
	// RestoreSource echoes the source the PVC names (?source=, the annotation
	// backup-oracle.io/restore-source), looked up instead of its own.
	RestoreSource string   `json:"restoreSource,omitempty"`
	Warnings      []string `json:"warnings,omitempty"`
	// Elsewhere names, for a restore, the other backends holding (older) snapshots of the PVC.
	Elsewhere []elsewhereJSON `json:"elsewhere,omitempty"`
	// Pending: unknown while a verification of the PVC's snapshots is queued or running (restic
	// with a password); the answer changes within seconds, so ask again.
	Pending bool `json:"pending,omitempty"`
}

type elsewhereJSON struct {
	Backend        string        `json:"backend"`
	Source         string        `json:"source"`
	SnapshotCount  int           `json:"snapshotCount"`
	LatestSnapshot *snapshotJSON `json:"latestSnapshot,omitempty"`
}

type nearMissJSON struct {
	Backend        string     `json:"backend"`
	Source         string     `json:"source"`
	Rule           string     `json:"rule"`
	SnapshotCount  int        `json:"snapshotCount"`
	LatestSnapshot *time.Time `json:"latestSnapshot,omitempty"`
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

// query reads a lookup's PVC, point in time, named source and acknowledgements; bad names and
// parameters are errors wrapping repo.ErrInvalidName or repo.ErrInvalidParameter (400), all of
// them at once.
func query(c *gin.Context) (repo.Query, error) {
	q := repo.Query{PVC: repo.PVC{Namespace: c.Param("namespace"), Name: c.Param("pvc")}}

	p, perr := pointInTime(c)
	q.PointInTime = p

	var serr error
	if v, ok := c.GetQuery("source"); ok {
		q.Source, serr = repo.ParseKopiaSource(v)
	}

	var aerr error

	for _, v := range c.QueryArray("accept") {
		if v != repo.AcceptNearMiss {
			aerr = fmt.Errorf("%w: accept=%q: the only acknowledgement is accept=%s", repo.ErrInvalidParameter, v, repo.AcceptNearMiss)
			break
		}

		q.AcceptNearMiss = true
	}

	return q, errors.Join(q.PVC.Validate(), perr, serr, aerr)
}

// unknownStatus reads ?unknownStatus=: the HTTP status of an unknown answer, 503 (the default)
// or 200 for a caller that cannot read the body of a non-2xx answer. Kyverno's apiCall replaces
// a non-2xx answer with its default payload (pkg/engine/apicall, v1.17 to v1.19), so the
// policies' denial would lose the reason (a near miss, the pinned repository, ...); with 200 the
// body still says decision unknown, authoritative false, and the policies deny on that. A 400
// stays a 400.
func unknownStatus(c *gin.Context) (int, error) {
	switch v := c.Query("unknownStatus"); v {
	case "", "503":
		return http.StatusServiceUnavailable, nil
	case "200":
		return http.StatusOK, nil
	default:
		return 0, fmt.Errorf("%w: unknownStatus=%q: 503 (the default) or 200", repo.ErrInvalidParameter, v)
	}
}

func (h *handler) exists(c *gin.Context) {
	q, err := query(c)
	pvc := q.PVC

	unknownCode, serr := unknownStatus(c)
	err = errors.Join(err, serr)

	var a repo.Answer

	switch {
	case err != nil:
		a = repo.Answer{PVC: pvc, Decision: repo.Unknown, Reason: err}
	default:
		ctx := newLazyTimeout(c.Request.Context(), h.now().Add(h.timeout))
		a = h.oracle.Lookup(ctx, q)
		ctx.release()
	}

	code := statusOf(a)
	if code == http.StatusServiceUnavailable {
		code = unknownCode
	}

	if code != http.StatusBadRequest {
		h.metrics.decisions.WithLabelValues(a.Backend, string(a.Decision)).Inc()
	}

	switch {
	case a.Decision != repo.Unknown || code == http.StatusBadRequest:
	case errors.Is(a.Reason, repo.ErrCanary): // the gate self-test, every interval: its result is logged by the gate
		h.logger.Debug("unknown answer", "pvc", pvc.String(), "reason", a.Reason)
	default:
		h.logger.Warn("unknown answer", "pvc", pvc.String(), "backend", a.Backend, "reason", a.Reason)
	}

	if memoisable(a) && h.renders != nil {
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

	if r.PointInTime = renderPoint(a.PointInTime); r.PointInTime != nil && a.Selected != nil {
		r.SelectedSnapshot = &snapshotJSON{ID: a.Selected.ID, Time: a.Selected.StartTime.UTC(), Size: a.Selected.TotalSize}
	}

	if !a.IndexTime.IsZero() {
		age := h.now().Sub(a.IndexTime).Seconds()
		r.IndexAgeSeconds = &age
	}

	if a.Reason != nil {
		r.Error = a.Reason.Error()
		r.Pending = a.Decision == repo.Unknown && errors.Is(a.Reason, repo.ErrPending)
	}

	r.Accepted, r.Warnings, r.RestoreSource = a.Accepted, a.Warnings, a.RestoreSource
	for _, e := range a.Elsewhere {
		j := elsewhereJSON{Backend: e.Backend, Source: e.Source, SnapshotCount: e.SnapshotCount}
		if e.Latest != nil {
			j.LatestSnapshot = &snapshotJSON{ID: e.Latest.ID, Time: e.Latest.StartTime.UTC(), Size: e.Latest.TotalSize}
		}

		r.Elsewhere = append(r.Elsewhere, j)
	}

	for _, n := range a.NearMisses {
		j := nearMissJSON{Backend: n.Backend, Source: n.Source, Rule: n.Rule, SnapshotCount: n.Snapshots}
		if !n.Latest.IsZero() {
			t := n.Latest.UTC()
			j.LatestSnapshot = &t
		}

		r.NearMiss = append(r.NearMiss, j)
	}

	return r
}
