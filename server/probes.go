package server

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

type readyResponse struct {
	Ready  bool   `json:"ready"`
	Reason string `json:"reason,omitempty"`
}

// readyz is the fail-closed gate: 200 only when every index is loaded and fresh. No I/O.
func (h *handler) readyz(c *gin.Context) {
	if err := h.oracle.Ready(); err != nil {
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
	FittingSources int      `json:"fittingSources"`
	RepositoryID   string   `json:"repositoryID,omitempty"`
	IndexAgeSecond *float64 `json:"indexAgeSeconds,omitempty"`
}

// statusResponse is /status: every backend's index and, when configured, the gate self-test.
type statusResponse struct {
	Backends []backendStatus `json:"backends"`
	Gate     *gateJSON       `json:"gate,omitempty"`
}

// status shows every backend's index and the gate self-test, for an operator debugging a
// restore or a PVC that was never checked. Always 200: it reports, it does not gate.
func (h *handler) status(c *gin.Context) {
	c.JSON(http.StatusOK, statusResponse{Backends: h.statuses(), Gate: h.gateStatus()})
}

// statuses is every backend's index state, for /status and the console.
func (h *handler) statuses() []backendStatus {
	statuses := h.oracle.Status()
	out := make([]backendStatus, 0, len(statuses))

	for _, s := range statuses {
		b := backendStatus{
			Backend: s.Backend, Ready: s.NotReady == nil, Generation: s.Generation,
			Sources: s.Stats.Sources, Snapshots: s.Stats.Snapshots, FittingSources: s.Stats.Fitting, RepositoryID: s.Stats.RepositoryID,
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
