package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/backup-oracle/backup-oracle/repo"
)

// Group asks several caches, in order of preference, combines their answers with repo.Combine
// (Restore from the first backend with a snapshot, Fresh only when every backend is
// authoritative and empty) and applies the guards (expected-backups ledger, near misses) to the
// result. It is safe for concurrent use.
type Group struct {
	caches   []*Cache
	guards   repo.Guards
	metrics  *Metrics
	logger   *slog.Logger
	onCanary func(repo.PVC)
	cutover  repo.Cutover
	waits    *cutoverWaits
	now      func() time.Time
}

// GroupOptions configure a Group.
type GroupOptions struct {
	Guards  repo.Guards
	Metrics *Metrics
	Logger  *slog.Logger
	// OnCanary is told of every lookup of a canary name (the gate self-test's Saw); nil: nobody.
	// It must not block.
	OnCanary func(repo.PVC)
	// Cutover, when declared, holds the PVCs whose final backup the colour being left has not
	// taken yet (repo.Cutover.Hold).
	Cutover repo.Cutover
	// Now is the clock of the cutover's waits (default time.Now).
	Now func() time.Time
}

// NewGroup returns a group of caches, in order of preference.
func NewGroup(caches []*Cache, opts GroupOptions) *Group {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}

	if opts.Now == nil {
		opts.Now = time.Now
	}

	return &Group{caches: caches, guards: opts.Guards, metrics: opts.Metrics, logger: opts.Logger, onCanary: opts.OnCanary,
		cutover: opts.Cutover, waits: newCutoverWaits(), now: opts.Now}
}

// Caches returns the group's caches, in order.
func (g *Group) Caches() []*Cache { return g.caches }

// Ledger returns the expected-backups ledger the guards use, nil without one.
func (g *Group) Ledger() repo.Ledger { return g.guards.Ledger }

// Lookup asks every cache for q's PVC restored at q's point in time (a backend whose snapshots
// the point in time does not select is Unknown: repo.DecideAt), from the source q names if it
// names one, combines the answers (a named source none holds is Unknown:
// repo.SettleRestoreSource; a PVC of a declared cutover whose final backup is missing is Unknown:
// repo.Cutover.Hold) and applies the guards. Every guard event is counted, and logged when it
// lets a near miss through (warned, accepted). A canary name (the gate self-test's, or one that
// merely looks like it) is Unknown whatever the backends hold, before any is asked:
// repo.CanaryAnswer.
func (g *Group) Lookup(ctx context.Context, q repo.Query) repo.Answer {
	if _, ok := repo.CanaryNonce(q.PVC); ok {
		if g.onCanary != nil {
			g.onCanary(q.PVC)
		}

		return repo.CanaryAnswer(q.PVC)
	}

	answers := make([]repo.Answer, len(g.caches))
	for i, c := range g.caches {
		answers[i] = c.LookupQuery(ctx, q)
	}

	if held, w, ok := g.cutover.Hold(q.PVC, answers, q.PointInTime, g.now()); ok {
		g.waits.note(*w, g.now())
		held.PointInTime = q.PointInTime

		return held
	}

	if !g.cutover.IsZero() {
		g.waits.clear(q.PVC)
	}

	combined := repo.Combine(q.PVC, answers)
	combined.PointInTime = q.PointInTime
	combined = repo.SettleRestoreSource(combined, q)

	if combined.RestoreSource != "" {
		g.metrics.observeRestoreSource(combined.Decision)
	}

	a, events := g.guards.Apply(combined, q)

	for _, e := range events {
		g.metrics.observeGuard(e)

		switch e.Outcome {
		case "accepted":
			g.logger.Info("near miss accepted: answering as if none existed", "pvc", q.PVC.String(), "nearMisses", nearMissSources(a.NearMisses))
		case "warned":
			g.logger.Warn("near miss (NEAR_MISS=warn): answering fresh", "pvc", q.PVC.String(), "nearMisses", nearMissSources(a.NearMisses))
		}
	}

	return a
}

// Inventory lists every cache's inventory, in order.
func (g *Group) Inventory() []repo.Inventory {
	out := make([]repo.Inventory, len(g.caches))
	for i, c := range g.caches {
		out[i] = c.Inventory()
	}

	return out
}

// Ready is nil only when every cache is ready: Fresh needs all of them.
func (g *Group) Ready() error {
	if len(g.caches) == 0 {
		return fmt.Errorf("%w: no backend configured", repo.ErrInvalidConfig)
	}

	var errs []error

	for _, c := range g.caches {
		if err := c.Ready(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.Backend(), err))
		}
	}

	return errors.Join(errs...)
}

// Explain asks every cache, in order.
func (g *Group) Explain(ctx context.Context, pvc repo.PVC) []repo.Explanation {
	out := make([]repo.Explanation, len(g.caches))
	for i, c := range g.caches {
		out[i] = c.Explain(ctx, pvc)
	}

	return out
}

// Status lists every cache's status, in order.
func (g *Group) Status() []repo.IndexStatus {
	out := make([]repo.IndexStatus, len(g.caches))
	for i, c := range g.caches {
		out[i] = c.Status()
	}

	return out
}

// nearMissSources names near misses for a log line as the API does: "<backend> <source>: <rule>".
func nearMissSources(ns []repo.NearMiss) []string {
	out := make([]string, 0, len(ns))
	for _, n := range ns {
		out = append(out, n.Backend+" "+n.Source+": "+n.Rule)
	}

	return out
}
