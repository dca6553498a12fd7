package server

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/backup-oracle/backup-oracle/repo"
)

type readyResponse struct {
	Ready  bool   `json:"ready"`
	Reason string `json:"reason,omitempty"`
}

// ErrDraining marks a readiness error of a replica that is stopping but still answers
// authoritatively (SIGTERM received, serving for the shutdown delay while Kubernetes removes it
// from the Service): not ready for the kubelet, ready for an admission that reached it anyway.
var ErrDraining = errors.New("draining")

// readyz is the fail-closed gate: 200 only when every index is loaded and fresh. No I/O.
// ?admission=true asks for the policies (the CEL set calls it through the Service, so it may
// reach a draining replica): a draining replica whose indexes are ready answers 200 with the
// reason, as its /exists answers stay authoritative until it stops.
func (h *handler) readyz(c *gin.Context) {
	admission := c.Query("admission")
	if admission != "" && admission != "true" {
		c.JSON(http.StatusBadRequest, errorBody{Error: fmt.Sprintf("%s: admission=%q: want true or nothing", repo.ErrInvalidParameter, admission)})
		return
	}

	if err := h.oracle.Ready(); err != nil {
		if admission == "true" && errors.Is(err, ErrDraining) {
			c.JSON(http.StatusOK, readyResponse{Ready: true, Reason: err.Error()})
			return
		}

		c.JSON(http.StatusServiceUnavailable, readyResponse{Reason: err.Error()})

		return
	}

	c.JSON(http.StatusOK, readyResponse{Ready: true})
}

// healthz says the process serves HTTP; backend trouble never makes it fail (a restart would
// not fix the backend and crash loops have caused cluster-wide outages).
func (h *handler) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

type backendStatus struct {
	Backend     string     `json:"backend"`
	Ready       bool       `json:"ready"`
	Reason      string     `json:"reason,omitempty"`
	LoadedAt    *time.Time `json:"loadedAt,omitempty"`
	LastAttempt *time.Time `json:"lastAttempt,omitempty"`
	LastError   string     `json:"lastError,omitempty"`
	Generation  uint64     `json:"generation"`
	Sources     int        `json:"sources"`
	Snapshots   int        `json:"snapshots"`
	// FittingSources counts the sources the identity settings could have produced.
	FittingSources int `json:"fittingSources"`
	// UnrestorableSnapshots counts the snapshots read that the movers would not restore.
	UnrestorableSnapshots int      `json:"unrestorableSnapshots,omitempty"`
	RepositoryID          string   `json:"repositoryID,omitempty"`
	IndexAgeSecond        *float64 `json:"indexAgeSeconds,omitempty"`
	// Layout is how well the identity settings fit the sources (Kopia).
	Layout *layoutStatus `json:"layout,omitempty"`
	// Refused is what the last load read before a guard refused it (no source fits the settings).
	Refused *refusedStatus `json:"refused,omitempty"`
}

type layoutStatus struct {
	// Considered: sources under hostnames the settings give a namespace.
	Considered int `json:"considered"`
	// Fitting: those the settings (or KOPIA_OTHER_SCHEMES) produce.
	Fitting int           `json:"fitting"`
	Others  []schemeCount `json:"otherSchemes,omitempty"`
	// Warning is set when the settings fit fewer than half of them.
	Warning string `json:"warning,omitempty"`
}

type schemeCount struct {
	// Scheme: a source-name template ("{pvc}-volsync"), "path <dir>/{pvc}" or "path <path>".
	Scheme   string   `json:"scheme"`
	Sources  int      `json:"sources"`
	Examples []string `json:"examples,omitempty"`
}

type refusedStatus struct {
	Sources               int           `json:"sources"`
	Snapshots             int           `json:"snapshots"`
	FittingSources        int           `json:"fittingSources"`
	UnrestorableSnapshots int           `json:"unrestorableSnapshots,omitempty"`
	Layout                *layoutStatus `json:"layout,omitempty"`
}

func newLayoutStatus(f repo.LayoutFit) *layoutStatus {
	if f.Considered == 0 {
		return nil
	}

	out := &layoutStatus{Considered: f.Considered, Fitting: f.Expected, Warning: f.Warning()}
	for _, o := range f.Others {
		out.Others = append(out.Others, schemeCount{Scheme: o.Scheme, Sources: o.Sources, Examples: o.Examples})
	}

	return out
}

type cutoverStatus struct {
	At   time.Time `json:"at"`
	From string    `json:"from"`
	// Waiting counts the PVCs answered unknown while their final backup is missing.
	Waiting           int            `json:"waiting"`
	OldestWaitSeconds float64        `json:"oldestWaitSeconds"`
	PVCs              []cutoverWaitJ `json:"pvcs,omitempty"`
}

type cutoverWaitJ struct {
	Namespace string       `json:"namespace"`
	PVC       string       `json:"pvc"`
	Since     time.Time    `json:"since"`
	Newest    snapshotJSON `json:"newestSnapshot"`
}

// maxCutoverListed bounds the waiting PVCs /status lists (the count is complete).
const maxCutoverListed = 100

func (h *handler) cutoverStatus() *cutoverStatus {
	if h.cutover == nil {
		return nil
	}

	st := h.cutover()
	if st.IsZero() {
		return nil
	}

	out := &cutoverStatus{At: st.At.UTC(), From: st.From, Waiting: len(st.Waiting)}
	for i, w := range st.Waiting {
		if i == 0 {
			out.OldestWaitSeconds = h.now().Sub(w.Since).Seconds()
		}

		if i < maxCutoverListed {
			out.PVCs = append(out.PVCs, cutoverWaitJ{Namespace: w.PVC.Namespace, PVC: w.PVC.Name, Since: w.Since.UTC(),
				Newest: snapshotJSON{ID: w.Newest.ID, Time: w.Newest.StartTime.UTC(), Size: w.Newest.TotalSize}})
		}
	}

	return out
}

// statusResponse is /status: every backend's index and, when configured, the gate self-test.
type statusResponse struct {
	Backends []backendStatus `json:"backends"`
	Gate     *gateJSON       `json:"gate,omitempty"`
	// Cutover is a declared blue/green cutover and the PVCs waiting for it.
	Cutover *cutoverStatus `json:"cutover,omitempty"`
}

// status shows every backend's index and the gate self-test, for an operator debugging a
// restore or a PVC that was never checked. Always 200: it reports, it does not gate.
func (h *handler) status(c *gin.Context) {
	c.JSON(http.StatusOK, statusResponse{Backends: h.statuses(), Gate: h.gateStatus(), Cutover: h.cutoverStatus()})
}

// statuses is every backend's index state, for /status and the console.
func (h *handler) statuses() []backendStatus {
	statuses := h.oracle.Status()
	out := make([]backendStatus, 0, len(statuses))

	for _, s := range statuses {
		b := backendStatus{
			Backend: s.Backend, Ready: s.NotReady == nil, Generation: s.Generation,
			Sources: s.Stats.Sources, Snapshots: s.Stats.Snapshots, FittingSources: s.Stats.Fitting, UnrestorableSnapshots: s.Stats.Unrestorable, RepositoryID: s.Stats.RepositoryID,
			Layout: newLayoutStatus(s.Stats.Layout),
		}

		if r := s.Refused; r != nil {
			b.Refused = &refusedStatus{Sources: r.Sources, Snapshots: r.Snapshots, FittingSources: r.Fitting, UnrestorableSnapshots: r.Unrestorable,
				Layout: newLayoutStatus(r.Layout)}
		}

		if s.NotReady != nil {
			b.Reason = s.NotReady.Error()
		}

		if s.LastError != nil {
			b.LastError = s.LastError.Error()
		}

		if !s.LoadedAt.IsZero() {
			t, age := s.LoadedAt.UTC(), h.now().Sub(s.LoadedAt).Seconds()
			b.LoadedAt, b.IndexAgeSecond = &t, &age
		}

		if !s.LastAttempt.IsZero() {
			t := s.LastAttempt.UTC()
			b.LastAttempt = &t
		}

		out = append(out, b)
	}

	return out
}
