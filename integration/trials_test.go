package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness"
	"github.com/backup-oracle/backup-oracle/repo"
)

// Invariant trials (issue 12): the real program on real repositories while a random schedule
// writes snapshots (during refreshes), deletes them and injects faults (repository directory
// removed, permissions flipped, a manifest or index blob truncated, S3 stopped or slowed, the
// password file emptied), and clients ask about PVCs with and without backups the whole time.
// Every authoritative answer is checked against what the repository held: a fresh while a
// complete snapshot existed, or a restore while none did, fails the trial at once.
//
// Time makes "what the repository held" precise: an answer comes from an index loaded at
// IndexTime = response time - indexAgeSeconds, which is no earlier than (request sent -
// indexAgeSeconds). The answer is wrong only when the truth was the same, with no write or
// deletion under way, from that instant until the response: a snapshot finished after the index
// was loaded may rightly be missing from it.
//
// The short profile (a few seconds of each backend) runs in `make test`; `make soak` runs it for
// TRIAL_DURATION per backend and reports the process's memory and goroutines, which must stay
// flat.

// trialDuration is how long each backend's trial runs.
func trialDuration(t *testing.T) time.Duration {
	t.Helper()

	if s := os.Getenv("TRIAL_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		require.NoError(t, err, "TRIAL_DURATION")

		return d
	}

	return 15 * time.Second
}

// timeline is the truth of one PVC: whether a complete snapshot exists, as a list of changes,
// each uncertain while its write or deletion runs.
type timeline struct {
	mu      sync.Mutex
	changes []change
}

type change struct {
	start, end time.Time // the operation ran from start to end; the state is uncertain meanwhile
	has        bool      // whether a complete snapshot exists after it
	open       bool      // still running (end unknown)
}

// begin records an operation that will leave has; finish must follow.
func (tl *timeline) begin(has bool) func(ok bool) {
	tl.mu.Lock()
	i := len(tl.changes)
	tl.changes = append(tl.changes, change{start: time.Now(), has: has, open: true})
	tl.mu.Unlock()

	return func(ok bool) {
		tl.mu.Lock()
		defer tl.mu.Unlock()

		c := &tl.changes[i]
		c.end, c.open = time.Now(), false

		if !ok { // a failed operation may or may not have taken effect: uncertain for ever
			c.end = time.Now().Add(24 * time.Hour)
		}
	}
}

// state reports whether the truth was the same, certainly, from a to b, and what it was.
func (tl *timeline) state(a, b time.Time) (has, sure bool) {
	tl.mu.Lock()
	defer tl.mu.Unlock()

	has = false

	for _, c := range tl.changes {
		if c.open || !c.end.Before(a) {
			if !c.start.After(b) { // the change overlaps [a, b]
				return false, false
			}

			break
		}

		has = c.has
	}

	return has, true
}

// trialWorld is one backend under trial.
type trialWorld struct {
	name   string
	env    []string
	uid    uint32
	pvcs   []repo.PVC
	truth  map[repo.PVC]*timeline
	backup func(p repo.PVC) error
	remove func(p repo.PVC) error
	faults map[string]func() (restore func())
}

type trialCounts struct {
	answers, restore, fresh, unknown atomic.Int64
}

func TestInvariantTrials(t *testing.T) {
	for name, world := range map[string]func(t *testing.T) *trialWorld{
		"kopia-fs":                kopiaTrialWorld,
		"restic-s3 with password": resticTrialWorld,
	} {
		t.Run(name, func(t *testing.T) {
			runTrial(t, world(t))
		})
	}
}

func runTrial(t *testing.T, w *trialWorld) {
	duration := trialDuration(t)
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 12)) //nolint:gosec // a test schedule
	t.Logf("trial %s for %s (schedule seed %d)", w.name, duration, seed)

	o := harness.StartOracle(t, harness.OracleOptions{Bin: oracleBin, UID: w.uid, Env: append([]string{
		"REFRESH_INTERVAL=200ms", "MAX_INDEX_AGE=20s", "REFRESH_TIMEOUT=10s", "HTTP_TIMEOUT=2s", "LOG_LEVEL=error",
		"GOMEMLIMIT=" + chartGoMemLimit,
	}, w.env...)})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var (
		counts   trialCounts
		failOnce sync.Once
		failure  atomic.Pointer[string]
		askers   sync.WaitGroup
	)

	fail := func(msg string) {
		failOnce.Do(func() {
			failure.Store(&msg)
			cancel()
		})
	}

	for i := range 2 {
		askers.Go(func() { ask(ctx, o, w, &counts, fail, int64(i)) })
	}

	samples := sampleProcess(ctx, o)

	faults := make([]string, 0, len(w.faults))
	for f := range w.faults {
		faults = append(faults, f)
	}

	sort.Strings(faults)

	injected := map[string]int{}
	deadline := time.Now().Add(duration)
	// A trial that saw no restore or no fresh answer checked nothing of that kind: on a loaded
	// machine (restic key derivations queue behind the faults) it goes on, without faults, until
	// it has seen both, for at most a minute more.
	extended := deadline.Add(time.Minute)
	sawBoth := func() bool { return counts.restore.Load() > 0 && counts.fresh.Load() > 0 }

	for ctx.Err() == nil && (time.Now().Before(deadline) || (!sawBoth() && time.Now().Before(extended))) {
		p := w.pvcs[rng.IntN(len(w.pvcs))]
		calm := time.Now().After(deadline)

		switch op := rng.IntN(10); {
		case op < 5 || (calm && op >= 6):
			done := w.truth[p].begin(true)
			done(w.backup(p) == nil)
		case op < 6:
			done := w.truth[p].begin(false)
			done(w.remove(p) == nil)
		default:
			f := faults[rng.IntN(len(faults))]
			injected[f]++
			restore := w.faults[f]()
			sleep(ctx, time.Duration(200+rng.IntN(1500))*time.Millisecond)
			restore()
		}

		sleep(ctx, time.Duration(rng.IntN(300))*time.Millisecond)
	}

	cancel()
	askers.Wait()

	if msg := failure.Load(); msg != nil {
		t.Fatalf("wrong authoritative answer: %s\n%s", *msg, tail(o.Stderr(), 3000))
	}

	require.False(t, o.Exited(), "the process stays up through every fault")
	require.Positive(t, counts.restore.Load(), "some answers were restore")
	require.Positive(t, counts.fresh.Load(), "some answers were fresh")

	t.Logf("%s: %d answers checked (%d restore, %d fresh, %d unknown), none wrong; faults injected: %v",
		w.name, counts.answers.Load(), counts.restore.Load(), counts.fresh.Load(), counts.unknown.Load(), injected)

	reportFlat(t, samples())
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}

	return s
}

// ask queries random PVCs until ctx ends and checks every authoritative answer.
func ask(ctx context.Context, o *harness.Oracle, w *trialWorld, counts *trialCounts, fail func(string), seed int64) {
	rng := rand.New(rand.NewPCG(uint64(seed), 7)) //nolint:gosec // a test schedule
	client := harness.Client(1)

	for ctx.Err() == nil {
		p := w.pvcs[rng.IntN(len(w.pvcs))]

		sent := time.Now()
		code, body, err := getJSON(ctx, client, o.URL+"/exists/"+p.Namespace+"/"+p.Name)
		received := time.Now()

		if err != nil {
			continue // the trial ended, or the connection broke: no answer to check
		}

		counts.answers.Add(1)

		decision, _ := body["decision"].(string)
		age, _ := body["indexAgeSeconds"].(float64)

		switch {
		case code == http.StatusServiceUnavailable && decision == "unknown":
			counts.unknown.Add(1)
			continue
		case code != http.StatusOK || (decision != "restore" && decision != "fresh"):
			fail(fmt.Sprintf("%s: unexpected answer %d %v", p, code, body))
			return
		}

		indexTime := sent.Add(-time.Duration(age * float64(time.Second)))

		has, sure := w.truth[p].state(indexTime, received)

		if decision == "restore" {
			counts.restore.Add(1)
		} else {
			counts.fresh.Add(1)
		}

		if sure && has != (decision == "restore") {
			fail(fmt.Sprintf("%s answered %s, but from %s (index time) to %s a complete snapshot existed: %t; answer %v",
				p, decision, indexTime.Format(time.RFC3339Nano), received.Format(time.RFC3339Nano), has, body))

			return
		}
	}
}

func getJSON(ctx context.Context, client *http.Client, url string) (int, map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}

	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()

	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}

	var body map[string]any
	if err := json.Unmarshal(b, &body); err != nil {
		return 0, nil, fmt.Errorf("decode %q: %w", b, err)
	}

	return resp.StatusCode, body, nil
}

// processSample is the program's memory and goroutines at one instant.
type processSample struct {
	at         time.Duration
	rssMiB     float64
	goroutines float64
}

// sampleProcess samples the program every 5 seconds until ctx ends; the returned function
// returns the samples so far.
func sampleProcess(ctx context.Context, o *harness.Oracle) func() []processSample {
	var (
		mu      sync.Mutex
		samples []processSample
	)

	start := time.Now()

	go func() {
		for {
			rss, _, err := harness.RSS(o.PID())
			g, gerr := o.MetricValue("go_goroutines")

			if err == nil && gerr == nil {
				mu.Lock()
				samples = append(samples, processSample{time.Since(start), float64(rss) / (1 << 20), g})
				mu.Unlock()
			}

			select {
			case <-ctx.Done():
				return
			case <-time.After(5 * time.Second):
			}
		}
	}()

	return func() []processSample {
		mu.Lock()
		defer mu.Unlock()

		return slices.Clone(samples)
	}
}

// reportFlat logs the samples and, over a long trial, checks that memory and goroutines do not
// grow: the second half's maximum stays within 1.5 times (memory) and 20 goroutines of the first
// half's.
func reportFlat(t *testing.T, samples []processSample) {
	t.Helper()

	if len(samples) == 0 {
		return
	}

	var line strings.Builder
	for _, s := range samples {
		fmt.Fprintf(&line, " %s:%.0fMiB/%.0fg", s.at.Round(time.Second), s.rssMiB, s.goroutines)
	}

	t.Logf("RSS/goroutines over time:%s", line.String())

	if len(samples) < 8 {
		return
	}

	half := len(samples) / 2
	peak := func(s []processSample) (rss, g float64) {
		for _, x := range s {
			rss, g = max(rss, x.rssMiB), max(g, x.goroutines)
		}

		return rss, g
	}

	rss1, g1 := peak(samples[1:half]) // the first sample is the start
	rss2, g2 := peak(samples[half:])

	require.LessOrEqual(t, rss2, rss1*1.5, "memory grows")
	require.LessOrEqual(t, g2, g1+20, "goroutines grow")
}

// kopiaTrialWorld: a kopia-fs repository written by the real kopia CLI. When the tests run as
// root, the CLI and the program run as nobody, so a permission flip denies the program.
func kopiaTrialWorld(t *testing.T) *trialWorld {
	t.Helper()

	var uid uint32
	if os.Geteuid() == 0 {
		uid = 65534
	}

	base, err := os.MkdirTemp("", "backup-oracle-trial-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	require.NoError(t, os.Chmod(base, 0o755))

	data := filepath.Join(base, "data")
	require.NoError(t, os.MkdirAll(data, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(data, "db"), []byte("precious"), 0o644))

	state := filepath.Join(base, "state")
	require.NoError(t, os.MkdirAll(state, 0o700))

	if uid != 0 {
		require.NoError(t, os.Chown(base, int(uid), int(uid)))
		require.NoError(t, os.Chown(state, int(uid), int(uid)))
	}

	path := filepath.Join(base, "repository")
	cli := harness.NewKopiaRepositoryAs(t, uid, path, kopiaPassword)

	pwFile := filepath.Join(base, "password")
	require.NoError(t, os.WriteFile(pwFile, []byte(kopiaPassword), 0o644))

	id := repo.DefaultKopiaIdentity()
	w := &trialWorld{
		name: "kopia-fs", uid: uid, truth: map[repo.PVC]*timeline{},
		env: []string{"BACKEND_TYPE=kopia-fs", "KOPIA_REPOSITORY_PATH=" + path, "KOPIA_PASSWORD_FILE=" + pwFile, "STATE_DIR=" + state},
	}

	for i := range 10 {
		p := repo.PVC{Namespace: fmt.Sprintf("ns-%d", i%3), Name: fmt.Sprintf("app-%d.data", i)}
		w.pvcs = append(w.pvcs, p)
		w.truth[p] = &timeline{}
	}

	w.backup = func(p repo.PVC) error {
		_, err := cli.Try("snapshot", "create", data, "--override-source", id.Source(p).String())
		return err
	}
	w.remove = func(p repo.PVC) error {
		out, err := cli.Try("snapshot", "list", "--json", id.Source(p).String())
		if err != nil {
			return err
		}

		var list []struct {
			ID string `json:"id"`
		}

		if err := json.Unmarshal([]byte(out), &list); err != nil {
			return err
		}

		for _, s := range list {
			if _, err := cli.Try("snapshot", "delete", s.ID, "--delete"); err != nil {
				return err
			}
		}

		return nil
	}

	// Half the PVCs start with a backup (a failed write would leave the truth uncertain).
	for _, p := range w.pvcs[:5] {
		done := w.truth[p].begin(true)
		done(w.backup(p) == nil)
	}

	w.faults = map[string]func() func(){
		"repository directory removed": func() func() {
			require.NoError(t, os.Rename(path, path+".away"))
			return func() { require.NoError(t, os.Rename(path+".away", path)) }
		},
		"permissions flipped": func() func() {
			require.NoError(t, os.Chmod(path, 0))
			return func() { require.NoError(t, os.Chmod(path, 0o700)) }
		},
		"password file emptied": func() func() {
			require.NoError(t, os.WriteFile(pwFile, nil, 0o644))
			return func() { require.NoError(t, os.WriteFile(pwFile, []byte(kopiaPassword), 0o644)) }
		},
		"manifest or index blob truncated": func() func() {
			return truncateOne(t, path, []string{"q", "x", "n"})
		},
	}

	return w
}

// truncateOne cuts one random blob whose name starts with one of prefixes (kopia's "q" packs hold
// manifests and directories, "x"/"n" blobs the indexes) to half its size, and returns the
// function that puts it back.
func truncateOne(t *testing.T, root string, prefixes []string) func() {
	t.Helper()

	var blobs []string

	_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			for _, pre := range prefixes {
				if strings.HasPrefix(d.Name(), pre) {
					blobs = append(blobs, p)
				}
			}
		}

		return nil
	})

	if len(blobs) == 0 {
		return func() {}
	}

	p := blobs[rand.IntN(len(blobs))] //nolint:gosec // a test schedule

	orig, err := os.ReadFile(p)
	require.NoError(t, err)

	info, err := os.Stat(p)
	require.NoError(t, err)

	require.NoError(t, os.Truncate(p, int64(len(orig)/2)))

	return func() {
		require.NoError(t, os.WriteFile(p, orig, info.Mode()))
	}
}

// resticTrialWorld: restic repositories (one per PVC) on S3, written by the real restic CLI,
// read with the password, behind a fault proxy.
func resticTrialWorld(t *testing.T) *trialWorld {
	t.Helper()

	s3 := harness.StartS3(t)
	bucket := s3.CreateBucket("volsync")
	proxy := harness.StartFaultProxy(t, s3.URL)
	cli := harness.NewResticCLI(t, s3)

	pwFile := filepath.Join(t.TempDir(), "password")
	require.NoError(t, os.WriteFile(pwFile, []byte(resticPassword), 0o600))

	w := &trialWorld{
		name: "restic-s3", truth: map[repo.PVC]*timeline{},
		env: []string{"BACKEND_TYPE=restic-s3", "S3_ENDPOINT=" + proxy.URL, "S3_BUCKET=" + bucket, "S3_ACCESS_KEY=" + s3.AccessKey,
			"S3_SECRET_KEY=" + s3.SecretKey, "RESTIC_PASSWORD_FILE=" + pwFile, "S3_REQUEST_TIMEOUT=1s"},
	}

	url := func(p repo.PVC) string { return "s3:" + s3.URL + "/" + bucket + "/" + p.Namespace + "/" + p.Name }
	dir := func(p repo.PVC) string { return filepath.Join(s3.Root, bucket, p.Namespace, p.Name) }

	for i := range 8 {
		p := repo.PVC{Namespace: fmt.Sprintf("ns-%d", i%3), Name: fmt.Sprintf("app-%d", i)}
		w.pvcs = append(w.pvcs, p)
		w.truth[p] = &timeline{}

		// Every repository exists (VolSync initialises one before a restore): empty is fresh.
		cli.Init(url(p), resticPassword, "2")
	}

	w.backup = func(p repo.PVC) error {
		cli.Backup(url(p), resticPassword)
		return nil
	}
	w.remove = func(p repo.PVC) error { // what `restic forget` leaves: no snapshot file
		entries, err := os.ReadDir(filepath.Join(dir(p), "snapshots"))
		if err != nil {
			return err
		}

		for _, e := range entries {
			if err := os.Remove(filepath.Join(dir(p), "snapshots", e.Name())); err != nil {
				return err
			}
		}

		return nil
	}

	for _, p := range w.pvcs[:4] {
		done := w.truth[p].begin(true)
		done(w.backup(p) == nil)
	}

	w.faults = map[string]func() func(){
		"S3 stopped":                  func() func() { s3.Stop(); return s3.Start },
		"S3 slowed past HTTP_TIMEOUT": func() func() { proxy.SetDelay(3 * time.Second); return proxy.Reset },
		"S3 failing with 503":         func() func() { proxy.Fail(-1, http.StatusServiceUnavailable); return proxy.Reset },
		"password file emptied": func() func() {
			require.NoError(t, os.WriteFile(pwFile, nil, 0o600))
			return func() { require.NoError(t, os.WriteFile(pwFile, []byte(resticPassword), 0o600)) }
		},
		"snapshot or index file truncated": func() func() {
			p := w.pvcs[rand.IntN(len(w.pvcs))] //nolint:gosec // a test schedule
			return truncateOne(t, dir(p), []string{""})
		},
	}

	return w
}
