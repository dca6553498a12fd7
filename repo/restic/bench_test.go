package restic_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness"

	"github.com/backup-oracle/backup-oracle/repo"
	"github.com/backup-oracle/backup-oracle/repo/restic"
)

// Fleet sizes of the benchmark: 1,000 PVCs for listing and readiness; full verification derives
// one scrypt key per repository (~0.25s of CPU each with restic 0.19's parameters), so it runs on
// 100 PVCs to keep the benchmark short and scales linearly.
const (
	benchFleet    = 1000
	benchVerified = 100
	benchPerNS    = 50
)

// BenchmarkIndex measures index builds on a real S3 server (versitygw) holding repositories
// written by the real restic CLI: one repository is created with the CLI, then its objects are
// copied under every PVC's prefix (the posix backend stores objects as files, so the copy is a
// file copy). Reported: time per Load and requests per PVC.
//
//	RESTIC_BIN=... VERSITYGW_BIN=... go test -run '^$' -bench BenchmarkIndex -benchtime 3x ./repo/restic/
func BenchmarkIndex(b *testing.B) {
	st, srv := s3StorageB(b)
	cli := harness.NewResticCLI(b, srv)

	const template = "template/ns/pvc"

	cli.Init(st.url(template), password, "2")
	cli.Backup(st.url(template), password)

	fleet := copyFleet(b, st, template, "fleet", benchFleet)
	verified := copyFleet(b, st, template, "verified", benchVerified)

	opts := func(p string, pw repo.Secret, wait time.Duration) restic.Options {
		o := st.options()
		o.Prefix, o.Password, o.VerifyWait = p, pw, wait

		return o
	}

	b.Run(fmt.Sprintf("pvcs=%d/no-password", benchFleet), func(b *testing.B) {
		r := newRepo(b, opts("fleet", "", 0))
		benchLoads(b, r, fleet, func(idx repo.Index) {
			requireAnswers(b, idx, fleet[len(fleet)-1], 1)
		})
	})

	b.Run(fmt.Sprintf("pvcs=%d/password/first-index", benchFleet), func(b *testing.B) {
		// A cold Repo each time: the time until the service has an index and can be ready.
		var before, after restic.RequestCounts

		for b.Loop() {
			r, err := restic.New(opts("fleet", password, time.Millisecond))
			require.NoError(b, err)

			before = r.Requests()
			_, err = r.Load(context.Background())
			require.NoError(b, err)
			after = r.Requests()

			b.StopTimer()
			require.NoError(b, r.Close(context.Background()))
			b.StartTimer()
		}

		b.ReportMetric(float64(after.Lists-before.Lists)/benchFleet, "lists/pvc")
	})

	b.Run(fmt.Sprintf("pvcs=%d/password/until-verified", benchVerified), func(b *testing.B) {
		for b.Loop() {
			r, err := restic.New(opts("verified", password, time.Hour))
			require.NoError(b, err)

			idx, err := r.Load(context.Background())
			require.NoError(b, err)
			requireAnswers(b, idx, verified[0], 1)

			b.StopTimer()
			reportRequests(b, r.Requests(), restic.RequestCounts{}, benchVerified, 1)
			require.NoError(b, r.Close(context.Background()))
			b.StartTimer()
		}
	})

	b.Run(fmt.Sprintf("pvcs=%d/password/refresh-verified", benchVerified), func(b *testing.B) {
		r := newRepo(b, opts("verified", password, time.Hour))
		_, err := r.Load(context.Background())
		require.NoError(b, err)

		benchLoads(b, r, verified, func(idx repo.Index) {
			requireAnswers(b, idx, verified[len(verified)-1], 1)
		})
	})
}

func benchLoads(b *testing.B, r *restic.Repo, pvcs []repo.PVC, check func(repo.Index)) {
	before := r.Requests()

	var loads int

	for b.Loop() {
		idx, err := r.Load(context.Background())
		require.NoError(b, err)

		loads++

		b.StopTimer()
		check(idx)
		b.StartTimer()
	}

	reportRequests(b, r.Requests(), before, len(pvcs), loads)
}

func reportRequests(b *testing.B, after, before restic.RequestCounts, pvcs, loads int) {
	b.ReportMetric(float64(after.Lists-before.Lists)/float64(pvcs*loads), "lists/pvc")
	b.ReportMetric(float64(after.Gets-before.Gets)/float64(pvcs*loads), "gets/pvc")
}

func requireAnswers(b *testing.B, idx repo.Index, p repo.PVC, n int) {
	f, err := idx.Find(context.Background(), p)
	require.NoError(b, err)
	require.Len(b, f.Snapshots, n)
}

// copyFleet copies the repository at template to <prefix>/ns-XX/pvc-XXXX for n PVCs.
func copyFleet(b testing.TB, st storageUnderTest, template, prefix string, n int) []repo.PVC {
	b.Helper()

	src := st.fsPath(template)
	pvcs := make([]repo.PVC, n)

	for i := range pvcs {
		pvcs[i] = pvc(fmt.Sprintf("ns-%02d", i/benchPerNS), fmt.Sprintf("pvc-%04d", i))
		dst := st.fsPath(prefix + "/" + pvcs[i].Namespace + "/" + pvcs[i].Name)

		err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}

			relPath, _ := filepath.Rel(src, p)
			if d.IsDir() {
				return os.MkdirAll(filepath.Join(dst, relPath), 0o755)
			}

			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}

			return os.WriteFile(filepath.Join(dst, relPath), data, 0o644)
		})
		require.NoError(b, err)
	}

	return pvcs
}
