package repo

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
)

// Backend is one configured backup backend: it builds indexes and holds resources until closed.
// Load is called from one goroutine at a time (the cache's refresher); Close may be called at any
// time and more than once.
type Backend interface {
	// Load builds a complete, immutable index. An error means no authoritative index could be
	// built (wrap ErrUnavailable); a partial listing must never be returned as an index.
	Load(ctx context.Context) (Index, error)
	// Close releases the backend's resources (connections, background work). Indexes already
	// returned stay usable.
	Close(ctx context.Context) error
}

// Kind is one backend kind of the registry (see package repo/all): its names, what it reads,
// and how to make a configuration for it.
type Kind struct {
	// Name is what BACKEND_TYPE and a backends file's "type" accept, e.g. "kopia-fs".
	Name string
	// Aliases are other names accepted for the kind (the predecessor's "s3").
	Aliases []string
	// Summary says in one line what the kind reads, for --help and `backup-oracle kinds`.
	Summary string
	// New returns a configuration holding the kind's defaults.
	New func() BackendConfig
}

// BackendConfig is one kind's configuration. Each kind owns its type: defaults (set by Kind.New),
// the settings it reads (Fields), validation and description. Implementations are pointers
// bound by Fields, so setting a field's Value changes the configuration.
type BackendConfig interface {
	// Fields lists every setting of the kind, bound to this configuration.
	Fields() []Field
	// Validate returns every problem of the configuration at once (errors.Join), each wrapping
	// ErrInvalidConfig. It does no I/O: secrets and repositories are read by Load.
	Validate() error
	// Describe summarises the configuration in one line, without secrets.
	Describe() string
	// Open returns the backend. It does no I/O and reads no secret: the returned Backend reads
	// its secrets before every Load (see Reloading), so a Secret that is missing at start or
	// rotated later needs no restart.
	Open(env OpenEnv) (Backend, error)
}

// OpenEnv is what the program gives every backend it opens.
type OpenEnv struct {
	// Name is the backend's name (answers, metrics, logs).
	Name string
	// StateDir is a private, writable directory for this backend alone.
	StateDir string
	Logger   *slog.Logger
}

// Registry lists the backend kinds a program accepts, in the order they are documented.
type Registry []Kind

// Lookup returns the kind called name (or one of its aliases). An unknown name is an error
// wrapping ErrInvalidConfig that lists every valid name.
func (r Registry) Lookup(name string) (Kind, error) {
	for _, k := range r {
		if k.Name == name || slices.Contains(k.Aliases, name) {
			return k, nil
		}
	}

	return Kind{}, fmt.Errorf("%w: unknown type %q: valid types are %s", ErrInvalidConfig, name, strings.Join(r.Names(), ", "))
}

// Names lists every accepted name: each kind followed by its aliases.
func (r Registry) Names() []string {
	var out []string
	for _, k := range r {
		out = append(out, k.Name)
		out = append(out, k.Aliases...)
	}

	return out
}
