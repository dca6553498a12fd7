package integration

import (
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/cache"
	"github.com/backup-oracle/backup-oracle/integration/harness"
	"github.com/backup-oracle/backup-oracle/repo"
	"github.com/backup-oracle/backup-oracle/repo/kopia"
	"github.com/backup-oracle/backup-oracle/repo/kopia/kopiademo"
	"github.com/backup-oracle/backup-oracle/repo/restic"
)

// S3 request prices of AWS S3 Standard (us-east-1), dollars per 1,000 requests.
const (
	priceListPer1000 = 0.005  // LIST, PUT, COPY, POST
	priceGetPer1000  = 0.0004 // GET and the others
)

const (
	s3BenchPVCs     = 1000
	s3BenchPerNS    = 50
	defaultInterval = cache.DefaultRefreshInterval // REFRESH_INTERVAL's default
)

// clock is a settable time source for the fleet refresh of restic.
type benchClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *benchClock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *benchClock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// requestHour counts what one hour of refreshes at the default REFRESH_INTERVAL (30 s, 120
// refreshes) sends to S3, counted at a proxy in front of the server: load is called for each
// refresh with the simulated time advanced by one interval (restic's fleet refresh follows that
// clock; kopia has no time-dependent behaviour). The first load (connecting, reading everything)
// is not counted: the figure is the steady state.
func requestHour(b *testing.B, proxy *harness.FaultProxy, clk *benchClock, load func() error) (perHour int64) {
	b.Helper()

	require.NoError(b, load())

	before := proxy.Requests()
	refreshes := int(time.Hour / defaultInterval)

	for range refreshes {
		clk.add(defaultInterval)
		require.NoError(b, load())
	}

	return proxy.Requests() - before
}

// BenchmarkS3Requests measures the S3 requests a replica sends per hour at 1,000 PVCs with the
// default settings: restic-s3 (one repository per PVC, no password: steady state sends no GET),
// before (every refresh lists every repository) and after (fleet listed every 10 minutes,
// one request per refresh in between, one listing per lookup), and kopia-s3 (1,000 sources, 37
// write sessions). Requests are counted at a proxy in front of versitygw.
//
//	go test -run '^$' -bench S3Requests -benchtime 1x ./integration/   # part of make bench
func BenchmarkS3Requests(b *testing.B) {
	s3 := harness.StartS3(b)
	proxy := harness.StartFaultProxy(b, s3.URL)
	clk := &benchClock{t: time.Unix(1_000_000, 0)}

	resticFleet(b, s3, s3.CreateBucket("volsync"), s3BenchPVCs)

	resticOpts := func(fleetInterval time.Duration) restic.Options {
		return restic.Options{
			S3: restic.S3Options{S3Config: repo.S3Config{
				Endpoint: proxy.URL, Bucket: "volsync", AccessKey: repo.Secret(s3.AccessKey), SecretKey: repo.Secret(s3.SecretKey),
			}},
			FleetRefreshInterval: fleetInterval, Now: clk.now,
		}
	}

	type row struct {
		name, unit string
		perHour    int64
		note       string
	}

	var rows []row

	for _, c := range []struct {
		name     string
		interval time.Duration
		note     string
	}{
		{"restic-s3, every refresh lists the fleet (before)", 0, "RESTIC_FLEET_REFRESH_INTERVAL=0"},
		{"restic-s3, default settings", restic.DefaultS3FleetRefreshInterval, "fleet every 10m, 1 request per refresh in between"},
	} {
		unit := map[bool]string{true: "restic-before-req/h", false: "restic-req/h"}[c.interval == 0]
		r, err := restic.New(resticOpts(c.interval))
		require.NoError(b, err)

		n := requestHour(b, proxy, clk, func() error { _, err := r.Load(context.Background()); return err })
		rows = append(rows, row{c.name, unit, n, c.note})
		_ = r.Close(context.Background())
	}

	// A lookup between fleet listings: one listing of that PVC's snapshots/.
	r, err := restic.New(resticOpts(restic.DefaultS3FleetRefreshInterval))
	require.NoError(b, err)

	idx, err := r.Load(context.Background())
	require.NoError(b, err)

	before := proxy.Requests()
	f, err := idx.Find(context.Background(), repo.PVC{Namespace: "ns-07", Name: "pvc-0350"})
	require.NoError(b, err)
	require.Len(b, f.Snapshots, 1)

	perLookup := proxy.Requests() - before
	_ = r.Close(context.Background())

	// kopia-s3: 1,000 sources, 37 sessions, read through the kind as the program builds it.
	kopiaBucket := s3.CreateBucket("kopia")
	kopiaS3Repository(b, s3, kopiaBucket, s3BenchPVCs, scaleRetained)

	k := openKind(b, kopia.KindS3, map[string]string{
		"s3-endpoint": proxy.URL, "s3-bucket": kopiaBucket, "kopia-password-file": secretFile(b, kopiaPassword),
		"s3-access-key-file": secretFile(b, s3.AccessKey), "s3-secret-key-file": secretFile(b, s3.SecretKey),
	})
	n := requestHour(b, proxy, clk, func() error { _, err := k.Load(context.Background()); return err })
	rows = append(rows, row{"kopia-s3, default settings", "kopia-req/h", n, "format blob, index blob listings"})

	var s strings.Builder

	fmt.Fprintf(&s, "\nS3 requests of one replica at %d PVCs, REFRESH_INTERVAL=%s (counted at a proxy; cost at AWS S3 Standard list prices, LIST $%.3f and GET $%.4f per 1,000)\n",
		s3BenchPVCs, defaultInterval, priceListPer1000, priceGetPer1000)
	fmt.Fprintf(&s, "| backend | requests per hour | per day | cost per day (all priced as LIST) | notes |\n|---|---|---|---|---|\n")

	for _, r := range rows {
		fmt.Fprintf(&s, "| %s | %d | %d | $%.2f | %s |\n", r.name, r.perHour, r.perHour*24, float64(r.perHour*24)/1000*priceListPer1000, r.note)
		b.ReportMetric(float64(r.perHour), r.unit)
	}

	cut := float64(rows[0].perHour) / float64(rows[1].perHour)
	fmt.Fprintf(&s, "restic-s3: %.1fx fewer requests (target: at least 10x) %s; each lookup adds %d request(s)\n",
		cut, map[bool]string{true: "met", false: "MISSED"}[cut >= 10], perLookup)
	fmt.Print(s.String())

	b.ReportMetric(cut, "restic-cut-x")
	b.ReportMetric(float64(perLookup), "restic-req/lookup")
}

// resticFleet writes one restic repository with the real CLI and copies it under
// <bucket>/ns-XX/pvc-XXXX for n PVCs (versitygw's posix backend stores objects as files).
func resticFleet(b *testing.B, s3 *harness.S3Server, bucket string, n int) []repo.PVC {
	b.Helper()

	cli := harness.NewResticCLI(b, s3)
	template := "template/ns/pvc"
	cli.Init("s3:"+s3.URL+"/"+bucket+"/"+template, resticPassword, "2")
	cli.Backup("s3:"+s3.URL+"/"+bucket+"/"+template, resticPassword)

	src := filepath.Join(s3.Root, bucket, filepath.FromSlash(template))
	pvcs := make([]repo.PVC, n)

	for i := range pvcs {
		pvcs[i] = repo.PVC{Namespace: fmt.Sprintf("ns-%02d", i/s3BenchPerNS), Name: fmt.Sprintf("pvc-%04d", i)}
		dst := filepath.Join(s3.Root, bucket, pvcs[i].Namespace, pvcs[i].Name)

		require.NoError(b, filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}

			rel, _ := filepath.Rel(src, p)
			if d.IsDir() {
				return os.MkdirAll(filepath.Join(dst, rel), 0o755)
			}

			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}

			return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
		}))
	}

	require.NoError(b, os.RemoveAll(filepath.Join(s3.Root, bucket, "template")))

	return pvcs
}

// kopiaS3Repository writes n sources with retained snapshots each, one write session per round,
// into bucket with the kopia library.
func kopiaS3Repository(b *testing.B, s3 *harness.S3Server, bucket string, n, retained int) {
	b.Helper()

	st, err := kopia.NewS3(repo.S3Config{Endpoint: s3.Endpoint, Bucket: bucket,
		AccessKey: repo.Secret(s3.AccessKey), SecretKey: repo.Secret(s3.SecretKey)}).Open(context.Background())
	require.NoError(b, err)

	data := filepath.Join(b.TempDir(), "data")
	require.NoError(b, os.MkdirAll(data, 0o755))
	require.NoError(b, os.WriteFile(filepath.Join(data, "db"), []byte("bench"), 0o644))

	id := repo.DefaultKopiaIdentity()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

	for round := range retained {
		backups := make([]kopiademo.Backup, n)
		for i := range backups {
			pvc := repo.PVC{Namespace: fmt.Sprintf("ns-%02d", i/s3BenchPerNS), Name: fmt.Sprintf("pvc-%04d", i)}
			backups[i] = kopiademo.Backup{Source: id.Source(pvc), Dir: data, Time: base.Add(time.Duration(round) * time.Hour)}
		}

		require.NoError(b, kopiademo.WriteTo(context.Background(), st, kopiaPassword, b.TempDir(), backups))
	}
}

// BenchmarkResticColdStart measures, on a fleet of 1,000 restic repositories on S3 with the
// password set (every key derived with scrypt, 2 at a time), how long after the program starts a
// PVC asked about right after readiness gets its first authoritative answer: its lookup puts its
// repository first in the verification queue.
//
//	go test -run '^$' -bench ResticColdStart -benchtime 1x ./integration/   # part of make bench
func BenchmarkResticColdStart(b *testing.B) {
	s3 := harness.StartS3(b)
	pvcs := resticFleet(b, s3, s3.CreateBucket("volsync"), s3BenchPVCs)

	start := time.Now()
	o := harness.StartOracle(b, harness.OracleOptions{Bin: oracleBin, Env: []string{
		"BACKEND_TYPE=restic-s3", "S3_ENDPOINT=" + s3.URL, "S3_BUCKET=volsync", "S3_ACCESS_KEY=" + s3.AccessKey,
		"S3_SECRET_KEY=" + s3.SecretKey, "RESTIC_PASSWORD=" + resticPassword, "LOG_LEVEL=warn", "GOMEMLIMIT=" + chartGoMemLimit,
	}})
	o.WaitReady(b, 2*time.Minute)

	ready := time.Since(start)
	asked := time.Now()
	path := "/exists/" + pvcs[len(pvcs)-1].Namespace + "/" + pvcs[len(pvcs)-1].Name

	var (
		calls int
		first time.Duration
	)

	for {
		calls++

		r := o.Get(b, path)
		if r.Code == http.StatusOK {
			require.Equal(b, "restore", r.Body["decision"])

			first = time.Since(asked)

			break
		}

		require.Less(b, time.Since(asked), 5*time.Minute, "no authoritative answer: %v", r.Body)
		time.Sleep(100 * time.Millisecond)
	}

	_, peak, err := harness.RSS(o.PID())
	require.NoError(b, err)

	fmt.Printf("\nrestic-s3 cold start, %d repositories, password set, GOMEMLIMIT=%s: ready after %.2f s; a PVC asked right after readiness (the last of the fleet) answered restore %.2f s after it was first asked (%d call(s)), %.2f s after start; peak RSS %.0f MiB\n",
		s3BenchPVCs, chartGoMemLimit, ready.Seconds(), first.Seconds(), calls, (ready + first).Seconds(), float64(peak)/(1<<20))

	b.ReportMetric(ready.Seconds(), "s-to-ready")
	b.ReportMetric(first.Seconds(), "s-to-first-answer")
	b.ReportMetric(float64(calls), "calls")
	b.ReportMetric(float64(peak)/(1<<20), "peak-rss-MiB")
}
