package repo

import (
	"errors"
	"fmt"
)

// Error classes shared by every backend and by the server's status table. Backends wrap them with
// the operation and the resource: fmt.Errorf("kopia: open repository %q: %w", path, ErrUnavailable).
var (
	// ErrInvalidName: the request names something Kubernetes could not have created.
	ErrInvalidName = errors.New("invalid name")
	// ErrInvalidParameter: a request parameter (a query such as asOf or previous) is malformed.
	ErrInvalidParameter = errors.New("invalid parameter")
	// ErrInvalidConfig: the identity or backend configuration cannot be used.
	ErrInvalidConfig = errors.New("invalid configuration")
	// ErrUnavailable: the backend could not be read (missing, unreadable, wrong password, timeout).
	ErrUnavailable = errors.New("backend unavailable")
	// ErrNotLoaded: no index has been built yet.
	ErrNotLoaded = errors.New("index not loaded")
	// ErrStale: the last successful index refresh is older than the configured bound.
	ErrStale = errors.New("index stale")
	// ErrUnverifiable: snapshots exist but cannot be read or authenticated.
	ErrUnverifiable = errors.New("snapshot unverifiable")
	// ErrPending: snapshots exist whose verification is queued or running; the answer may change
	// within seconds, so it is never memoised.
	ErrPending = errors.New("verification pending")
	// ErrWrongPassword: the configured password opens none of a repository's keys (restic's key
	// files). It comes with ErrUnverifiable: the configuration is wrong, not the data, so
	// --check-config --open fails on it.
	ErrWrongPassword = errors.New("wrong password")
)

// Problemf formats a configuration problem: the error wraps ErrInvalidConfig but its message is
// only the formatted text, so a list of problems reads as the operator's to-do list.
func Problemf(format string, a ...any) error {
	return problem{fmt.Errorf(format, a...)}
}

type problem struct{ err error }

func (p problem) Error() string { return p.err.Error() }
func (p problem) Unwrap() error { return p.err }

// Is makes errors.Is(err, ErrInvalidConfig) true.
func (p problem) Is(target error) bool { return target == ErrInvalidConfig }
