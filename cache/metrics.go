package cache

import (
	"errors"
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
	fitting         *prometheus.GaugeVec
	layoutFit       *prometheus.GaugeVec
	bytes           *prometheus.GaugeVec
	refreshes       *prometheus.CounterVec
	guards          *prometheus.CounterVec
	restoreSources  *prometheus.CounterVec
}

// NewMetrics creates the metrics with default options and registers them on reg (a private
// registry, never the global one).
func NewMetrics(reg prometheus.Registerer) *Metrics { return NewMetricsWith(reg, MetricsOptions{}) }

// NewMetricsWith creates the metrics and registers them on reg (a private registry, never the
// global one).
func NewMetricsWith(reg prometheus.Registerer, opts MetricsOptions) *Metrics {
	if opts.BackupSeriesLimit == 0 {
		opts.BackupSeriesLimit = DefaultBackupSeriesLimit
	}

	m := &Metrics{
		live: &liveCollector{
			age: prometheus.NewDesc("backup_oracle_index_age_seconds",
				"Age of the last successfully loaded index at scrape time; absent before the first load.", []string{"backend"}, nil),
			ready: prometheus.NewDesc("backup_oracle_index_ready",
				"1 when the backend answers authoritatively (loaded, last refresh succeeded, fresh), else 0.", []string{"backend"}, nil),
			mismatch: prometheus.NewDesc("backup_oracle_repository_mismatch",
				"1 when the last refresh found another repository than the pinned (or first seen) one at the backend's location, else 0.", []string{"backend"}, nil),
			repository: prometheus.NewDesc("backup_oracle_repository_info",
				"The unique id of the repository the last index was read from (Kopia); the value is always 1.", []string{"backend", "repository_id"}, nil),
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
		fitting: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "backup_oracle_index_fitting_sources",
			Help: "Sources in the last successfully loaded index that the identity settings could have produced; 0 with sources stored means the settings differ from the movers'.",
		}, []string{"backend"}),
		layoutFit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "backup_oracle_index_layout_fit_ratio",
			Help: "Share (0 to 1) of the sources under the namespaces' hostnames that the identity settings (and KOPIA_OTHER_SCHEMES) produce, in the last index read, refused or not; below 0.5 /status names the scheme the others follow. 1 when there is none.",
		}, []string{"backend"}),
		bytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "backup_oracle_index_bytes",
			Help: "Estimated memory held by the last successfully loaded index, in bytes (0: the backend does not estimate it).",
		}, []string{"backend"}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "backup_oracle_index_refreshes_total",
			Help: "Index refreshes by result (success, error).",
		}, []string{"backend", "result"}),
		guards: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "backup_oracle_guard_total",
			Help: "Would-be fresh answers a guard acted on: guard expected-backup or near-miss; outcome denied (answered unknown), warned (NEAR_MISS=warn) or accepted (acknowledged on the PVC).",
		}, []string{"guard", "outcome"}),
		restoreSources: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "backup_oracle_restore_source_lookups_total",
			Help: "Lookups of PVCs naming their source (annotation " + repo.RestoreSourceAnnotation + ", ?source=), by decision: restore or unknown (never fresh).",
		}, []string{"decision"}),
	}
	reg.MustRegister(m.live, newBackupsCollector(opts.BackupSeriesLimit, m.live), m.refreshDuration, m.lastSuccess, m.sources, m.snapshots,
		m.fitting, m.layoutFit, m.bytes, m.refreshes, m.guards, m.restoreSources)

	return m
}

func (m *Metrics) observeRefresh(backend string, d time.Duration, idx repo.Index, end time.Time, err error) {
	if m == nil {
		return
	}

	m.refreshDuration.WithLabelValues(backend).Observe(d.Seconds())

	if idx != nil { // also an index a guard refused: the fit is what the operator must fix
		lf, ratio := idx.Stats().Layout, 1.0
		if lf.Considered > 0 {
			ratio = float64(lf.Expected) / float64(lf.Considered)
		}

		m.layoutFit.WithLabelValues(backend).Set(ratio)
	}

	if err != nil {
		m.refreshes.WithLabelValues(backend, "error").Inc()
		return
	}

	m.refreshes.WithLabelValues(backend, "success").Inc()
	m.lastSuccess.WithLabelValues(backend).Set(float64(end.UnixNano()) / 1e9)

	st := idx.Stats()
	m.sources.WithLabelValues(backend).Set(float64(st.Sources))
	m.snapshots.WithLabelValues(backend).Set(float64(st.Snapshots))
	m.fitting.WithLabelValues(backend).Set(float64(st.Fitting))
	m.bytes.WithLabelValues(backend).Set(float64(st.Bytes))
}

// observeRestoreSource counts a lookup naming its source by its decision.
func (m *Metrics) observeRestoreSource(d repo.Decision) {
	if m == nil {
		return
	}

	m.restoreSources.WithLabelValues(string(d)).Inc()
}

func (m *Metrics) observeGuard(e repo.GuardEvent) {
	if m == nil {
		return
	}

	m.guards.WithLabelValues(e.Guard, e.Outcome).Inc()
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
	age, ready, mismatch, repository *prometheus.Desc

	mu     sync.Mutex
	caches []*Cache
}

func (l *liveCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- l.age
	ch <- l.ready
	ch <- l.mismatch
	ch <- l.repository
}

// list returns the watched caches.
func (l *liveCollector) list() []*Cache {
	l.mu.Lock()
	defer l.mu.Unlock()

	return slices.Clone(l.caches)
}

func (l *liveCollector) Collect(ch chan<- prometheus.Metric) {
	for _, c := range l.list() {
		st := c.Status()

		ready := 0.0
		if st.NotReady == nil {
			ready = 1
		}

		ch <- prometheus.MustNewConstMetric(l.ready, prometheus.GaugeValue, ready, st.Backend)

		mismatch := 0.0
		if errors.Is(st.LastError, repo.ErrRepositoryMismatch) {
			mismatch = 1
		}

		ch <- prometheus.MustNewConstMetric(l.mismatch, prometheus.GaugeValue, mismatch, st.Backend)

		if id := st.Stats.RepositoryID; id != "" {
			ch <- prometheus.MustNewConstMetric(l.repository, prometheus.GaugeValue, 1, st.Backend, id)
		}

		if !st.LoadedAt.IsZero() {
			ch <- prometheus.MustNewConstMetric(l.age, prometheus.GaugeValue, c.opts.Now().Sub(st.LoadedAt).Seconds(), st.Backend)
		}
	}
}
