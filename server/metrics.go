package server

import (
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
)

type httpMetrics struct {
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	decisions *prometheus.CounterVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "backup_oracle_http_requests_total",
			Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "backup_oracle_http_request_duration_seconds",
			Help:    "HTTP request latency by route.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "backup_oracle_decisions_total",
			Help: "Answers of /exists by backend and decision (restore, fresh, unknown).",
		}, []string{"backend", "decision"}),
	}
	reg.MustRegister(m.requests, m.duration, m.decisions)

	return m
}

// observe records every request under its route pattern (never the raw path, whose
// cardinality the client controls).
func (h *handler) observe(c *gin.Context) {
	start := time.Now()

	c.Next()

	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}

	h.metrics.requests.WithLabelValues(route, strconv.Itoa(c.Writer.Status())).Inc()
	h.metrics.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
}
