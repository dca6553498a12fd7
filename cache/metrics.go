package cache

import (
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/backup-oracle/backup-oracle/repo"
)

// Metrics are the index metrics of every cache, labelled by backend. A nil *Metrics records
// nothing.
type Metrics struct {
	live            *liveCollector
	refreshDuration *prometheus.HistogramVec
	lastSuccess     *prometheus.GaugeVec
	sources         *prometheus.GaugeVec
	snapshots       *prometheus.GaugeVec
	bytes           *prometheus.GaugeVec
	refreshes       *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them on reg (a private registry, never the
// global one).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		live: &liveCollector{
			age: prometheus.NewDesc("backup_oracle_index_age_seconds",
				"Age of the last successfully loaded index at scrape time; absent before the first load.", []string{"backend"}, nil),
			ready: prometheus.NewDesc("backup_oracle_index_ready",
				"1 when the backend answers authoritatively (loaded, last refresh succeeded, fresh), else 0.", []string{"backend"}, nil),
		},
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
		bytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "backup_oracle_index_bytes",
			Help: "Estimated memory held by the last successfully loaded index, in bytes (0: the backend does not estimate it).",
		}, []string{"backend"}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "backup_oracle_index_refreshes_total",
			Help: "Index refreshes by result (success, error).",
		}, []string{"backend", "result"}),
	}
	reg.MustRegister(m.live, m.refreshDuration, m.lastSuccess, m.sources, m.snapshots, m.bytes, m.refreshes)

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
	m.bytes.WithLabelValues(backend).Set(float64(st.Bytes))
}

// watch adds c to the caches whose age and readiness are computed at scrape time.
func (m *Metrics) watch(c *Cache) {
	if m == nil {
		return
	}

	m.live.mu.Lock()
	m.live.caches = append(m.live.caches, c)
	m.live.mu.Unlock()
}

// liveCollector reports values that change with time, not with events.
type liveCollector struct {
	age, ready *prometheus.Desc

	mu     sync.Mutex
	caches []*Cache
}

func (l *liveCollector) Describe(ch chan<- *prometheus.Desc) { ch <- l.age; ch <- l.ready }

func (l *liveCollector) Collect(ch chan<- prometheus.Metric) {
	l.mu.Lock()
	caches := slices.Clone(l.caches)
	l.mu.Unlock()

	for _, c := range caches {
		st := c.Status()

		ready := 0.0
		if st.NotReady == nil {
			ready = 1
		}

		ch <- prometheus.MustNewConstMetric(l.ready, prometheus.GaugeValue, ready, st.Backend)

		if !st.LoadedAt.IsZero() {
			ch <- prometheus.MustNewConstMetric(l.age, prometheus.GaugeValue, c.opts.Now().Sub(st.LoadedAt).Seconds(), st.Backend)
		}
	}
}
