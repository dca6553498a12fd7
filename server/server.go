// Package server is backup-oracle's HTTP API (gin): /exists/{namespace}/{pvc} for Kyverno,
// /readyz, /healthz, /status and /metrics for operators and Kubernetes.
package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/backup-oracle/backup-oracle/repo"
)

// Oracle is what the server needs from the index caches.
type Oracle interface {
	// Lookup answers for one valid PVC; it must honour ctx and never block on backend I/O.
	Lookup(ctx context.Context, pvc repo.PVC) repo.Answer
	// Ready is nil when lookups are authoritative; it must do no I/O (it backs /readyz).
	Ready() error
	// Status describes every backend's index.
	Status() []repo.IndexStatus
	// Explain reports, per backend, everything the index knows of one valid PVC.
	Explain(ctx context.Context, pvc repo.PVC) []repo.Explanation
}

// Options configure the handler. Oracle and Gatherer are required.
type Options struct {
	Oracle Oracle
	// Registerer receives the HTTP metrics; Gatherer serves /metrics. Use a private registry.
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
	// RequestTimeout bounds a lookup; past it the answer is unknown.
	RequestTimeout time.Duration
	// RenderCacheSize bounds the rendered authoritative answers kept for the /exists hit path
	// (default DefaultRenderCacheSize).
	RenderCacheSize int
	Logger          *slog.Logger
	Now             func() time.Time
}

type handler struct {
	oracle  Oracle
	timeout time.Duration
	logger  *slog.Logger
	now     func() time.Time
	metrics *httpMetrics
	renders *lru.Cache[repo.PVC, *renderedAnswer]
}

// New returns the HTTP handler.
func New(opts Options) (http.Handler, error) {
	if opts.Oracle == nil || opts.Gatherer == nil || opts.Registerer == nil {
		return nil, errors.New("server: oracle, registerer and gatherer are required")
	}

	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}

	if opts.Now == nil {
		opts.Now = time.Now
	}

	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 5 * time.Second
	}

	h := &handler{
		oracle: opts.Oracle, timeout: opts.RequestTimeout, logger: opts.Logger, now: opts.Now,
		metrics: newHTTPMetrics(opts.Registerer), renders: newRenderCache(opts.RenderCacheSize),
	}

	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.Use(h.observe, h.recover)

	r.GET("/exists/:namespace/:pvc", h.exists)
	r.GET("/readyz", h.readyz)
	r.GET("/healthz", h.healthz)
	r.GET("/status", h.status)
	r.GET("/explain/:namespace/:pvc", h.explain)
	r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{})))
	r.NoRoute(h.noRoute)
	r.NoMethod(func(c *gin.Context) {
		c.JSON(http.StatusMethodNotAllowed, errorBody{Error: "method " + c.Request.Method + " not allowed: the API is read-only, use GET"})
	})

	return r, nil
}

// recover turns a panic into a 500 with a JSON body; it should never run.
func (h *handler) recover(c *gin.Context) {
	defer func() {
		if v := recover(); v != nil {
			h.logger.Error("panic serving request", "path", c.Request.URL.Path, "panic", v)
			c.AbortWithStatusJSON(http.StatusInternalServerError, errorBody{Error: "internal error"})
		}
	}()
	c.Next()
}

func (h *handler) noRoute(c *gin.Context) {
	if strings.HasPrefix(c.Request.URL.Path, "/exists") || strings.HasPrefix(c.Request.URL.Path, "/explain") {
		c.JSON(http.StatusBadRequest, existsResponse{
			Decision: repo.Unknown,
			Error:    "bad request: expected /exists/{namespace}/{pvc} or /explain/{namespace}/{pvc} with exactly two non-empty path segments",
		})

		return
	}

	c.JSON(http.StatusNotFound, errorBody{Error: "not found: " + c.Request.URL.Path + "; endpoints are /exists/{namespace}/{pvc}, /explain/{namespace}/{pvc}, /readyz, /healthz, /status, /metrics"})
}

type errorBody struct {
	Error string `json:"error"`
}
