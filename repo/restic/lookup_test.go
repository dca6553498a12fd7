package restic_test

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness"
	"github.com/backup-oracle/backup-oracle/repo"
	"github.com/backup-oracle/backup-oracle/repo/restic"
)

// settableClock is the fleet refresh's clock in tests.
type settableClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *settableClock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *settableClock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// TestLookupConfirmsBetweenFleetListings: with a fleet refresh interval, loads between two fleet
// listings cost one request, and each lookup lists its own repository: a backup finished after
// the fleet listing is restore at once, a repository emptied since is fresh, and a lookup that
// cannot list is unknown, never an answer from the older listing.
func TestLookupConfirmsBetweenFleetListings(t *testing.T) {
	for _, pw := range []repo.Secret{"", password} {
		name := map[bool]string{true: "with password", false: "without password"}[pw != ""]

		t.Run(name, func(t *testing.T) {
			st, opts := oneRepository(t)
			cli := harness.NewResticCLI(t, st.s3)
			later := pvc("team-a", "later")
			cli.Init(st.url(rel(later)), password, "2")

			clk := &settableClock{t: time.Unix(1_000_000, 0)}
			opts.Password, opts.VerifyWait, opts.LookupWait = pw, time.Minute, time.Minute
			opts.FleetRefreshInterval, opts.Now = 10*time.Minute, clk.now
			r := newRepo(t, opts)

			before := r.Requests()
			_, err := r.Load(context.Background())
			require.NoError(t, err)

			// prefix, namespace, and the snapshots/ of each of the 2 repositories, and the initialised
			// repository later/ (no snapshot yet: the deeper near-miss variant looks whether it is a
			// level above a repository; its config says no). With the password, the first load also
			// lists keys/ for the verification.
			const fleet = 5
			if pw == "" {
				assert.Equal(t, int64(fleet), diff(r.Requests(), before).Lists)
			}

			clk.add(time.Minute)

			before = r.Requests()
			idx, err := r.Load(context.Background())
			require.NoError(t, err)
			assert.Equal(t, restic.RequestCounts{Lists: 1}, diff(r.Requests(), before), "between fleet listings: one request")

			before = r.Requests()
			requireSnapshots(t, idx, later, 0)
			assert.Equal(t, int64(1), diff(r.Requests(), before).Lists, "a lookup lists its own repository")

			cli.Backup(st.url(rel(later)), password)
			requireSnapshots(t, idx, later, 1) // same index: the lookup sees what the fleet listing could not

			require.NoError(t, os.RemoveAll(st.fsPath(rel(backedUp)+"/snapshots")))
			requireSnapshots(t, idx, backedUp, 0) // nothing restorable any more: never restore

			st.s3.Stop()

			_, err = idx.Find(context.Background(), later)
			require.ErrorIs(t, err, repo.ErrUnavailable, "no listing, no answer")

			_, err = r.Load(context.Background())
			require.ErrorIs(t, err, repo.ErrUnavailable, "the one request of a load proves the storage answers")

			st.s3.Start()

			clk.add(10 * time.Minute)

			before = r.Requests()
			_, err = r.Load(context.Background())
			require.NoError(t, err)
			assert.Equal(t, int64(fleet), diff(r.Requests(), before).Lists, "the interval elapsed: the fleet is listed again (nothing new to verify)")
		})
	}
}

// TestNewNamespaceListsTheFleetAtOnce: a load between fleet listings that sees the namespaces
// change lists the fleet at once.
func TestNewNamespaceListsTheFleetAtOnce(t *testing.T) {
	st, opts := oneRepository(t)
	clk := &settableClock{t: time.Unix(1_000_000, 0)}
	opts.FleetRefreshInterval, opts.Now = time.Hour, clk.now
	r := newRepo(t, opts)

	_, err := r.Load(context.Background())
	require.NoError(t, err)

	other := pvc("team-new", "db")
	cli := harness.NewResticCLI(t, st.s3)
	cli.Init(st.url(rel(other)), password, "2")
	cli.Backup(st.url(rel(other)), password)

	before := r.Requests()
	idx, err := r.Load(context.Background())
	require.NoError(t, err)
	assert.Greater(t, diff(r.Requests(), before).Lists, int64(1), "listed the fleet")
	assert.Equal(t, 2, idx.Stats().Sources)
}

// TestLookupTimeoutIsUnknown: a lookup whose listing does not answer within its deadline is
// unknown (a slow S3 never yields fresh).
func TestLookupTimeoutIsUnknown(t *testing.T) {
	st, opts := oneRepository(t)
	proxy := harness.StartFaultProxy(t, st.s3.URL)
	opts.S3.Endpoint = proxy.URL
	opts.FleetRefreshInterval = time.Hour
	r := newRepo(t, opts)

	idx, err := r.Load(context.Background())
	require.NoError(t, err)

	proxy.SetDelay(time.Minute)

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()

	start := time.Now()
	_, err = idx.Find(ctx, pvc("team-a", "nothing"))
	require.ErrorIs(t, err, repo.ErrUnavailable)
	assert.Less(t, time.Since(start), 5*time.Second, "bounded by the lookup's deadline")
}

// TestLookupPutsItsRepositoryFirst: on a cold start with a password, every repository waits for
// its key derivation; a lookup moves its own to the front (one derivation at a time here), so it
// is answered after at most the derivation already running, not after the fleet.
func TestLookupPutsItsRepositoryFirst(t *testing.T) {
	const n = 16

	st, _ := s3Storage(t)
	cli := harness.NewResticCLI(t, st.s3)

	const template = "template/ns/pvc"

	cli.Init(st.url(template), password, "2")
	cli.Backup(st.url(template), password)

	pvcs := copyFleet(t, st, template, prefix, n)

	opts := st.options()
	opts.Prefix, opts.Password = prefix, password
	opts.VerifyWait, opts.VerifyConcurrency, opts.ListConcurrency = time.Nanosecond, 1, 1
	opts.LookupWait = 2 * time.Minute
	r := newRepo(t, opts)

	idx, err := r.Load(context.Background())
	require.NoError(t, err)

	asked := pvcs[n-1]
	requireSnapshots(t, idx, asked, 1)

	verified := 0

	idx2, err := r.Load(context.Background())
	require.NoError(t, err)

	done, cancel := context.WithCancel(context.Background())
	cancel() // count, do not wait

	for _, p := range pvcs[:n-1] {
		if _, err := idx2.Find(done, p); err == nil {
			verified++
		}
	}

	t.Logf("when %s was answered, %d of the %d other repositories were verified", asked, verified, n-1)
	assert.LessOrEqual(t, verified, 3, "the asked repository went first, not after the fleet")
}

// TestPointInTimeWithoutPassword: without the password a snapshot's time is its object's
// modification time, not the time restic recorded and VolSync's restoreAsOf compares, so a
// point in time is unknown, whether the snapshots come from the fleet listing or from a lookup's
// own listing (both must mark the times approximate); a plain restore is still restore.
func TestPointInTimeWithoutPassword(t *testing.T) {
	for name, interval := range map[string]time.Duration{"fleet listing": 0, "lookup's own listing": time.Hour} {
		t.Run(name, func(t *testing.T) {
			_, opts := oneRepository(t)
			opts.FleetRefreshInterval = interval
			r := newRepo(t, opts)

			idx, err := r.Load(context.Background())
			require.NoError(t, err)

			f, err := idx.Find(context.Background(), backedUp)
			require.NoError(t, err)
			require.Len(t, f.Snapshots, 1)
			assert.True(t, f.Snapshots[0].ApproxTime, "an object's modification time is not restic's time")

			for _, p := range []repo.PointInTime{{AsOf: time.Now().Add(time.Hour)}, {Previous: 0, AsOf: time.Now().Add(-time.Hour)}, {Previous: 1}} {
				a := repo.DecideAt(backedUp, "restic", f, p, time.Now(), nil)
				assert.Equal(t, repo.Unknown, a.Decision, "%s", p)
				require.ErrorIs(t, a.Reason, repo.ErrUnverifiable, "%s", p)
				assert.Contains(t, a.Reason.Error(), "needs the password")
			}

			assert.Equal(t, repo.Restore, repo.DecideAt(backedUp, "restic", f, repo.PointInTime{}, time.Now(), nil).Decision)
		})
	}
}
