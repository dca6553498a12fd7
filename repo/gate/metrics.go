package gate

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/backup-oracle/backup-oracle/repo"
)

// Metric names (the chart's PrometheusRule and dashboard query them; a chart test checks they
// are exported).
const (
	StateMetric     = "backup_oracle_gate_state"
	LastCheckMetric = "backup_oracle_gate_last_check_timestamp_seconds"
	UncoveredMetric = "backup_oracle_excluded_namespace_backups"
)

// metrics are the gate's series: the state (one series per state, 1 for the current one), the
// last check's time, and, computed at each scrape from the inventory, the backup sources of
// every namespace the policies exclude.
type metrics struct {
	state     *prometheus.GaugeVec
	lastCheck prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, g *Gate) *metrics {
	m := &metrics{
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: StateMetric,
			Help: "The gate self-test's state: 1 for the current one (armed, refusing, disarmed, unchecked or off), 0 for the others.",
		}, []string{"state"}),
		lastCheck: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: LastCheckMetric,
			Help: "When the last gate self-test started (Unix seconds); 0 before the first.",
		}),
	}

	if reg != nil {
		reg.MustRegister(m.state, m.lastCheck, uncoveredCollector{g: g})
	}

	return m
}

func (m *metrics) set(st repo.GateStatus) {
	for _, s := range repo.GateStates() {
		v := 0.0
		if s == st.State {
			v = 1
		}

		m.state.WithLabelValues(string(s)).Set(v)
	}

	if !st.LastCheck.IsZero() {
		m.lastCheck.Set(float64(st.LastCheck.UnixNano()) / 1e9)
	}
}

// uncoveredCollector exports backup_oracle_excluded_namespace_backups{pvc_namespace}, one series
// per excluded namespace holding backups (none when every namespace with backups is checked). The
// label is pvc_namespace, as on the per-backup series: Prometheus' target label namespace (the
// oracle's own) would otherwise rename it.
type uncoveredCollector struct{ g *Gate }

var uncoveredDesc = prometheus.NewDesc(UncoveredMetric, //nolint:gochecknoglobals // a constant descriptor
	"Backup sources stored for a namespace the policies exclude: its PVCs are never checked, so they start empty although backups exist.",
	[]string{"pvc_namespace"}, nil)

func (c uncoveredCollector) Describe(ch chan<- *prometheus.Desc) { ch <- uncoveredDesc }

func (c uncoveredCollector) Collect(ch chan<- prometheus.Metric) {
	for _, u := range c.g.uncovered() {
		ch <- prometheus.MustNewConstMetric(uncoveredDesc, prometheus.GaugeValue, float64(u.Sources), u.Namespace)
	}
}
