package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/backup-oracle/backup-oracle/cache"
	"github.com/backup-oracle/backup-oracle/repo"
	"github.com/backup-oracle/backup-oracle/repo/ledger"
)

// checkConfig is --check-config: print the validated configuration and its warnings; with
// --open, also open every backend read-only and load its index once, as the server's first
// refresh would (the same empty-index and identity-fit refusals). It returns 0, or 1 when a
// backend cannot be loaded.
func checkConfig(ctx context.Context, cfg Config, stdout, stderr io.Writer) int {
	fmt.Fprintf(stdout, "configuration ok: listen %s, refresh every %s, max index age %s\n",
		cfg.listenAddress(), cfg.RefreshInterval, cfg.MaxIndexAge)

	for i, b := range cfg.Backends {
		fmt.Fprintf(stdout, "  backend %d: %s\n", i+1, describe(b))
	}

	for _, w := range cfg.Warnings {
		fmt.Fprintf(stdout, "  warning: %s\n", w)
	}

	fmt.Fprintf(stdout, "  near misses: %s\n", cfg.NearMiss)

	// The ledger is a file like the secrets: read it now, so a malformed one fails here and not
	// as "unknown" for every PVC after deployment.
	if cfg.ExpectedBackupsFile != "" {
		l := ledger.Open(cfg.ExpectedBackupsFile)
		if err := l.Reload(); err != nil {
			fmt.Fprintf(stdout, "  FAILED: expected-backups ledger: %v\n", err)
			return 1
		}

		fmt.Fprintf(stdout, "  expected-backups ledger %s: %d PVCs\n", cfg.ExpectedBackupsFile, l.Len())
	}

	if !cfg.Open {
		return 0
	}

	stateDir := cfg.StateDir
	if stateDir == "" {
		dir, err := os.MkdirTemp("", "backup-oracle-check-")
		if err != nil {
			fmt.Fprintf(stderr, "backup-oracle: create state directory: %v\n", err)
			return 1
		}

		defer os.RemoveAll(dir)

		stateDir = dir
	}

	logger := slog.New(slog.DiscardHandler)

	backends, err := openBackends(cfg.Backends, stateDir, logger)
	for _, b := range backends {
		defer b.Close(context.WithoutCancel(ctx)) //nolint:errcheck // read-only, exiting
	}

	if err != nil {
		fmt.Fprintf(stdout, "  FAILED: %v\n", err)
		return 1
	}

	code := 0

	for i, b := range backends {
		c, err := cache.New(cache.Options{
			Backend: cfg.Backends[i].Name, Loader: b, RefreshTimeout: cfg.RefreshTimeout, AllowEmpty: cfg.AllowEmpty, Logger: logger,
		})
		if err != nil {
			fmt.Fprintf(stdout, "  backend %d: FAILED: %v\n", i+1, err)
			code = 1

			continue
		}

		if err := c.Refresh(ctx); err != nil {
			fmt.Fprintf(stdout, "  backend %d: FAILED: %v\n", i+1, err)

			if r := c.Status().Refused; r != nil {
				fmt.Fprintf(stdout, "  backend %d: read %d sources (%d fit the identity settings), %d snapshots%s\n", i+1, r.Sources, r.Fitting, r.Snapshots, unrestorable(r.Unrestorable))
				printLayout(stdout, i+1, r.Layout)
			}

			code = 1

			continue
		}

		inv, err := settle(ctx, c, cfg.RefreshTimeout)
		if err != nil {
			fmt.Fprintf(stdout, "  backend %d: FAILED: %v\n", i+1, err)
			code = 1

			continue
		}

		st := c.Status().Stats
		id := ""
		if st.RepositoryID != "" {
			id = ", repository id " + st.RepositoryID
		}

		fmt.Fprintf(stdout, "  backend %d: opened: %d sources (%d fit the identity settings), %d snapshots%s%s\n",
			i+1, st.Sources, st.Fitting, st.Snapshots, unrestorable(st.Unrestorable), id)

		if printLayout(stdout, i+1, st.Layout) {
			code = 1
		}

		if printUnverified(stdout, i+1, inv, cfg.RefreshTimeout) {
			code = 1
		}
	}

	return code
}

// settleInterval is the pause between two refreshes of settle.
const settleInterval = time.Second

// settle refreshes c again while its inventory lists sources whose verification is pending
// (restic verifies each repository's snapshots with the password in the background, and a load
// waits for them at most restic.DefaultVerifyWait), for at most wait in all (the refresh
// timeout), and returns the last inventory. An error is a refresh that failed meanwhile.
func settle(ctx context.Context, c *cache.Cache, wait time.Duration) (repo.Inventory, error) {
	deadline := time.Now().Add(wait)

	for {
		inv := c.Inventory()
		if inv.Err != nil {
			return inv, inv.Err
		}

		if !slices.ContainsFunc(inv.Stored, func(s repo.Stored) bool { return errors.Is(s.Err, repo.ErrPending) }) || !time.Now().Before(deadline) {
			return inv, nil
		}

		select {
		case <-ctx.Done():
			return inv, nil
		case <-time.After(settleInterval):
		}

		if err := c.Refresh(ctx); err != nil {
			return inv, err
		}
	}
}

// printUnverified prints the sources the index cannot vouch for, by kind, and reports whether
// one is a wrong password: --check-config --open fails on that (the configuration is wrong), not
// on the data's own state (an interrupted backup, a damaged snapshot, a verification still
// running after wait), which the server answers unknown per PVC and /status shows.
func printUnverified(w io.Writer, n int, inv repo.Inventory, wait time.Duration) bool {
	var wrong, pending, other []repo.Stored

	for _, s := range inv.Stored {
		switch {
		case s.Err == nil:
		case errors.Is(s.Err, repo.ErrWrongPassword):
			wrong = append(wrong, s)
		case errors.Is(s.Err, repo.ErrPending):
			pending = append(pending, s)
		default:
			other = append(other, s)
		}
	}

	if len(wrong) > 0 {
		fmt.Fprintf(w, "  backend %d: FAILED: wrong password for %d repository(ies): no key file opens with it, so their PVCs are answered unknown:\n", n, len(wrong))
		printSources(w, wrong)
	}

	if len(pending) > 0 {
		fmt.Fprintf(w, "  backend %d: %d source(s) not verified within %s; the server goes on verifying them (answered unknown until then):\n", n, len(pending), wait)
		printSources(w, pending)
	}

	if len(other) > 0 {
		fmt.Fprintf(w, "  backend %d: %d source(s) the index cannot vouch for (answered unknown):\n", n, len(other))
		printSources(w, other)
	}

	return len(wrong) > 0
}

// maxListed is how many sources printSources names before it counts the rest.
const maxListed = 5

func printSources(w io.Writer, list []repo.Stored) {
	for i, s := range list {
		if i == maxListed {
			fmt.Fprintf(w, "    ... and %d more\n", len(list)-maxListed)
			break
		}

		fmt.Fprintf(w, "    %s: %v\n", s.Source, s.Err)
	}
}

// printLayout prints a minority fit of the identity settings (repo.LayoutFit) and reports
// whether there was one: --check-config --open fails on it, although the server only warns,
// because a configuration check is the moment to fix the settings or declare the other layouts.
func printLayout(w io.Writer, n int, f repo.LayoutFit) bool {
	if warning := f.Warning(); warning != "" {
		fmt.Fprintf(w, "  backend %d: FAILED: %s\n", n, warning)
		return true
	}

	return false
}

// unrestorable is the note on snapshots the movers would not restore, empty when there are none.
func unrestorable(n int) string {
	if n == 0 {
		return ""
	}

	return fmt.Sprintf(" (and %d snapshot(s) VolSync's mover would not restore, left out)", n)
}
