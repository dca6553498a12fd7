// Package server is backup-oracle's HTTP API (gin): /exists/{namespace}/{pvc} for Kyverno,
// /readyz, /healthz, /status and /metrics for Kubernetes, and for operators /explain,
// /snapshots, /identity, /backups, /openapi.yaml and a read-only console at /.
package server

import (
	"context"
	"errors"
	"fmt"
	"html/template"
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
	// Lookup answers one query for a valid PVC (restored at its point in time; zero: the newest
	// snapshot); it must honour ctx and never block on backend I/O.
	Lookup(ctx context.Context, q repo.Query) repo.Answer
	// Ready is nil when lookups are authoritative; it must do no I/O (it backs /readyz).
	Ready() error
	// Status describes every backend's index.
	Status() []repo.IndexStatus
	// Explain reports, per backend, everything the index knows of one valid PVC.
	Explain(ctx context.Context, pvc repo.PVC) []repo.Explanation
	// Inventory lists, per backend, what its index holds (empty with the reason when the
	// backend is not authoritative). No I/O.
	Inventory() []repo.Inventory
}

// Options configure the handler. Oracle and Gatherer are required.
type Options struct {
	Oracle Oracle
	// Registerer receives the HTTP metrics; Gatherer serves /metrics. Use a private registry.
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
	// RequestTimeout bounds a lookup; past it the answer is unknown.
	RequestTimeout time.Duration
	Logger         *slog.Logger
	Now            func() time.Time
	// OpenAPI is served at /openapi.yaml (the spec embedded in the binary); nil serves 404.
	OpenAPI []byte
	// ReplicationName returns the name the policies give a PVC's ReplicationSource (GET
	// /identity); nil leaves it out.
	ReplicationName func(repo.PVC) string
	// DestinationName returns the name they give its ReplicationDestination (the chart's
	// destinationNameTemplate); nil: ReplicationName's.
	DestinationName func(repo.PVC) string
	// DefaultStaleFor is the console's staleness threshold when the page does not say
	// (default 26h: a daily backup plus two hours).
	DefaultStaleFor time.Duration
	// RenderCacheSize bounds the rendered authoritative answers kept for the /exists hit path
	// (default DefaultRenderCacheSize).
	RenderCacheSize int
	// Cutover describes a declared blue/green cutover and the PVCs waiting for it (/status, the
	// console); nil leaves it out.
	Cutover func() repo.CutoverStatus
	// Gate is the gate self-test shown on /status and the console; nil leaves it out.
	Gate Gate
	// Auth says who may ask; the zero value serves everyone.
	Auth Auth
	// TrustedProxies are the addresses or CIDRs whose X-Forwarded-For gin believes (for the
	// client address in logs); none by default. Identity headers are another matter: only a
	// proxy the Authenticator verifies (client certificate) may state one.
	TrustedProxies []string
}

type handler struct {
	oracle          Oracle
	timeout         time.Duration
	logger          *slog.Logger
	now             func() time.Time
	metrics         *httpMetrics
	openAPI         []byte
	replicationName func(repo.PVC) string
	destinationName func(repo.PVC) string
	staleFor        time.Duration
	console         *template.Template
	renders         *lru.Cache[repo.PVC, *renderedAnswer]
	cutover         func() repo.CutoverStatus
	gate            Gate
	auth            Auth
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

	if opts.DestinationName == nil {
		opts.DestinationName = opts.ReplicationName
	}

	if opts.DefaultStaleFor <= 0 {
		opts.DefaultStaleFor = DefaultStaleFor
	}

	if (opts.Auth.Authenticator == nil) != (opts.Auth.Authorizer == nil) {
		return nil, errors.New("server: an authenticator needs an authorizer, and the other way round")
	}

	if err := ValidateAnonymous(opts.Auth.Anonymous); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}

	h := &handler{
		oracle: opts.Oracle, timeout: opts.RequestTimeout, logger: opts.Logger, now: opts.Now,
		metrics: newHTTPMetrics(opts.Registerer), openAPI: opts.OpenAPI, replicationName: opts.ReplicationName,
		staleFor: opts.DefaultStaleFor, console: consoleTemplate(), renders: newRenderCache(opts.RenderCacheSize),
		cutover: opts.Cutover, destinationName: opts.DestinationName, gate: opts.Gate, auth: opts.Auth,
	}

	r := gin.New()
	if err := r.SetTrustedProxies(opts.TrustedProxies); err != nil {
		return nil, fmt.Errorf("server: trusted proxies: %w", err)
	}

	r.HandleMethodNotAllowed = true
	r.Use(h.observe, h.recover, securityHeaders)

	// Who may ask what (README, "Who may ask"): the probes are open; every other endpoint needs
	// an authenticated caller holding the permission its guard names.
	r.GET("/exists/:namespace/:pvc", h.guard("exists", pvcNeed), h.exists)
	r.GET("/readyz", h.readyz)
	r.GET("/healthz", h.healthz)
	r.GET("/status", h.guard("status", repositoriesNeed), h.status)
	r.GET("/explain/:namespace/:pvc", h.guard("explain", pvcNeed), h.explain)
	r.GET("/snapshots/:namespace/:pvc", h.guard("snapshots", pvcNeed), h.snapshots)
	r.GET("/identity/:namespace/:pvc", h.guard("identity", repositoriesNeed), h.identity)
	r.GET("/backups", h.guard("backups", nil), h.backups)
	r.GET("/openapi.yaml", h.guard("openapi", pathNeed("/openapi.yaml")), h.openapi)
	r.GET("/", h.guard("console", nil), h.consolePage)
	r.GET("/metrics", h.guard("metrics", pathNeed("/metrics")), gin.WrapH(promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{})))
	r.NoRoute(h.noRoute)
	r.NoMethod(func(c *gin.Context) {
		c.JSON(http.StatusMethodNotAllowed, errorBody{Error: "method " + c.Request.Method + " not allowed: the API is read-only, use GET"})
	})

	return r, nil
}

//nolint:gochecknoglobals // constant header values, shared so that setting them allocates nothing
var (
	nosniff = []string{"nosniff"}
	noStore = []string{"no-store"}
	hsts    = []string{"max-age=31536000"}
)

// securityHeaders: no answer is sniffed into another type or kept by a cache (they describe the
// cluster's data and depend on who asks).
func securityHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h["X-Content-Type-Options"] = nosniff
	h["Cache-Control"] = noStore

	if c.Request.TLS != nil {
		h["Strict-Transport-Security"] = hsts
	}
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

// pvcRoutes take /{namespace}/{pvc}; a malformed path under them is a 400, not a 404.
var pvcRoutes = []string{"/exists", "/explain", "/snapshots", "/identity"} //nolint:gochecknoglobals // a constant list

func (h *handler) noRoute(c *gin.Context) {
	for _, prefix := range pvcRoutes {
		if strings.HasPrefix(c.Request.URL.Path, prefix) {
			c.JSON(http.StatusBadRequest, existsResponse{
				Decision: repo.Unknown,
				Error: "bad request: expected /exists/{namespace}/{pvc}, /explain/{namespace}/{pvc}, /snapshots/{namespace}/{pvc} or " +
					"/identity/{namespace}/{pvc} with exactly two non-empty path segments",
			})

			return
		}
	}

	c.JSON(http.StatusNotFound, errorBody{Error: "not found: " + c.Request.URL.Path + "; endpoints are / (console), /exists/{namespace}/{pvc}, " +
		"/explain/{namespace}/{pvc}, /snapshots/{namespace}/{pvc}, /identity/{namespace}/{pvc}, /backups, /readyz, /healthz, /status, /metrics, /openapi.yaml"})
}

// openapi serves the OpenAPI description of this API.
func (h *handler) openapi(c *gin.Context) {
	if h.openAPI == nil {
		c.JSON(http.StatusNotFound, errorBody{Error: "no OpenAPI description in this build"})
		return
	}

	c.Data(http.StatusOK, "application/yaml; charset=utf-8", h.openAPI)
}

type errorBody struct {
	Error string `json:"error"`
}
