package restic

import (
	"errors"
	"fmt"
	"net/url"
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
}

// S3Options configures S3 access.
type S3Options struct {
	// Endpoint (S3_ENDPOINT) is "host:port" or a URL "http(s)://host:port". Empty means AWS.
	Endpoint string
	// Bucket (S3_BUCKET).
	Bucket string
	// Region (S3_REGION), default "us-east-1".
	Region string
	// Secure (S3_SECURE) selects https for a "host:port" Endpoint; a URL's scheme wins.
	Secure bool
	// VirtualHostStyle addresses buckets as bucket.host; the default, path style, is what MinIO,
	// versitygw and most self-hosted servers need.
	VirtualHostStyle bool
	// CAFile is a PEM bundle trusted in addition to the system roots (self-signed servers).
	CAFile string
	// AccessKey (S3_ACCESS_KEY or _FILE) and SecretKey (S3_SECRET_KEY or _FILE): static
	// credentials. Both empty: the SDK's default chain (environment, web identity, instance role).
	AccessKey string
	SecretKey repo.Secret
	// RequestTimeout bounds each attempt of each request, body included (default 10s).
	RequestTimeout time.Duration
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
	default:
		add("layout %q is neither %q nor %q", o.Layout, LayoutPerPVC, LayoutShared)
	}

	if rest := strings.NewReplacer("{prefix}", "", "{namespace}", "", "{pvc}", "").Replace(o.RepositoryTemplate); strings.ContainsAny(rest, "{}") {
		add("repository template %q: only the placeholders {prefix}, {namespace} and {pvc} are allowed", o.RepositoryTemplate)
	}

	for _, c := range []struct {
		name string
		v    int
	}{{"list concurrency", o.ListConcurrency}, {"verify concurrency", o.VerifyConcurrency}, {"key cache size", o.KeyCacheSize}} {
		if c.v < 1 {
			add("%s %d must be at least 1", c.name, c.v)
		}
	}

	if o.VerifyWait < 0 || o.VerifyTimeout < 0 {
		add("verify wait %s and verify timeout %s must not be negative", o.VerifyWait, o.VerifyTimeout)
	}

	return errors.Join(errs...)
}

func (s S3Options) validate() []error {
	var errs []error

	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("restic: s3: %w: "+format, append([]any{repo.ErrInvalidConfig}, args...)...))
	}

	if s.Endpoint != "" {
		if _, err := s.endpointURL(); err != nil {
			shown := s.Endpoint
			if strings.Contains(shown, "@") {
				shown = "[redacted]"
			}

			add("endpoint %q: %v", shown, err)
		}
	}

	if (s.AccessKey == "") != (s.SecretKey == "") {
		add("set both the access key and the secret key, or neither to use the default credential chain")
	}

	if s.RequestTimeout < 0 {
		add("request timeout %s must not be negative", s.RequestTimeout)
	}

	if s.MaxAttempts < 1 {
		add("max attempts %d must be at least 1", s.MaxAttempts)
	}

	return errs
}

// endpointURL turns Endpoint into a base URL: "host:port" gets http or https per Secure.
func (s S3Options) endpointURL() (string, error) {
	raw := s.Endpoint
	if !strings.Contains(raw, "://") {
		scheme := "http"
		if s.Secure {
			scheme = "https"
		}

		raw = scheme + "://" + raw
	}

	u, err := url.Parse(raw)
	if err != nil {
		return "", errors.New("not a host:port or URL")
	}

	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("scheme %q is neither http nor https", u.Scheme)
	case u.Host == "":
		return "", errors.New("no host")
	case u.User != nil:
		return "", errors.New("credentials in the endpoint are not allowed")
	case u.Path != "" && u.Path != "/":
		return "", errors.New("a path is not allowed; use the prefix")
	}

	return u.Scheme + "://" + u.Host, nil
}
