package integration

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness"
	"github.com/backup-oracle/backup-oracle/repo"
	"github.com/backup-oracle/backup-oracle/repo/kopia/kopiademo"
)

const (
	benchNamespaces = 100
	benchPerNS      = 20 // 2,000 sources
	benchConc       = 16
	benchRounds     = 12 // alternating oracle / baseline rounds
	benchRound      = time.Second
	waveSize        = 200
	// targetHitRatio: the /exists hit path against a bare net/http handler (issue 12).
	targetHitRatio = 0.9
)

// BenchmarkKopiaService measures the real program on a repository of 2,000 sources: start to
// ready, /exists throughput on the hit path beside a minimal net/http server measured in the
// same run (the ratio is the median of the paired rounds' ratios), a wave of 200 concurrent
// lookups of PVCs without backups, and RSS. Run it with
// `make bench` (-benchtime 1x: each figure is one measured run, not b.N iterations).
func BenchmarkKopiaService(b *testing.B) {
	base := b.TempDir()
	data := filepath.Join(base, "data")
	require.NoError(b, os.MkdirAll(data, 0o755))
	require.NoError(b, os.WriteFile(filepath.Join(data, "file"), []byte("bench"), 0o644))

	id := repo.DefaultKopiaIdentity()
	backups := make([]kopiademo.Backup, 0, benchNamespaces*benchPerNS)

	for n := range benchNamespaces {
		for p := range benchPerNS {
			pvc := repo.PVC{Namespace: fmt.Sprintf("ns-%03d", n), Name: fmt.Sprintf("pvc-%02d.data", p)}
			backups = append(backups, kopiademo.Backup{Source: id.Source(pvc), Dir: data})
		}
	}

	repoPath := filepath.Join(base, "repository")
	writeStart := time.Now()
	require.NoError(b, kopiademo.Write(context.Background(), repoPath, kopiaPassword, base, backups))
	b.Logf("wrote %d sources in %s", len(backups), time.Since(writeStart).Round(time.Millisecond))

	baselineBin, err := harness.Build(b.TempDir(), "./integration/baseline")
	require.NoError(b, err)

	baseline := harness.StartOracle(b, harness.OracleOptions{Bin: baselineBin})

	// "off" is Go's default; 96MiB is the chart's default soft limit (config.goMemLimit).
	for _, limit := range []string{"off", "96MiB"} {
		b.Run("gomemlimit="+limit, func(b *testing.B) {
			measureService(b, repoPath, baseline.URL, limit)
		})
	}
}

func measureService(b *testing.B, repoPath, baselineURL, memLimit string) {
	start := time.Now()
	o := harness.StartOracle(b, harness.OracleOptions{Bin: oracleBin, Env: []string{
		"KOPIA_REPOSITORY_PATH=" + repoPath, "KOPIA_PASSWORD=" + kopiaPassword, "LOG_LEVEL=warn", "GOMEMLIMIT=" + memLimit,
	}})
	o.WaitReady(b, time.Minute)
	ready := time.Since(start)

	client := harness.Client(benchConc)

	hit := o.URL + "/exists/ns-042/pvc-07.data"
	require.Equal(b, "restore", decision(b, o, "/exists/ns-042/pvc-07.data"))

	harness.Throughput(client, hit, benchConc, 500*time.Millisecond) // warm up connections
	oracleRPS, baseRPS, ratio, failures := harness.CompareRatio(client, hit, baselineURL+"/", benchConc, benchRounds, benchRound)
	require.Zero(b, failures, "every request answered 200")

	urls := make([]string, waveSize)
	for i := range urls {
		urls[i] = fmt.Sprintf("%s/exists/wave-%03d/never-backed-up", o.URL, i)
	}

	lat, codes := harness.Wave(harness.Client(waveSize), urls)
	for i, c := range codes {
		require.Equal(b, http.StatusOK, c, "wave request %d must be authoritative", i)
	}

	rss, peak, err := harness.RSS(o.PID())
	require.NoError(b, err)

	fmt.Printf("\n/exists hit path, GOMEMLIMIT=%s: %.0f req/s, bare net/http handler in the same run %.0f req/s: ratio %.2f (median of %d paired rounds; target at least %.1f) %s\n",
		memLimit, oracleRPS, baseRPS, ratio, benchRounds, targetHitRatio, map[bool]string{true: "met", false: "MISSED"}[ratio >= targetHitRatio])

	b.ReportMetric(ready.Seconds(), "s-to-ready")
	b.ReportMetric(oracleRPS, "exists-req/s")
	b.ReportMetric(baseRPS, "baseline-req/s")
	b.ReportMetric(ratio, "ratio")
	b.ReportMetric(float64(harness.Percentile(lat, 50).Microseconds())/1000, "wave-p50-ms")
	b.ReportMetric(float64(harness.Percentile(lat, 99).Microseconds())/1000, "wave-p99-ms")
	b.ReportMetric(float64(harness.Percentile(lat, 100).Microseconds())/1000, "wave-max-ms")
	b.ReportMetric(float64(rss)/(1<<20), "rss-MiB")
	b.ReportMetric(float64(peak)/(1<<20), "peak-rss-MiB")
	o.Stop(b)
}
