package repo

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
)

// Reloading returns a Backend that reads its secrets (with read) before every Load, opens the
// real backend (with open) the first time and again whenever the secrets changed, closing the
// previous one. S is the kind's set of secrets, compared with ==.
//
// A secret that cannot be read (a Secret file missing or empty) fails that Load with an error
// wrapping ErrUnavailable, so the backend answers "unknown" with the reason and the process
// stays up: a restart would not bring the Secret, and crash-looping admission services have
// caused cluster-wide outages. Every backend kind is built through it, so rotation behaves the
// same everywhere. A re-open is logged (without the secrets) when logger is not nil. It is safe
// for concurrent use.
func Reloading[S comparable](name string, logger *slog.Logger, read func() (S, error), open func(S) (Backend, error)) Backend {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	return &reloading[S]{name: name, logger: logger, read: read, open: open}
}

type reloading[S comparable] struct {
	name   string
	logger *slog.Logger
	read   func() (S, error)
	open   func(S) (Backend, error)

	mu      sync.Mutex
	cur     Backend
	secrets S
}

// Load implements Backend. The lock is held while choosing the backend, not during its Load: a
// load stuck in a library must not keep Close from returning.
func (r *reloading[S]) Load(ctx context.Context) (Index, error) {
	b, err := r.current(ctx)
	if err != nil {
		return nil, err
	}

	return b.Load(ctx)
}

func (r *reloading[S]) current(ctx context.Context) (Backend, error) {
	r.mu.Lock()
	defer r.mu.Unlock()

	s, err := r.read()
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", r.name, ErrUnavailable, err)
	}

	if r.cur == nil || s != r.secrets {
		if r.cur != nil {
			r.logger.Info("secrets changed, re-opening the backend with them", "backend", r.name)
			_ = r.cur.Close(ctx)
			r.cur = nil
		}

		b, err := r.open(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w: %w", r.name, ErrUnavailable, err)
		}

		r.cur, r.secrets = b, s
	}

	return r.cur, nil
}

// Close implements Backend.
func (r *reloading[S]) Close(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()

	if r.cur == nil {
		return nil
	}

	err := r.cur.Close(ctx)
	r.cur = nil

	return err
}
