package cache

import (
	"context"
	"errors"
	"fmt"

	"github.com/backup-oracle/backup-oracle/repo"
)

// Group asks several caches, in order of preference, and combines their answers with
// repo.Combine: Restore from the first backend with a snapshot, Fresh only when every backend is
// authoritative and empty. It is safe for concurrent use.
type Group []*Cache

// Lookup asks every cache and combines the answers.
func (g Group) Lookup(ctx context.Context, pvc repo.PVC) repo.Answer {
	return g.LookupAt(ctx, pvc, repo.PointInTime{})
}

// LookupAt asks every cache for pvc restored at p and combines the answers: a backend whose
// snapshots p does not select is Unknown (repo.DecideAt), so Fresh still needs every backend
// to hold nothing at all.
func (g Group) LookupAt(ctx context.Context, pvc repo.PVC, p repo.PointInTime) repo.Answer {
	answers := make([]repo.Answer, len(g))
	for i, c := range g {
		answers[i] = c.LookupAt(ctx, pvc, p)
	}

	a := repo.Combine(pvc, answers)
	a.PointInTime = p

	return a
}

// Inventory lists every cache's inventory, in order.
func (g Group) Inventory() []repo.Inventory {
	out := make([]repo.Inventory, len(g))
	for i, c := range g {
		out[i] = c.Inventory()
	}

	return out
}

// Ready is nil only when every cache is ready: Fresh needs all of them.
func (g Group) Ready() error {
	if len(g) == 0 {
		return fmt.Errorf("%w: no backend configured", repo.ErrInvalidConfig)
	}

	var errs []error

	for _, c := range g {
		if err := c.Ready(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.Backend(), err))
		}
	}

	return errors.Join(errs...)
}

// Explain asks every cache, in order.
func (g Group) Explain(ctx context.Context, pvc repo.PVC) []repo.Explanation {
	out := make([]repo.Explanation, len(g))
	for i, c := range g {
		out[i] = c.Explain(ctx, pvc)
	}

	return out
}

// Status lists every cache's status, in order.
func (g Group) Status() []repo.IndexStatus {
	out := make([]repo.IndexStatus, len(g))
	for i, c := range g {
		out[i] = c.Status()
	}

	return out
}
