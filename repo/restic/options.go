package restic

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/backup-oracle/backup-oracle/repo"
)

// Layouts of repositories in the storage.
const (
	// LayoutPerPVC: one repository per PVC at the expanded RepositoryTemplate (VolSync's default).
	LayoutPerPVC = "per-pvc"
	// LayoutShared: one repository at the expanded RepositoryTemplate ({prefix} only) whose
	// snapshots carry the tag "<namespace>/<pvc>". Needs the password: tags are encrypted.
	LayoutShared = "shared"
)

// Defaults applied by New to zero-valued fields.
const (
	DefaultRepositoryTemplate = "{prefix}/{namespace}/{pvc}"
	DefaultSharedTemplate     = "{prefix}"
	DefaultRegion             = "us-east-1"
	DefaultRequestTimeout     = 10 * time.Second
	DefaultMaxAttempts        = 3
	DefaultListConcurrency    = 16
	DefaultVerifyConcurrency  = 2
	DefaultKeyCacheSize       = 4096
	DefaultVerifyWait         = 10 * time.Second
	DefaultVerifyTimeout      = 2 * time.Minute
	DefaultLookupConcurrency  = 32
)

// Options configures a Repo. Field comments name the environment variables cmd/ maps onto them.
type Options struct {
	// Dir, for BACKEND_TYPE=restic-fs: the local or NFS directory holding the repositories.
	// Exactly one of Dir and S3.Bucket must be set.
	Dir string
	// S3, for BACKEND_TYPE=restic-s3 (alias s3).
	S3 S3Options
	// Prefix (S3_PREFIX) is the value of {prefix}: the key prefix (S3) or sub-directory (Dir)
	// under which repositories live, e.g. "volsync". May be empty.
	Prefix string
	// Layout is LayoutPerPVC (default) or LayoutShared.
	Layout string
	// RepositoryTemplate locates a PVC's repository, with the placeholders {prefix}, {namespace}
	// and {pvc}. Default "{prefix}/{namespace}/{pvc}" (per-pvc) or "{prefix}" (shared, where
	// {namespace} and {pvc} are not allowed).
	RepositoryTemplate string
	// Password (RESTIC_PASSWORD or RESTIC_PASSWORD_FILE) enables verification: every snapshot is
	// decrypted and authenticated and reports its time, host, paths and tags. Without it, a
	// snapshot exists when an object exists under the repository's snapshots/.
	Password repo.Secret
	// Passwords (RESTIC_PASSWORDS_DIR), per-PVC layout only: a PVC's own repository password,
	// used instead of Password for that PVC's repository (VolSync users often give each PVC's
	// repository its own). A repository with neither is listed without verification.
	Passwords map[repo.PVC]repo.Secret `json:"-"`
	// ListConcurrency bounds concurrent list requests while building an index (default 16).
	ListConcurrency int
	// VerifyConcurrency bounds concurrent repository verifications, hence scrypt key derivations
	// (each takes tens to hundreds of milliseconds and up to 64 MiB with restic's parameters).
	// Default 2.
	VerifyConcurrency int
	// KeyCacheSize bounds the number of master keys kept in memory (default 4096).
	KeyCacheSize int
	// VerifyWait is how long Load waits for pending verifications before returning the index
	// (default 10s). Verifications still running continue in the background and are used by the
	// next Load; until then their PVCs answer an error wrapping repo.ErrUnverifiable.
	VerifyWait time.Duration
	// VerifyTimeout bounds one repository's verification once started, key derivation included
	// (default 2m); the time spent queueing behind other repositories is not counted.
	VerifyTimeout time.Duration
	// FleetRefreshInterval (RESTIC_FLEET_REFRESH_INTERVAL), for the per-PVC layout: how often a
	// load lists every repository's snapshots/ (about one request per PVC). Between two such
	// listings a load costs one request (the prefix, which proves the storage answers and shows
	// namespaces come and go) and every lookup confirms its PVC with one listing of that
	// repository's snapshots/ (see Index.Find), so a "fresh" never rests on the older listing.
	// Zero (the default here) lists the fleet at every load and lookups read the index alone.
	FleetRefreshInterval time.Duration
	// LookupConcurrency bounds the listings lookups send at once (default 32).
	LookupConcurrency int
	// LookupWait is how long a lookup waits for the verification it made urgent (a PVC whose
	// snapshots are not verified yet) before answering "not verified yet"; always within the
	// lookup's own deadline. Zero (the default here) does not wait.
	LookupWait time.Duration
	// RepositoryID (RESTIC_REPOSITORY_ID), for the shared layout: the id of the shared
	// repository (the "id" of its decrypted config, as `restic cat config` prints it; /status
	// shows it). Another id at the location fails every load (see repo.Pin). Empty: the first
	// id seen is remembered. Needs the password: the config is encrypted.
	RepositoryID string
	// Pin, when not nil, is used instead of a new one made from RepositoryID: share it between
	// the Repos that replace each other (repo.Reloading) so a changed id is noticed across them.
	Pin *repo.Pin `json:"-"`
	// Logger receives the line saying how to pin the shared repository (default: discarded).
	Logger *slog.Logger `json:"-"`
	// Now is the clock of the fleet refresh (default time.Now).
	Now func() time.Time `json:"-"`
}

// S3Options configures S3 access: the S3 configuration every S3 kind shares (one endpoint parser,
// one CA loader; repo.S3Config), with the keys themselves in AccessKey and SecretKey (the kind's
// Open reads the Secret files), plus what only this reader tunes.
type S3Options struct {
	repo.S3Config
	// MaxAttempts per request, retrying only transient errors, 5xx and throttling with
	// exponential backoff (default 3).
	MaxAttempts int
}

// withDefaults returns o with zero fields set to their defaults.
func (o Options) withDefaults() Options {
	if o.Layout == "" {
		o.Layout = LayoutPerPVC
	}

	if o.RepositoryTemplate == "" {
		o.RepositoryTemplate = DefaultRepositoryTemplate
		if o.Layout == LayoutShared {
			o.RepositoryTemplate = DefaultSharedTemplate
		}
	}

	setDefault(&o.ListConcurrency, DefaultListConcurrency)
	setDefault(&o.VerifyConcurrency, DefaultVerifyConcurrency)
	setDefault(&o.KeyCacheSize, DefaultKeyCacheSize)
	setDefault(&o.VerifyWait, DefaultVerifyWait)
	setDefault(&o.VerifyTimeout, DefaultVerifyTimeout)
	setDefault(&o.LookupConcurrency, DefaultLookupConcurrency)

	if o.Now == nil {
		o.Now = time.Now
	}

	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}

	if o.Pin == nil {
		o.Pin = newPin(o.RepositoryID)
	}

	if o.S3.Bucket != "" {
		setDefault(&o.S3.Region, DefaultRegion)
		setDefault(&o.S3.RequestTimeout, DefaultRequestTimeout)
		setDefault(&o.S3.MaxAttempts, DefaultMaxAttempts)
	}

	return o
}

func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

// Validate reports every problem of o (after defaults) at once, each wrapping
// repo.ErrInvalidConfig. Messages never contain secrets.
func (o Options) Validate() error { return o.validate(true) }

// validate checks o after defaults; location says whether Dir/S3 must name the storage.
func (o Options) validate(location bool) error {
	o = o.withDefaults()

	var errs []error

	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("restic: %w: "+format, append([]any{repo.ErrInvalidConfig}, args...)...))
	}

	switch {
	case !location:
	case o.Dir == "" && o.S3.Bucket == "":
		add("set either a directory or an S3 bucket")
	case o.Dir != "" && o.S3.Bucket != "":
		add("set a directory or an S3 bucket, not both")
	}

	if location && o.S3.Bucket != "" {
		errs = append(errs, o.S3.validate()...)
	}

	switch o.Layout {
	case LayoutPerPVC:
		if !strings.Contains(o.RepositoryTemplate, "{pvc}") || !strings.Contains(o.RepositoryTemplate, "{namespace}") {
			add("repository template %q must contain {namespace} and {pvc}", o.RepositoryTemplate)
		}
	case LayoutShared:
		if strings.Contains(o.RepositoryTemplate, "{pvc}") || strings.Contains(o.RepositoryTemplate, "{namespace}") {
			add("shared repository template %q must not contain {namespace} or {pvc}", o.RepositoryTemplate)
		}

		if o.Password == "" {
			add("the shared layout needs the password: snapshot tags are encrypted")
		}

		if len(o.Passwords) > 0 {
			add("per-PVC passwords (RESTIC_PASSWORDS_DIR) need the per-pvc layout: a shared repository has one password")
		}
	default:
		add("layout %q is neither %q nor %q", o.Layout, LayoutPerPVC, LayoutShared)
	}

	if o.RepositoryID != "" {
		errs = append(errs, o.pinProblems()...)
	}

	if rest := strings.NewReplacer("{prefix}", "", "{namespace}", "", "{pvc}", "").Replace(o.RepositoryTemplate); strings.ContainsAny(rest, "{}") {
		add("repository template %q: only the placeholders {prefix}, {namespace} and {pvc} are allowed", o.RepositoryTemplate)
	}

	for _, c := range []struct {
		name string
		v    int
	}{{"list concurrency", o.ListConcurrency}, {"verify concurrency", o.VerifyConcurrency}, {"key cache size", o.KeyCacheSize}, {"lookup concurrency", o.LookupConcurrency}} {
		if c.v < 1 {
			add("%s %d must be at least 1", c.name, c.v)
		}
	}

	if o.VerifyWait < 0 || o.VerifyTimeout < 0 {
		add("verify wait %s and verify timeout %s must not be negative", o.VerifyWait, o.VerifyTimeout)
	}

	if o.FleetRefreshInterval < 0 || o.LookupWait < 0 {
		add("fleet refresh interval %s and lookup wait %s must not be negative", o.FleetRefreshInterval, o.LookupWait)
	}

	return errors.Join(errs...)
}

func (s S3Options) validate() []error {
	errs := s.Problems()

	if s.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("restic: s3: %w: max attempts %d must be at least 1", repo.ErrInvalidConfig, s.MaxAttempts))
	}

	return errs
}
