package server

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/backup-oracle/backup-oracle/repo"
)

// identityResponse is GET /identity/{namespace}/{pvc}: the names the policies generate for the
// PVC and the identity each backend looks up for it.
type identityResponse struct {
	Namespace string `json:"namespace"`
	PVC       string `json:"pvc"`
	// ReplicationSource and ReplicationDestination are the names the shipped policies give the
	// PVC's RS and RD (the chart's sourceNameTemplate, and destinationNameTemplate, else the same).
	ReplicationSource      string            `json:"replicationSource,omitempty"`
	ReplicationDestination string            `json:"replicationDestination,omitempty"`
	Backends               []identityBackend `json:"backends"`
	Error                  string            `json:"error,omitempty"`
}

type identityBackend struct {
	Backend string `json:"backend"`
	// Source is what the backend looks up: Kopia's user@host:path, a restic repository or tag.
	Source string `json:"source,omitempty"`
	Error  string `json:"error,omitempty"`
}

// identity answers 200 for valid names (400 otherwise). A backend that has never loaded an
// index cannot say its identity yet: its entry carries the reason instead.
func (h *handler) identity(c *gin.Context) {
	pvc := repo.PVC{Namespace: c.Param("namespace"), Name: c.Param("pvc")}
	out := identityResponse{Namespace: pvc.Namespace, PVC: pvc.Name, Backends: []identityBackend{}}

	if err := pvc.Validate(); err != nil {
		out.Error = err.Error()
		c.JSON(http.StatusBadRequest, out)

		return
	}

	if h.replicationName != nil {
		out.ReplicationSource = h.replicationName(pvc)
	}

	if h.destinationName != nil {
		out.ReplicationDestination = h.destinationName(pvc)
	}

	ctx, cancel := context.WithTimeout(c.Request.Context(), h.timeout)
	defer cancel()

	for _, e := range h.oracle.Explain(ctx, pvc) {
		b := identityBackend{Backend: e.Backend, Source: e.Finding.Source}
		if b.Source == "" && e.Err != nil {
			b.Error = e.Err.Error()
		}

		out.Backends = append(out.Backends, b)
	}

	c.JSON(http.StatusOK, out)
}
