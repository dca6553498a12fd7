package cache_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/cache"
	"github.com/backup-oracle/backup-oracle/repo"
)

// FindSource answers from named, or with namedErr.
func (f *fakeIndex) FindSource(_ context.Context, _ repo.PVC, src repo.KopiaSource) (repo.Finding, error) {
	fd := repo.Finding{Source: src.String()}
	if f.namedErr != nil {
		return fd, f.namedErr
	}

	for i := range f.named[src] {
		fd.Snapshots = append(fd.Snapshots, repo.Snapshot{ID: fmt.Sprintf("n%d", i), StartTime: time.Unix(int64(1000+i), 0)})
	}

	return fd, nil
}

func readyCache(t *testing.T, name string, idx *fakeIndex, metrics *cache.Metrics) *cache.Cache {
	t.Helper()

	loader := &fakeLoader{load: func(context.Context) (repo.Index, error) { return idx, nil }}
	c, err := cache.New(cache.Options{Backend: name, Loader: loader, NearMisses: true, Metrics: metrics, AllowEmpty: true})
	require.NoError(t, err)
	require.NoError(t, c.Refresh(context.Background()))

	return c
}

// TestRestoreSource: a query naming its source is answered from that source only, never Fresh:
// restore when a backend holds it (the newest backend wins, as for any PVC), unknown when none
// does or when a backend refuses it, with the point in time applied to it; memoised apart from
// the PVC's own answer, counted by decision.
func TestRestoreSource(t *testing.T) {
	named := repo.KopiaSource{UserName: "data-volsync", Host: "web", Path: "/data"}
	elsewhere := repo.KopiaSource{UserName: "other", Host: "web", Path: "/data"}

	reg := prometheus.NewRegistry()
	metrics := cache.NewMetrics(reg)

	// "data" has its own snapshots; the named source has 2 in green, 3 (newer) in blue.
	green := readyCache(t, "green", &fakeIndex{snaps: map[string]int{"data": 1}, named: map[repo.KopiaSource]int{named: 2},
		near: map[string][]string{"data": {"x"}}}, metrics)
	blue := readyCache(t, "blue", &fakeIndex{named: map[repo.KopiaSource]int{named: 3}}, metrics)
	g := cache.NewGroup([]*cache.Cache{green, blue}, cache.GroupOptions{Guards: repo.Guards{NearMiss: repo.NearMissDeny}, Metrics: metrics})
	ctx := context.Background()

	a := g.Lookup(ctx, repo.Query{PVC: data, Source: named})
	assert.Equal(t, repo.Restore, a.Decision, "%v", a.Reason)
	assert.Equal(t, "blue", a.Backend, "the backend with the newest snapshot of the named source")
	assert.Equal(t, named.String(), a.Source)
	assert.Equal(t, named.String(), a.RestoreSource)
	assert.Equal(t, 3, a.SnapshotCount)

	plain := g.Lookup(ctx, repo.Query{PVC: data})
	assert.Equal(t, repo.Restore, plain.Decision)
	assert.Equal(t, "data-backup", plain.Source, "the PVC's own answer is not the named one's (memo keys differ)")
	assert.Empty(t, plain.RestoreSource)

	a = g.Lookup(ctx, repo.Query{PVC: data, Source: named, PointInTime: repo.PointInTime{Previous: 1}})
	assert.Equal(t, repo.Restore, a.Decision, "%v", a.Reason)
	require.NotNil(t, a.Selected)
	assert.Equal(t, "blue", a.Backend)
	assert.Equal(t, "n1", a.Selected.ID, "previous 1 of blue's three snapshots of the named source (newer than green's n0)")

	a = g.Lookup(ctx, repo.Query{PVC: data, Source: named, PointInTime: repo.PointInTime{Previous: 5}})
	assert.Equal(t, repo.Unknown, a.Decision)
	require.ErrorIs(t, a.Reason, repo.ErrNotSelected)

	a = g.Lookup(ctx, repo.Query{PVC: data, Source: elsewhere})
	assert.Equal(t, repo.Unknown, a.Decision, "no backend holds it: never fresh")
	require.ErrorIs(t, a.Reason, repo.ErrSourceNotFound)
	assert.Contains(t, a.Reason.Error(), "other@web:/data")
	assert.Empty(t, a.NearMisses, "a named source is not searched for near misses")

	refused := readyCache(t, "refusing", &fakeIndex{namedErr: fmt.Errorf("kopia: %w: another namespace", repo.ErrForeignSource)}, metrics)
	a = cache.NewGroup([]*cache.Cache{green, refused}, cache.GroupOptions{Metrics: metrics}).Lookup(ctx, repo.Query{PVC: data, Source: named})
	assert.Equal(t, repo.Unknown, a.Decision, "a backend refusing the source makes the answer unknown")
	require.ErrorIs(t, a.Reason, repo.ErrForeignSource)

	assert.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP backup_oracle_restore_source_lookups_total Lookups of PVCs naming their source (annotation backup-oracle.io/restore-source, ?source=), by decision: restore or unknown (never fresh).
# TYPE backup_oracle_restore_source_lookups_total counter
backup_oracle_restore_source_lookups_total{decision="restore"} 2
backup_oracle_restore_source_lookups_total{decision="unknown"} 3
`), "backup_oracle_restore_source_lookups_total"))
}

// TestRestoreSourceNotLoaded: before the first refresh, the answer names the source asked for.
func TestRestoreSourceNotLoaded(t *testing.T) {
	named := repo.KopiaSource{UserName: "u", Host: "web", Path: "/data"}
	c, err := cache.New(cache.Options{Backend: "b", Loader: &fakeLoader{load: func(context.Context) (repo.Index, error) {
		return nil, errors.New("never")
	}}})
	require.NoError(t, err)

	a := cache.NewGroup([]*cache.Cache{c}, cache.GroupOptions{}).Lookup(context.Background(), repo.Query{PVC: data, Source: named})
	assert.Equal(t, repo.Unknown, a.Decision)
	assert.Equal(t, "u@web:/data", a.Source)
	assert.Equal(t, "u@web:/data", a.RestoreSource)
}
