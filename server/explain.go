package server

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/backup-oracle/backup-oracle/repo"
)

// explainResponse is for an operator debugging a restore: the answer Kyverno would get, and
// per backend the identity looked up, every snapshot and what else is stored nearby.
type explainResponse struct {
	Answer existsResponse `json:"answer"`
	// RestoreIdentity is, for a named source (?source=), how the policies' ReplicationDestination
	// states it for VolSync's Kopia mover.
	RestoreIdentity *restoreIdentityJSON `json:"restoreIdentity,omitempty"`
	Backends        []backendExplain     `json:"backends"`
}

// restoreIdentityJSON is the identity fields of spec.kopia of the RD restoring a named source
// (repo.KopiaDestinationOf), or why there is none.
type restoreIdentityJSON struct {
	Username       string              `json:"username,omitempty"`
	Hostname       string              `json:"hostname,omitempty"`
	SourceIdentity *sourceIdentityJSON `json:"sourceIdentity,omitempty"`
	Error          string              `json:"error,omitempty"`
}

type sourceIdentityJSON struct {
	SourceName         string `json:"sourceName"`
	SourceNamespace    string `json:"sourceNamespace"`
	SourcePathOverride string `json:"sourcePathOverride"`
}

func renderRestoreIdentity(src repo.KopiaSource) *restoreIdentityJSON {
	if src == (repo.KopiaSource{}) {
		return nil
	}

	d, err := repo.KopiaDestinationOf(src)
	switch {
	case err != nil:
		return &restoreIdentityJSON{Error: err.Error()}
	case d.SourceIdentity():
		return &restoreIdentityJSON{SourceIdentity: &sourceIdentityJSON{SourceName: d.SourceName, SourceNamespace: d.SourceNamespace,
			SourcePathOverride: d.SourcePathOverride}}
	default:
		return &restoreIdentityJSON{Username: d.Username, Hostname: d.Hostname}
	}
}

type backendExplain struct {
	Backend         string           `json:"backend"`
	Source          string           `json:"source,omitempty"`
	Snapshots       []snapshotDetail `json:"snapshots"`
	Nearby          []string         `json:"nearby,omitempty"`
	NearMiss        []nearMissJSON   `json:"nearMiss,omitempty"`
	IndexAgeSeconds *float64         `json:"indexAgeSeconds,omitempty"`
	Error           string           `json:"error,omitempty"`
}

type snapshotDetail struct {
	ID        string     `json:"id"`
	StartTime time.Time  `json:"startTime"`
	EndTime   *time.Time `json:"endTime,omitempty"`
	Size      int64      `json:"size,omitempty"`
	Files     int64      `json:"files,omitempty"`
	Host      string     `json:"host,omitempty"`
	Paths     []string   `json:"paths,omitempty"`
	Tags      []string   `json:"tags,omitempty"`
	// ApproxTime: startTime is the storage object's modification time (restic without password).
	ApproxTime bool `json:"approxTime,omitempty"`
}

// explain answers 200 whatever the decision (it is for humans, not for Kyverno), 400 for
// invalid names or parameters. ?asOf, ?previous and ?source change the answer as on /exists;
// with ?source, restoreIdentity says how the generated RD states that source. The backends'
// sections show the PVC's own identity, for comparison.
func (h *handler) explain(c *gin.Context) {
	q, err := query(c)
	pvc := q.PVC

	if err != nil {
		c.JSON(http.StatusBadRequest, h.render(repo.Answer{PVC: pvc, Decision: repo.Unknown, Reason: err}))
		return
	}

	ctx, cancel := context.WithTimeout(c.Request.Context(), h.timeout)
	defer cancel()

	c.JSON(http.StatusOK, h.explanation(ctx, q))
}

// explanation is the body of /explain, also shown by the console.
func (h *handler) explanation(ctx context.Context, q repo.Query) explainResponse {
	pvc := q.PVC
	out := explainResponse{Answer: h.render(h.oracle.Lookup(ctx, q)), RestoreIdentity: renderRestoreIdentity(q.Source), Backends: []backendExplain{}}

	for _, e := range h.oracle.Explain(ctx, pvc) {
		b := backendExplain{Backend: e.Backend, Source: e.Finding.Source, Nearby: e.Nearby, Snapshots: []snapshotDetail{},
			NearMiss: h.render(repo.Answer{NearMisses: e.Finding.NearMisses}).NearMiss}

		for _, s := range e.Finding.Snapshots {
			b.Snapshots = append(b.Snapshots, detail(s))
		}

		if !e.IndexTime.IsZero() {
			age := h.now().Sub(e.IndexTime).Seconds()
			b.IndexAgeSeconds = &age
		}

		if e.Err != nil {
			b.Error = e.Err.Error()
		}

		out.Backends = append(out.Backends, b)
	}

	return out
}
