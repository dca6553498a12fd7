package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/backup-oracle/backup-oracle/cache"
	"github.com/backup-oracle/backup-oracle/repo/ledger"
	"github.com/backup-oracle/backup-oracle/server"
)

// errShuttingDown is /readyz's reason once SIGTERM arrived while the indexes are ready.
var errShuttingDown = fmt.Errorf("shutting down: SIGTERM received, finishing in-flight requests (%w)", server.ErrDraining) //nolint:gochecknoglobals // a sentinel error

// drainingOracle is the caches as the server sees them, with readiness failing once the
// process is stopping, so Kubernetes takes the pod out of the Service before it stops serving.
type drainingOracle struct {
	*cache.Group
	stopping *atomic.Bool
}

// Ready implements server.Oracle.
func (d drainingOracle) Ready() error {
	err := d.Group.Ready()

	switch {
	case d.stopping.Load() && err != nil: // not draining: its answers are not authoritative either
		return fmt.Errorf("shutting down: SIGTERM received: %w", err)
	case d.stopping.Load():
		return errShuttingDown
	}

	return err
}

// shutdown is how the process stops on SIGTERM.
type shutdown struct {
	stopping *atomic.Bool
	// delay: /readyz fails at once, but the listener keeps serving for delay, while Kubernetes
	// removes the pod from the Service's endpoints (no shell in the image for a preStop sleep).
	delay time.Duration
	// timeout bounds the wait for in-flight requests after the listener closes.
	timeout time.Duration
}

// runUntilShutdown runs the refreshers (the caches, and the expected-backups ledger every
// ledgerEvery), serves ln, and runs each of background (the gate self-test) once the server
// serves, until ctx is cancelled. Then /readyz fails
// at once, the server keeps serving for the shutdown delay, stops accepting, lets in-flight
// requests finish (at most the shutdown timeout; then their connections are closed) and waits
// for the refreshers. The whole stop is bounded by delay + timeout (+ a refresh's cancellation).
func runUntilShutdown(ctx context.Context, srv *http.Server, ln net.Listener, oracle *cache.Group, sd shutdown, ledgerEvery time.Duration,
	logger *slog.Logger, background ...func(context.Context)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var refreshers sync.WaitGroup

	for _, c := range oracle.Caches() {
		refreshers.Go(func() { c.Run(ctx) })
	}

	if l, ok := oracle.Ledger().(*ledger.File); ok {
		refreshers.Go(func() { reloadLedger(ctx, l, ledgerEvery, logger) })
	}

	served := make(chan error, 1)

	go func() {
		if srv.TLSConfig != nil {
			served <- srv.ServeTLS(ln, "", "") // the certificate comes from TLSConfig (reloaded)
			return
		}

		served <- srv.Serve(ln)
	}()

	for _, run := range background {
		refreshers.Go(func() { run(ctx) })
	}

	select {
	case <-ctx.Done():
	case err := <-served:
		cancel()
		refreshers.Wait()

		return fmt.Errorf("serve: %w", err)
	}

	sd.stopping.Store(true)
	logger.Info("shutting down", "delay", sd.delay.String(), "timeout", sd.timeout.String())

	select {
	case <-time.After(sd.delay):
	case err := <-served:
		logger.Warn("server stopped during the shutdown delay", "err", err)
	}

	shutdownCtx, done := context.WithTimeout(context.WithoutCancel(ctx), sd.timeout)
	defer done()

	if err := srv.Shutdown(shutdownCtx); err != nil {
		logger.Warn("shutdown: in-flight requests cut", "err", err)
		_ = srv.Close()
	}

	cancel()
	refreshers.Wait()
	logger.Info("stopped")

	return nil
}
