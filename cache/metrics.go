package cache

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/backup-oracle/backup-oracle/repo"
)

// Metrics are the index metrics of every cache, labelled by backend. A nil *Metrics records
// nothing.
type Metrics struct {
	refreshDuration *prometheus.HistogramVec
	lastSuccess     *prometheus.GaugeVec
	sources         *prometheus.GaugeVec
	snapshots       *prometheus.GaugeVec
	refreshes       *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them on reg (a private registry, never the
// global one).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		refreshDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "backup_oracle_index_refresh_duration_seconds",
			Help:    "Duration of index refreshes, successful or not.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}, []string{"backend"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "backup_oracle_index_last_success_timestamp_seconds",
			Help: "Unix time of the last successful index refresh.",
		}, []string{"backend"}),
		sources: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "backup_oracle_index_sources",
			Help: "Snapshot sources (or repositories) in the last successfully loaded index.",
		}, []string{"backend"}),
		snapshots: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "backup_oracle_index_snapshots",
			Help: "Snapshots in the last successfully loaded index.",
		}, []string{"backend"}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "backup_oracle_index_refreshes_total",
			Help: "Index refreshes by result (success, error).",
		}, []string{"backend", "result"}),
	}
	reg.MustRegister(m.refreshDuration, m.lastSuccess, m.sources, m.snapshots, m.refreshes)

	return m
}

func (m *Metrics) observeRefresh(backend string, d time.Duration, idx repo.Index, end time.Time, err error) {
	if m == nil {
		return
	}

	m.refreshDuration.WithLabelValues(backend).Observe(d.Seconds())

	if err != nil {
		m.refreshes.WithLabelValues(backend, "error").Inc()
		return
	}

	m.refreshes.WithLabelValues(backend, "success").Inc()
	m.lastSuccess.WithLabelValues(backend).Set(float64(end.UnixNano()) / 1e9)

	st := idx.Stats()
	m.sources.WithLabelValues(backend).Set(float64(st.Sources))
	m.snapshots.WithLabelValues(backend).Set(float64(st.Snapshots))
}
