package server

import (
	"fmt"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/backup-oracle/backup-oracle/repo"
)

// pointInTime reads ?asOf=<RFC 3339> and ?previous=<N> (VolSync's restoreAsOf and previous).
// A malformed value is an error wrapping repo.ErrInvalidParameter that names the parameter.
func pointInTime(c *gin.Context) (repo.PointInTime, error) {
	var p repo.PointInTime

	if v, ok := c.GetQuery("asOf"); ok {
		t, err := repo.ParseAsOf(v)
		if err != nil {
			return p, err
		}

		p.AsOf = t
	}

	if v, ok := c.GetQuery("previous"); ok {
		n, err := repo.ParsePrevious(v)
		if err != nil {
			return p, err
		}

		p.Previous = n
	}

	return p, nil
}

// staleFor reads ?staleFor=<Go duration> (e.g. 26h); zero when absent.
func staleFor(c *gin.Context) (time.Duration, error) {
	v, ok := c.GetQuery("staleFor")
	if !ok {
		return 0, nil
	}

	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%w: staleFor %q must be a positive Go duration such as 26h or 90m", repo.ErrInvalidParameter, v)
	}

	return d, nil
}

// namespaceFilter reads ?namespace=; it must be a valid namespace when given.
func namespaceFilter(c *gin.Context) (string, error) {
	ns := c.Query("namespace")
	if ns == "" {
		return "", nil
	}

	if len(ns) > repo.MaxNamespaceLen || !repo.IsDNS1123Label(ns) {
		return "", fmt.Errorf("%w: namespace %q is not a Kubernetes namespace name (a DNS-1123 label)", repo.ErrInvalidParameter, ns)
	}

	return ns, nil
}

// pointJSON renders a point in time in responses; nil for the newest snapshot.
type pointJSON struct {
	AsOf     *time.Time `json:"asOf,omitempty"`
	Previous int        `json:"previous"`
}

func renderPoint(p repo.PointInTime) *pointJSON {
	if p.IsZero() {
		return nil
	}

	out := &pointJSON{Previous: p.Previous}
	if !p.AsOf.IsZero() {
		t := p.AsOf.UTC()
		out.AsOf = &t
	}

	return out
}
