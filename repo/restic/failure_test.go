package restic_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness"
	"github.com/backup-oracle/backup-oracle/repo"
	"github.com/backup-oracle/backup-oracle/repo/restic"
)

var backedUp = pvc("team-a", "app")

// oneRepository starts S3 with one repository holding one snapshot and returns options for it.
func oneRepository(t *testing.T) (storageUnderTest, restic.Options) {
	t.Helper()

	st, _ := s3Storage(t)
	cli := harness.NewResticCLI(t, st.s3)
	cli.Init(st.url(rel(backedUp)), password, "2")
	cli.Backup(st.url(rel(backedUp)), password)

	opts := st.options()
	opts.Prefix = prefix

	return st, opts
}

func requireSnapshots(t *testing.T, idx repo.Index, p repo.PVC, n int) {
	t.Helper()

	f, err := idx.Find(context.Background(), p)
	require.NoError(t, err)
	require.Len(t, f.Snapshots, n)
}

func TestS3OutageAndRecovery(t *testing.T) {
	for _, pw := range []repo.Secret{"", password} {
		name := map[bool]string{true: "with password", false: "without password"}[pw != ""]

		t.Run(name, func(t *testing.T) {
			st, opts := oneRepository(t)
			// With the password the server goes away while the background verification runs.
			opts.Password, opts.VerifyWait = pw, time.Nanosecond
			r := newRepo(t, opts)

			_, err := r.Load(context.Background())
			require.NoError(t, err)

			st.s3.Stop()

			start := time.Now()
			_, err = r.Load(context.Background())
			require.ErrorIs(t, err, repo.ErrUnavailable)
			assert.Contains(t, err.Error(), `restic: list "s3:backups/volsync/"`)
			assert.Less(t, time.Since(start), 10*time.Second)

			st.s3.Start()
			waitVerified(t, r, backedUp, 1)
		})
	}
}

func TestS3Faults(t *testing.T) {
	st, opts := oneRepository(t)
	proxy := harness.StartFaultProxy(t, st.s3.URL)
	opts.S3.Endpoint = proxy.URL
	opts.S3.RequestTimeout = 500 * time.Millisecond
	opts.S3.MaxAttempts = 3

	tests := []struct {
		name   string
		fault  func()
		ok     bool
		within time.Duration
		// injected is how many requests the proxy failed; -1: do not check.
		injected int64
	}{
		{"transient 503 retried", func() { proxy.Fail(2, http.StatusServiceUnavailable) }, true, 10 * time.Second, 2},
		{"transient 500 retried", func() { proxy.Fail(1, http.StatusInternalServerError) }, true, 10 * time.Second, 1},
		{"persistent 502", func() { proxy.Fail(-1, http.StatusBadGateway) }, false, 10 * time.Second, 3},
		{"403 not retried", func() { proxy.Fail(-1, http.StatusForbidden) }, false, 5 * time.Second, 1},
		// 3 attempts of 0.5s plus at most 2 backoffs of at most 2s: 5.5 s, with room for a loaded
		// 2-core machine; still far below the minute the server would take without the timeout.
		{"slow server bounded by the request timeout", func() { proxy.SetDelay(time.Minute) }, false, 20 * time.Second, -1},
		{"slightly slow server answers", func() { proxy.SetDelay(50 * time.Millisecond) }, true, 10 * time.Second, -1},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proxy.Reset()
			before := proxy.Injected()
			tt.fault()

			defer proxy.Reset()

			start := time.Now()
			idx, err := newRepo(t, opts).Load(context.Background())
			elapsed := time.Since(start)

			assert.Less(t, elapsed, tt.within)

			if tt.injected >= 0 {
				assert.Equal(t, tt.injected, proxy.Injected()-before)
			}

			if !tt.ok {
				require.ErrorIs(t, err, repo.ErrUnavailable)
				return
			}

			require.NoError(t, err)
			requireSnapshots(t, idx, backedUp, 1)
		})
	}
}

func TestS3Misconfigured(t *testing.T) {
	st, opts := oneRepository(t)

	tests := []struct {
		name   string
		modify func(o *restic.Options)
	}{
		{"missing bucket", func(o *restic.Options) { o.S3.Bucket = "no-such-bucket" }},
		{"wrong secret key", func(o *restic.Options) { o.S3.SecretKey = "wrong-secret" }},
		{"unknown access key", func(o *restic.Options) { o.S3.AccessKey = "nobody" }},
		{"nothing listening", func(o *restic.Options) { o.S3.Endpoint = "127.0.0.1:1" }},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := opts
			tt.modify(&o)

			_, err := newRepo(t, o).Load(context.Background())
			require.ErrorIs(t, err, repo.ErrUnavailable)
			assert.NotContains(t, err.Error(), st.s3.SecretKey)
		})
	}
}

func TestDirectoryMissing(t *testing.T) {
	_, err := newRepo(t, restic.Options{Dir: t.TempDir() + "/not-mounted"}).Load(context.Background())
	require.ErrorIs(t, err, repo.ErrUnavailable)
}

// The first index does not wait for key derivation: a repository still being verified answers
// unknown while the others answer; later loads pick the results up, and refreshes decrypt only
// new snapshots without deriving the key again.
func TestVerificationInBackgroundAndIncremental(t *testing.T) {
	st, opts := oneRepository(t)
	opts.Password = password
	opts.VerifyWait = time.Nanosecond

	r := newRepo(t, opts)

	idx, err := r.Load(context.Background())
	require.NoError(t, err)

	_, err = idx.Find(context.Background(), backedUp)
	require.ErrorIs(t, err, repo.ErrUnverifiable)
	assert.Contains(t, err.Error(), ": 1 of 1 snapshots not verified yet", "the reason counts the pending snapshots")

	requireSnapshots(t, idx, pvc("team-a", "never-backed-up"), 0)

	waitVerified(t, r, backedUp, 1)

	// Nothing new: listings only.
	before := r.Requests()
	_, err = r.Load(context.Background())
	require.NoError(t, err)
	assert.Equal(t, restic.RequestCounts{Lists: 3}, diff(r.Requests(), before), "no download when nothing changed")

	// One new snapshot: config and that snapshot are downloaded, the key is not derived again
	// (no keys/ listing, no key file download).
	harness.NewResticCLI(t, st.s3).Backup(st.url(rel(backedUp)), password)

	before = r.Requests()
	loads := waitVerified(t, r, backedUp, 2)

	after := r.Requests()
	assert.Equal(t, int64(2), after.Gets-before.Gets, "config and the new snapshot")
	assert.Equal(t, 3*loads, after.Lists-before.Lists, "prefix, namespace and snapshots/ per load: no keys/")
}

// waitVerified loads r until p's repository answers n snapshots and returns how many loads it took.
func waitVerified(t *testing.T, r *restic.Repo, p repo.PVC, n int) int64 {
	t.Helper()

	var loads int64

	require.Eventually(t, func() bool {
		loads++

		idx, err := r.Load(context.Background())
		require.NoError(t, err)

		f, err := idx.Find(context.Background(), p)

		return err == nil && len(f.Snapshots) == n
	}, 30*time.Second, 50*time.Millisecond)

	return loads
}

func diff(a, b restic.RequestCounts) restic.RequestCounts {
	return restic.RequestCounts{Lists: a.Lists - b.Lists, Gets: a.Gets - b.Gets}
}
