package cache

import (
	"cmp"
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/backup-oracle/backup-oracle/repo"
)

// DefaultBackupSeriesLimit bounds the per-backup series of /metrics (MetricsOptions).
const DefaultBackupSeriesLimit = 1000

// MetricsOptions configure NewMetricsWith.
type MetricsOptions struct {
	// BackupSeriesLimit bounds backup_oracle_backup_newest_snapshot_timestamp_seconds: one series
	// per backup source, at most this many. Past it, the stalest sources (oldest newest
	// snapshot) are kept, since those are the ones a staleness alert is about, and the others
	// are counted in backup_oracle_backup_series_omitted. Zero means DefaultBackupSeriesLimit;
	// negative exports no per-backup series at all (only the counts).
	BackupSeriesLimit int
}

// backupsCollector exports, at scrape time, the newest snapshot of every backup source the
// authoritative indexes hold: the gauge a "no backup for 26 hours" alert uses.
type backupsCollector struct {
	newest, omitted, count *prometheus.Desc
	limit                  int
	live                   *liveCollector
}

func newBackupsCollector(limit int, live *liveCollector) *backupsCollector {
	return &backupsCollector{
		newest: prometheus.NewDesc("backup_oracle_backup_newest_snapshot_timestamp_seconds",
			"Unix start time of the newest complete snapshot of each backup source of the authoritative indexes (pvc_namespace, pvc: the PVC it maps back to, empty when none; not namespace, which Prometheus gives the scrape target). "+
				"Bounded: past the limit the stalest are kept.", []string{"backend", "pvc_namespace", "pvc", "source"}, nil),
		omitted: prometheus.NewDesc("backup_oracle_backup_series_omitted",
			"Backup sources left out of backup_oracle_backup_newest_snapshot_timestamp_seconds by its series limit (the freshest are left out).", nil, nil),
		count: prometheus.NewDesc("backup_oracle_backups",
			"Backup sources with at least one complete snapshot in the backend's index; absent while the backend is not authoritative.", []string{"backend"}, nil),
		limit: limit,
		live:  live,
	}
}

func (b *backupsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- b.newest
	ch <- b.omitted
	ch <- b.count
}

type backupSeries struct {
	backend string
	stored  repo.Stored
}

func (b *backupsCollector) Collect(ch chan<- prometheus.Metric) {
	var all []backupSeries

	for _, c := range b.live.list() {
		inv := c.Inventory()
		if inv.Err != nil {
			continue // not authoritative: no series rather than a misleading one (the index alerts fire)
		}

		n := 0

		for _, s := range inv.Stored {
			if s.Newest != nil {
				all = append(all, backupSeries{backend: inv.Backend, stored: s})
				n++
			}
		}

		ch <- prometheus.MustNewConstMetric(b.count, prometheus.GaugeValue, float64(n), inv.Backend)
	}

	// Stalest first: those are kept when the limit cuts.
	slices.SortFunc(all, func(x, y backupSeries) int {
		if c := x.stored.Newest.StartTime.Compare(y.stored.Newest.StartTime); c != 0 {
			return c
		}

		return cmp.Or(cmp.Compare(x.backend, y.backend), cmp.Compare(x.stored.Source, y.stored.Source))
	})

	keep := min(len(all), max(b.limit, 0))

	for _, s := range all[:keep] {
		ch <- prometheus.MustNewConstMetric(b.newest, prometheus.GaugeValue, float64(s.stored.Newest.StartTime.UnixNano())/1e9,
			s.backend, s.stored.PVC.Namespace, s.stored.PVC.Name, s.stored.Source)
	}

	ch <- prometheus.MustNewConstMetric(b.omitted, prometheus.GaugeValue, float64(len(all)-keep))
}
