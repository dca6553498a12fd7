package cutover

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metric names (README, "Blue/green migration"; the chart's PodMonitor scrapes the Job while it
// runs).
const (
	PVCsMetric     = "backup_oracle_cutover_final_backup_pvcs"
	LastPassMetric = "backup_oracle_cutover_final_backup_last_pass_timestamp_seconds"
)

// metrics are the runner's series: the PVCs per state after the last pass, and its time.
type metrics struct {
	pvcs     *prometheus.GaugeVec
	lastPass prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		pvcs: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: PVCsMetric,
			Help: "Backup-labelled PVCs of the colour being left, per state of their final backup after the last pass (done, waiting, mounted, failed).",
		}, []string{"state"}),
		lastPass: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: LastPassMetric,
			Help: "When the cutover's last pass over the PVCs was made (Unix seconds); 0 before the first.",
		}),
	}

	for _, s := range States() {
		m.pvcs.WithLabelValues(string(s))
	}

	if reg != nil {
		reg.MustRegister(m.pvcs, m.lastPass)
	}

	return m
}

func (m *metrics) set(r Report) {
	for _, s := range States() {
		m.pvcs.WithLabelValues(string(s)).Set(float64(r.Count(s)))
	}

	m.lastPass.Set(float64(r.Time.UnixNano()) / 1e9)
}
