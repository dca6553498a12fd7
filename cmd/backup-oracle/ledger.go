package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/backup-oracle/backup-oracle/repo/ledger"
)

// reloadLedger re-reads the expected-backups ledger every interval, like the Secret files.
func reloadLedger(ctx context.Context, l *ledger.File, every time.Duration, logger *slog.Logger) {
	prev := l.Err()

	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}

		err := l.Reload()
		switch {
		case err != nil && (prev == nil || err.Error() != prev.Error()):
			logger.Warn("expected-backups ledger unusable: no PVC is answered fresh until it is fixed", "err", err)
		case err == nil && prev != nil:
			logger.Info("expected-backups ledger usable again", "pvcs", l.Len())
		}

		prev = err
	}
}

// ledgerCollector exports the ledger's state at scrape time.
type ledgerCollector struct {
	f              *ledger.File
	entries, error *prometheus.Desc
}

func newLedgerCollector(f *ledger.File) ledgerCollector {
	return ledgerCollector{
		f: f,
		entries: prometheus.NewDesc("backup_oracle_expected_backups",
			"PVCs listed in the expected-backups ledger (0 when it cannot be read).", nil, nil),
		error: prometheus.NewDesc("backup_oracle_expected_backups_error",
			"1 when the expected-backups ledger cannot be read or parsed (then no PVC is answered fresh), else 0.", nil, nil),
	}
}

func (c ledgerCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.entries; ch <- c.error }

func (c ledgerCollector) Collect(ch chan<- prometheus.Metric) {
	bad := 0.0
	if c.f.Err() != nil {
		bad = 1
	}

	ch <- prometheus.MustNewConstMetric(c.entries, prometheus.GaugeValue, float64(c.f.Len()))
	ch <- prometheus.MustNewConstMetric(c.error, prometheus.GaugeValue, bad)
}
