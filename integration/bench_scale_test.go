package integration

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness"
	"github.com/backup-oracle/backup-oracle/repo"
	"github.com/backup-oracle/backup-oracle/repo/kopia/kopiademo"
)

// The scale of issue 12: the retention the policies set (24 hourly, 7 daily, 4 weekly, 2 monthly)
// keeps about 37 snapshots per PVC.
const (
	scaleNamespaces = 100
	scalePerNS      = 100 // 10,000 PVCs
	scaleRetained   = 37
	// chartGoMemLimit is the chart's config.goMemLimit: the figures are taken with it.
	chartGoMemLimit = "96MiB"
)

// Targets (issue 12).
const (
	targetSteadyMiB = 128
	targetPeakMiB   = 192
	targetReady     = 5 * time.Second
	targetRefresh   = time.Second
)

// scaleRepository returns a repository of scaleNamespaces×scalePerNS sources with retained
// snapshots each, written by kopiademo in one write session per round (as movers write their own
// sessions). It is kept in the temporary directory between runs (writing 370,000 snapshots takes
// about a minute here) and rebuilt when absent or incomplete.
func scaleRepository(b *testing.B, retained int) (path string, manifests int) {
	b.Helper()

	dir := filepath.Join(os.TempDir(), fmt.Sprintf("backup-oracle-bench-kopia-%dx%d-v1", scaleNamespaces*scalePerNS, retained))
	path = filepath.Join(dir, "repository")
	done := filepath.Join(dir, "complete")
	manifests = scaleNamespaces * scalePerNS * retained

	if _, err := os.Stat(done); err == nil {
		return path, manifests
	}

	require.NoError(b, os.RemoveAll(dir))
	require.NoError(b, os.MkdirAll(filepath.Join(dir, "data"), 0o755))
	require.NoError(b, os.WriteFile(filepath.Join(dir, "data", "db"), []byte("bench"), 0o644))

	id := repo.DefaultKopiaIdentity()
	start := time.Now()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

	for round := range retained {
		backups := make([]kopiademo.Backup, 0, scaleNamespaces*scalePerNS)

		for n := range scaleNamespaces {
			for p := range scalePerNS {
				pvc := repo.PVC{Namespace: fmt.Sprintf("ns-%03d", n), Name: fmt.Sprintf("pvc-%03d.data", p)}
				backups = append(backups, kopiademo.Backup{Source: id.Source(pvc), Dir: filepath.Join(dir, "data"),
					Time: base.Add(time.Duration(round) * time.Hour)})
			}
		}

		require.NoError(b, kopiademo.Write(context.Background(), path, kopiaPassword, b.TempDir(), backups))
	}

	require.NoError(b, os.WriteFile(done, nil, 0o644))
	b.Logf("wrote %d snapshots in %d sessions in %s", manifests, retained, time.Since(start).Round(time.Second))

	return path, manifests
}

// scaleFigures are one run of the real program on a scale repository.
type scaleFigures struct {
	manifests           int
	memLimit            string
	ready, readyCPU     time.Duration
	steadyMiB, peakMiB  float64
	heapMiB, indexMiB   float64
	refresh             time.Duration
	refreshAllocKiB     float64
	refreshesMeasured   float64
	snapshotsRestorable float64
}

// BenchmarkKopiaScale runs the real program, with the chart's GOMEMLIMIT, on a repository of
// 10,000 PVCs × 37 snapshots (370,000 manifests, 37 write sessions) and on one of 10,000 × 1, and
// prints the scale table of README.md: start to ready, steady and peak RSS, heap and the index's
// own estimate, and what a refresh that finds nothing new costs (duration and allocations, from
// the program's own metrics over 10 s of 1-second refreshes; the allocations include the
// scrapes'). The per-snapshot cost is the heap difference between the two repositories.
//
//	go test -run '^$' -bench KopiaScale -benchtime 1x -timeout 30m ./integration/   # part of make bench
func BenchmarkKopiaScale(b *testing.B) {
	small, _ := scaleRepository(b, 1)
	large, manifests := scaleRepository(b, scaleRetained)

	var rows []scaleFigures

	for _, run := range []struct {
		path      string
		manifests int
		limit     string
	}{
		{small, scaleNamespaces * scalePerNS, chartGoMemLimit},
		{large, manifests, chartGoMemLimit},
		{large, manifests, "off"},
	} {
		b.Run(fmt.Sprintf("manifests=%d/gomemlimit=%s", run.manifests, run.limit), func(b *testing.B) {
			f := measureScale(b, run.path, run.manifests, run.limit)
			rows = append(rows, f)

			b.ReportMetric(f.ready.Seconds(), "s-to-ready")
			b.ReportMetric(f.readyCPU.Seconds(), "cpu-s-to-ready")
			b.ReportMetric(f.steadyMiB, "steady-rss-MiB")
			b.ReportMetric(f.peakMiB, "peak-rss-MiB")
			b.ReportMetric(f.heapMiB, "heap-MiB")
			b.ReportMetric(f.refresh.Seconds()*1000, "refresh-ms")
			b.ReportMetric(f.refreshAllocKiB, "refresh-alloc-KiB")
		})
	}

	if len(rows) == 3 {
		printScaleTable(rows)
	}
}

func measureScale(b *testing.B, path string, manifests int, limit string) scaleFigures {
	start := time.Now()
	o := harness.StartOracle(b, harness.OracleOptions{Bin: oracleBin, Env: []string{
		"KOPIA_REPOSITORY_PATH=" + path, "KOPIA_PASSWORD=" + kopiaPassword, "LOG_LEVEL=warn", "GOMEMLIMIT=" + limit,
		"REFRESH_INTERVAL=1s", "MAX_INDEX_AGE=2m", "REFRESH_TIMEOUT=2m", "STATE_DIR=" + b.TempDir(),
	}})
	o.WaitReady(b, 5*time.Minute)

	f := scaleFigures{manifests: manifests, memLimit: limit, ready: time.Since(start)}

	cpu, err := harness.CPUTime(o.PID())
	require.NoError(b, err)

	f.readyCPU = cpu

	r := o.Get(b, "/exists/ns-042/pvc-007.data")
	require.Equal(b, http.StatusOK, r.Code, r.Body)
	require.Equal(b, "restore", r.Body["decision"])
	require.EqualValues(b, manifests/(scaleNamespaces*scalePerNS), r.Body["snapshotCount"])

	time.Sleep(3 * time.Second) // the first refreshes after the load

	metric := func(name string, labels ...string) float64 { return o.Metric(b, name, labels...) }
	n0, d0, a0 := metric("backup_oracle_index_refreshes_total", `result="success"`),
		metric("backup_oracle_index_refresh_duration_seconds_sum"), metric("go_memstats_alloc_bytes_total")

	time.Sleep(10 * time.Second)

	n1, d1, a1 := metric("backup_oracle_index_refreshes_total", `result="success"`),
		metric("backup_oracle_index_refresh_duration_seconds_sum"), metric("go_memstats_alloc_bytes_total")
	require.Greater(b, n1, n0, "refreshes ran")

	f.refreshesMeasured = n1 - n0
	f.refresh = time.Duration((d1 - d0) / (n1 - n0) * float64(time.Second))
	f.refreshAllocKiB = (a1 - a0) / (n1 - n0) / 1024
	f.heapMiB = metric("go_memstats_heap_inuse_bytes") / (1 << 20)
	f.indexMiB = metric("backup_oracle_index_bytes") / (1 << 20)
	f.snapshotsRestorable = metric("backup_oracle_index_snapshots")

	rss, peak, err := harness.RSS(o.PID())
	require.NoError(b, err)

	f.steadyMiB, f.peakMiB = float64(rss)/(1<<20), float64(peak)/(1<<20)

	require.Equal(b, http.StatusOK, o.Get(b, "/readyz").Code)
	o.Stop(b)

	return f
}

func printScaleTable(rows []scaleFigures) {
	var s strings.Builder

	mark := func(ok bool) string {
		if ok {
			return "met"
		}

		return "MISSED"
	}

	fmt.Fprintf(&s, "\nKopia at scale (real program, REFRESH_INTERVAL=1s; targets of issue 12 for 370,000 manifests with the chart's GOMEMLIMIT=%s)\n", chartGoMemLimit)
	fmt.Fprintf(&s, "| manifests | GOMEMLIMIT | ready (CPU used until then) | steady RSS | peak RSS | Go heap | index estimate | no-change refresh | allocated per refresh |\n|---|---|---|---|---|---|---|---|---|\n")

	for _, r := range rows {
		fmt.Fprintf(&s, "| %d | %s | %.2f s (%.2f s) | %.0f MiB | %.0f MiB | %.0f MiB | %.1f MiB | %.0f ms | %.0f KiB |\n",
			r.manifests, r.memLimit, r.ready.Seconds(), r.readyCPU.Seconds(), r.steadyMiB, r.peakMiB, r.heapMiB, r.indexMiB, float64(r.refresh.Microseconds())/1000, r.refreshAllocKiB)
	}

	small, large := rows[0], rows[1]
	perSnapshot := (large.heapMiB - small.heapMiB) * (1 << 20) / float64(large.manifests-small.manifests)

	fmt.Fprintf(&s, "per retained snapshot: %.0f bytes of heap (difference between the two repositories)\n", perSnapshot)
	fmt.Fprintf(&s, "targets at %d manifests: ready %.2f s < %s %s; steady %.0f MiB < %d MiB %s; peak %.0f MiB < %d MiB %s; refresh %.0f ms < %s %s\n",
		large.manifests, large.ready.Seconds(), targetReady, mark(large.ready < targetReady),
		large.steadyMiB, targetSteadyMiB, mark(large.steadyMiB < targetSteadyMiB),
		large.peakMiB, targetPeakMiB, mark(large.peakMiB < targetPeakMiB),
		float64(large.refresh.Microseconds())/1000, targetRefresh, mark(large.refresh < targetRefresh))

	fmt.Print(s.String())
}
