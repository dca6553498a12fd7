package repo

import "errors"

// Error classes shared by every backend and by the server's status table. Backends wrap them with
// the operation and the resource: fmt.Errorf("kopia: open repository %q: %w", path, ErrUnavailable).
var (
	// ErrInvalidName: the request names something Kubernetes could not have created.
	ErrInvalidName = errors.New("invalid name")
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
)
