package cache_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/cache"
	"github.com/backup-oracle/backup-oracle/repo"
)

// TestLookupAtIsMemoisedPerPointInTime: the memo never hands the answer of one point in time to
// another, and a point in time that selects nothing is unknown, not fresh.
func TestLookupAtIsMemoisedPerPointInTime(t *testing.T) {
	clk := &clock{t: time.Unix(1_000_000, 0)}

	var finds atomic.Int32

	idx := &fakeIndex{find: func(_ context.Context, pvc repo.PVC) (repo.Finding, error) {
		finds.Add(1)

		return repo.Finding{Source: "s", Snapshots: []repo.Snapshot{
			{ID: "old", StartTime: time.Unix(1000, 0)}, {ID: "new", StartTime: time.Unix(2000, 0)},
		}}, nil
	}}
	c := newCache(t, &fakeLoader{load: func(context.Context) (repo.Index, error) { return idx, nil }}, clk, nil)
	require.NoError(t, c.Refresh(context.Background()))

	cases := []struct {
		p        repo.PointInTime
		decision repo.Decision
		selected string
	}{
		{repo.PointInTime{}, repo.Restore, "new"},
		{repo.PointInTime{Previous: 1}, repo.Restore, "old"},
		{repo.PointInTime{AsOf: time.Unix(1500, 0)}, repo.Restore, "old"},
		{repo.PointInTime{AsOf: time.Unix(1999, 999_000_000)}, repo.Restore, "old"},
		{repo.PointInTime{AsOf: time.Unix(500, 0)}, repo.Unknown, ""},
		{repo.PointInTime{Previous: 2}, repo.Unknown, ""},
	}

	for round := range 2 { // the second round is answered from the memo
		for _, tc := range cases {
			a := c.LookupAt(context.Background(), data, tc.p)
			assert.Equal(t, tc.decision, a.Decision, "round %d %s", round, tc.p)
			assert.Equal(t, tc.p, a.PointInTime)

			if tc.selected != "" {
				require.NotNil(t, a.Selected)
				assert.Equal(t, tc.selected, a.Selected.ID, "round %d %s", round, tc.p)
			} else {
				assert.ErrorIs(t, a.Reason, repo.ErrNotSelected)
			}
		}
	}

	assert.Equal(t, int32(len(cases)), finds.Load(), "one computation per point in time, then the memo")
	assert.Equal(t, "new", c.Lookup(context.Background(), data).Selected.ID, "Lookup is the newest")
}

func stored(source, ns, name string, newest time.Time) repo.Stored {
	s := newest
	return repo.Stored{Source: source, PVC: repo.PVC{Namespace: ns, Name: name}, Snapshots: 1, Newest: &repo.Snapshot{ID: source, StartTime: s}}
}

func TestInventoryAndBackupMetrics(t *testing.T) {
	clk := &clock{t: time.Unix(1_000_000, 0)}

	var fail atomic.Bool

	idx := &fakeIndex{snaps: map[string]int{"a": 1}, stored: []repo.Stored{
		stored("a-backup@web:/data", "web", "a", time.Unix(900_000, 0)),
		stored("b-backup@web:/data", "web", "b", time.Unix(800_000, 0)),
		stored("odd@web:/elsewhere", "web", "", time.Unix(950_000, 0)),
		{Source: "broken@web:/data", PVC: repo.PVC{Namespace: "web", Name: "broken"}, Err: repo.ErrUnverifiable},
	}}
	load := func(context.Context) (repo.Index, error) {
		if fail.Load() {
			return nil, errors.New("down")
		}

		return idx, nil
	}

	reg := prometheus.NewRegistry()
	c, err := cache.New(cache.Options{Backend: "fake", Loader: &fakeLoader{load: load}, MaxIndexAge: time.Minute, Now: clk.now,
		Metrics: cache.NewMetricsWith(reg, cache.MetricsOptions{BackupSeriesLimit: 2})})
	require.NoError(t, err)

	inv := c.Inventory()
	require.ErrorIs(t, inv.Err, repo.ErrNotLoaded)
	assert.Empty(t, inv.Stored)

	require.NoError(t, c.Refresh(context.Background()))

	inv = c.Inventory()
	require.NoError(t, inv.Err)
	assert.Equal(t, "fake", inv.Backend)
	assert.Len(t, inv.Stored, 4)
	assert.Equal(t, clk.now(), inv.IndexTime)

	// Limit 2 of 3 sources with snapshots: the stalest two (b, then a) are kept.
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP backup_oracle_backup_newest_snapshot_timestamp_seconds Unix start time of the newest complete snapshot of each backup source of the authoritative indexes (pvc_namespace, pvc: the PVC it maps back to, empty when none; not namespace, which Prometheus gives the scrape target). Bounded: past the limit the stalest are kept.
# TYPE backup_oracle_backup_newest_snapshot_timestamp_seconds gauge
backup_oracle_backup_newest_snapshot_timestamp_seconds{backend="fake",pvc="a",pvc_namespace="web",source="a-backup@web:/data"} 900000
backup_oracle_backup_newest_snapshot_timestamp_seconds{backend="fake",pvc="b",pvc_namespace="web",source="b-backup@web:/data"} 800000
# HELP backup_oracle_backup_series_omitted Backup sources left out of backup_oracle_backup_newest_snapshot_timestamp_seconds by its series limit (the freshest are left out).
# TYPE backup_oracle_backup_series_omitted gauge
backup_oracle_backup_series_omitted 1
# HELP backup_oracle_backups Backup sources with at least one complete snapshot in the backend's index; absent while the backend is not authoritative.
# TYPE backup_oracle_backups gauge
backup_oracle_backups{backend="fake"} 3
`), "backup_oracle_backup_newest_snapshot_timestamp_seconds", "backup_oracle_backup_series_omitted", "backup_oracle_backups"))

	fail.Store(true)
	require.Error(t, c.Refresh(context.Background()))

	inv = c.Inventory()
	require.Error(t, inv.Err, "a failed refresh makes the inventory unknown")
	assert.Empty(t, inv.Stored)

	n, err := testutil.GatherAndCount(reg, "backup_oracle_backup_newest_snapshot_timestamp_seconds", "backup_oracle_backups")
	require.NoError(t, err)
	assert.Zero(t, n, "no series from a backend that is not authoritative")

	assert.Len(t, cache.NewGroup([]*cache.Cache{c, c}, cache.GroupOptions{}).Inventory(), 2)
}

func TestBackupSeriesLimitNegativeExportsNone(t *testing.T) {
	clk := &clock{t: time.Unix(1_000_000, 0)}
	idx := &fakeIndex{snaps: map[string]int{"a": 1}, stored: []repo.Stored{stored("a", "web", "a", time.Unix(900_000, 0))}}

	reg := prometheus.NewRegistry()
	c, err := cache.New(cache.Options{Backend: "fake", Loader: &fakeLoader{load: func(context.Context) (repo.Index, error) { return idx, nil }},
		Now: clk.now, Metrics: cache.NewMetricsWith(reg, cache.MetricsOptions{BackupSeriesLimit: -1})})
	require.NoError(t, err)
	require.NoError(t, c.Refresh(context.Background()))

	n, err := testutil.GatherAndCount(reg, "backup_oracle_backup_newest_snapshot_timestamp_seconds")
	require.NoError(t, err)
	assert.Zero(t, n)
	assert.Equal(t, 1.0, testutil.ToFloat64(collectorFor(t, reg, "backup_oracle_backup_series_omitted")))
}

// collectorFor gathers one single-series metric as a collector testutil can read.
func collectorFor(t *testing.T, g prometheus.Gatherer, name string) prometheus.Collector {
	t.Helper()

	mfs, err := g.Gather()
	require.NoError(t, err)

	for _, mf := range mfs {
		if mf.GetName() == name {
			g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "copy"})
			g.Set(mf.GetMetric()[0].GetGauge().GetValue())

			return g
		}
	}

	t.Fatalf("%s not gathered", name)

	return nil
}
