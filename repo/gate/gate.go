// Package gate is the gate self-test (README, "The gate self-test"): every interval it sends a
// server-side dry-run create of a canary PVC through the API server, the path a real PVC takes,
// and judges what happened (repo.GateCheck.Judge): armed, refusing, disarmed or unchecked. It
// also reports the namespaces whose backups the policies never check (repo.Uncovered).
//
// It declares what it needs: a DryRunCreator (repo/kube's Client, wired by cmd) and the
// oracle's Inventory. The oracle tells it about canary lookups through Saw. It lives under repo/
// beside the ledger because the top-level layout is fixed and it is domain logic over two
// technologies it does not know: depguard keeps it from importing an adapter, the cache or the
// HTTP layer.
package gate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/backup-oracle/backup-oracle/repo"
)

// Defaults for Options fields left zero.
const (
	// DefaultInterval is the pause between two checks.
	DefaultInterval = 5 * time.Minute
	// DefaultTimeout bounds one check: the API server calls two admission webhooks, each within
	// its timeout (the policies' 10 s), plus slack.
	DefaultTimeout = 30 * time.Second
)

// CanaryAnnotation marks the canary for anyone who sees it in a webhook's log or an event.
const CanaryAnnotation = "backup-oracle.io/canary"

// DryRunCreator sends a server-side dry-run create of a PVC (repo/kube.Client.DryRunCreatePVC):
// the verdict of admission, or an error when the API server could not be asked.
type DryRunCreator interface {
	DryRunCreatePVC(ctx context.Context, pvc repo.PVC, labels, annotations map[string]string) (repo.DryRun, error)
}

// DryRunFunc is a DryRunCreator made of a function (the test fakes, and cmd's stand-in when no
// Kubernetes API is configured).
type DryRunFunc func(ctx context.Context, pvc repo.PVC, labels, annotations map[string]string) (repo.DryRun, error)

// DryRunCreatePVC implements DryRunCreator.
func (f DryRunFunc) DryRunCreatePVC(ctx context.Context, pvc repo.PVC, labels, annotations map[string]string) (repo.DryRun, error) {
	return f(ctx, pvc, labels, annotations)
}

// Inventory is what the coverage report needs: every backend's inventory, without I/O
// (cache.Group.Inventory).
type Inventory interface {
	Inventory() []repo.Inventory
}

// Options configure a Gate.
type Options struct {
	// Off, when set, turns the self-test off with this reason (shown as the state's reason).
	Off string
	// API sends the dry runs; required unless Off.
	API DryRunCreator
	// Namespace is the canary namespace: one the policies cover, holding nothing else.
	Namespace string
	// Labels are the canary's labels: the policies' backup label with a value they handle.
	Labels map[string]string
	// Interval is the pause between checks; Timeout bounds one check.
	Interval, Timeout time.Duration
	// Excluded are the namespaces the policies exclude; with Inventory, what Status reports as
	// uncovered. Coverage is reported even when the self-test is off.
	Excluded  []string
	Inventory Inventory
	// Registerer receives the gate's metrics (a private registry); nil: none.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Now, Nonce and After are the clock, the nonce source and the timer (tests replace them).
	Now   func() time.Time
	Nonce func() (string, error)
	After func(time.Duration) <-chan time.Time
}

// Gate runs the self-test and keeps its last result. It is safe for concurrent use.
type Gate struct {
	opts    Options
	metrics *metrics

	mu      sync.Mutex
	status  repo.GateStatus
	pending map[string]bool // nonce of a check in flight -> this oracle saw its lookup
}

// New returns a gate in state unchecked (or off), before its first check.
func New(opts Options) (*Gate, error) {
	if opts.Off == "" && (opts.API == nil || opts.Namespace == "" || len(opts.Labels) == 0) {
		return nil, fmt.Errorf("%w: gate: the self-test needs an API client, a canary namespace and the policies' label", repo.ErrInvalidConfig)
	}

	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}

	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}

	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}

	if opts.Now == nil {
		opts.Now = time.Now
	}

	if opts.Nonce == nil {
		opts.Nonce = randomNonce
	}

	if opts.After == nil {
		opts.After = time.After
	}

	g := &Gate{opts: opts, pending: map[string]bool{}}
	g.status = repo.GateStatus{State: repo.GateUnchecked, Reason: "no check yet: the first runs once the server listens", Interval: opts.Interval}

	if opts.Off != "" {
		g.status = repo.GateStatus{State: repo.GateOff, Reason: opts.Off}
	}

	g.metrics = newMetrics(opts.Registerer, g)
	g.metrics.set(g.status)

	return g, nil
}

// randomNonce is 8 random bytes in lowercase hex: a canary name no one can guess in advance.
func randomNonce() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("gate: nonce: %w", err)
	}

	return hex.EncodeToString(b), nil
}

// Run checks at once, then every Interval after the previous check ended, until ctx is done.
// Start it once the server answers: the policies ask this oracle about the canary. It returns
// at once when the self-test is off.
func (g *Gate) Run(ctx context.Context) {
	if g.opts.Off != "" {
		return
	}

	for {
		g.Check(ctx)

		select {
		case <-ctx.Done():
			return
		case <-g.opts.After(g.opts.Interval):
		}
	}
}

// Check runs one self-test now (bounded by Timeout) and returns the new status. With the
// self-test off it only returns the status.
func (g *Gate) Check(ctx context.Context) repo.GateStatus {
	if g.opts.Off != "" {
		return g.Status()
	}

	started := g.opts.Now()
	check := g.dryRun(ctx)
	state, reason := check.Judge()

	g.mu.Lock()
	prev := g.status.State
	first := g.status.LastCheck.IsZero()
	g.status = repo.GateStatus{State: state, Reason: reason, LastCheck: started, Interval: g.opts.Interval, Canary: check.Canary}
	st := g.status
	g.mu.Unlock()

	g.metrics.set(st)
	g.log(prev, first, st)

	return g.Status()
}

// dryRun sends the canary and gathers the evidence: the API server's answer and whether this
// oracle saw the canary's lookup meanwhile.
func (g *Gate) dryRun(ctx context.Context) repo.GateCheck {
	nonce, err := g.opts.Nonce()
	if err != nil {
		return repo.GateCheck{Canary: repo.PVC{Namespace: g.opts.Namespace}, Err: err}
	}

	check := repo.GateCheck{Canary: repo.PVC{Namespace: g.opts.Namespace, Name: repo.CanaryName(nonce)}, Nonce: nonce}

	g.mu.Lock()
	g.pending[nonce] = false
	g.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, g.opts.Timeout)
	check.DryRun, check.Err = g.opts.API.DryRunCreatePVC(ctx, check.Canary, g.opts.Labels, map[string]string{
		CanaryAnnotation: "gate self-test: a server-side dry run of a reserved name, never stored (backup-oracle README, The gate self-test)",
	})

	cancel()

	g.mu.Lock()
	check.Seen = g.pending[nonce]
	delete(g.pending, nonce)
	g.mu.Unlock()

	return check
}

// Saw tells the gate the oracle answered a lookup of a canary name (repo.CanaryNonce). Only the
// nonce of a check in flight, in the canary namespace, counts; any other is ignored (and was
// answered Unknown all the same).
func (g *Gate) Saw(pvc repo.PVC) {
	nonce, ok := repo.CanaryNonce(pvc)
	if !ok || pvc.Namespace != g.opts.Namespace {
		return
	}

	g.mu.Lock()
	defer g.mu.Unlock()

	if _, inFlight := g.pending[nonce]; inFlight {
		g.pending[nonce] = true
	}
}

// Status is the last check's result with the current coverage report. No I/O.
func (g *Gate) Status() repo.GateStatus {
	g.mu.Lock()
	st := g.status
	g.mu.Unlock()

	st.Uncovered = g.uncovered()

	return st
}

func (g *Gate) uncovered() []repo.UncoveredNamespace {
	if g.opts.Inventory == nil || len(g.opts.Excluded) == 0 {
		return nil
	}

	return repo.Uncovered(g.opts.Inventory.Inventory(), g.opts.Excluded)
}

// log reports the first check and every change of state (a warning unless armed), and every
// other check at debug.
func (g *Gate) log(prev repo.GateState, first bool, st repo.GateStatus) {
	attrs := []any{"state", st.State, "reason", st.Reason, "canary", st.Canary.String()}

	switch {
	case prev == st.State && !first:
		g.opts.Logger.Debug("gate self-test", attrs...)
	case st.State == repo.GateArmed:
		g.opts.Logger.Info("gate self-test: armed", append(attrs, "previous", prev)...)
	default:
		g.opts.Logger.Warn("gate self-test: the gate is not armed", append(attrs, "previous", prev)...)
	}
}
