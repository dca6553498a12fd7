package restic

import (
	"errors"
	"fmt"
	"time"

	"github.com/backup-oracle/backup-oracle/repo"
)

// Kind names.
const (
	KindS3 = "restic-s3"
	KindFS = "restic-fs"
	// kindS3Alias is the predecessor service's name for restic-s3.
	kindS3Alias = "s3"
)

// Defaults of the kinds (restic.Options leaves them off for library callers).
const (
	// DefaultS3FleetRefreshInterval: restic-s3 lists every repository's snapshots/ every 10
	// minutes, not at every refresh; lookups confirm their PVC with one listing of their own. At
	// 1,000 PVCs and the 30 s refresh that is about 6,200 requests an hour instead of 122,000
	// (README.md, Benchmarks). restic-fs keeps listing at every refresh: a directory costs nothing
	// per request.
	DefaultS3FleetRefreshInterval = 10 * time.Minute
	// DefaultLookupWait: a lookup of a PVC whose snapshots are not verified yet waits this long
	// for the verification it put first in line (within the lookup's own timeout).
	DefaultLookupWait = time.Second
)

// S3Kind is restic repositories in an S3 bucket.
func S3Kind() repo.Kind {
	return repo.Kind{
		Name: KindS3, Aliases: []string{kindS3Alias},
		Summary: "restic repositories in an S3 bucket: one per PVC (VolSync's restic mover) or one shared, tagged <namespace>/<pvc>",
		New: func() repo.BackendConfig {
			return &S3Config{Restic: Settings{FleetRefreshInterval: DefaultS3FleetRefreshInterval}}
		},
	}
}

// FSKind is restic repositories in a directory.
func FSKind() repo.Kind {
	return repo.Kind{
		Name:    KindFS,
		Summary: "restic repositories in a directory (an NFS share or an existing claim): one per PVC, or one shared",
		New:     func() repo.BackendConfig { return &FSConfig{} },
	}
}

// Settings are what every restic kind reads besides its storage.
type Settings struct {
	Layout             string      `yaml:"layout"`
	RepositoryTemplate string      `yaml:"repositoryTemplate"`
	Password           repo.Secret `yaml:"-"`
	PasswordFile       string      `yaml:"passwordFile"`
	// PasswordsDir holds per-PVC repository passwords (readPasswordsDir).
	PasswordsDir string `yaml:"passwordsDir"`
	// FleetRefreshInterval is Options.FleetRefreshInterval (0: list the fleet at every refresh).
	FleetRefreshInterval time.Duration `yaml:"fleetRefreshInterval"`
	// RepositoryID pins the shared repository (Options.RepositoryID).
	RepositoryID string `yaml:"repositoryID"`
}

// PasswordRef is the password as given.
func (s *Settings) PasswordRef() repo.SecretRef {
	return repo.SecretRef{Value: s.Password, File: s.PasswordFile}
}

func (s *Settings) fields() []repo.Field {
	return []repo.Field{
		{Flag: "restic-layout", Env: []string{"RESTIC_LAYOUT"}, YAML: "restic.layout", Usage: "per-pvc (one repository per PVC) or shared (snapshots tagged <namespace>/<pvc>)", Value: (*repo.StringValue)(&s.Layout)},
		{Flag: "restic-repository-template", Env: []string{"RESTIC_REPOSITORY_TEMPLATE"}, YAML: "restic.repositoryTemplate", Usage: "a PVC's repository ({prefix}, {namespace}, {pvc}); default {prefix}/{namespace}/{pvc}", Value: (*repo.StringValue)(&s.RepositoryTemplate)},
		{Flag: "restic-password", Env: []string{"RESTIC_PASSWORD"}, Usage: "restic password: every snapshot is then decrypted and authenticated (prefer the file)", Value: (*repo.SecretValue)(&s.Password)},
		{Flag: "restic-password-file", Env: []string{"RESTIC_PASSWORD_FILE"}, YAML: "restic.passwordFile", Usage: "file holding the restic password, re-read before every refresh", Value: (*repo.StringValue)(&s.PasswordFile)},
		{Flag: "restic-passwords-dir", Env: []string{"RESTIC_PASSWORDS_DIR"}, YAML: "restic.passwordsDir", Usage: "per-pvc layout: a directory of files <namespace>.<pvc> (a mounted Secret), each the password of that PVC's repository, used instead of RESTIC_PASSWORD for it; re-read before every refresh", Value: (*repo.StringValue)(&s.PasswordsDir)},
		{Flag: "restic-fleet-refresh-interval", Env: []string{"RESTIC_FLEET_REFRESH_INTERVAL"}, YAML: "restic.fleetRefreshInterval", Usage: "per-pvc layout: how often every repository's snapshots/ is listed (0: at every refresh); in between, each lookup lists its own PVC's. Default 10m for restic-s3, 0 for restic-fs", Value: (*repo.DurationValue)(&s.FleetRefreshInterval)},
		{Flag: "restic-repository-id", Env: []string{"RESTIC_REPOSITORY_ID"}, YAML: "restic.repositoryID", Usage: "shared layout: the shared repository's id (\"id\" of restic cat config, or /status); another repository at the location is refused. Needs the password", Value: (*repo.StringValue)(&s.RepositoryID)},
	}
}

// validate checks the settings with the storage of o; secrets are not read.
func (s *Settings) validate(o Options) []error {
	var errs []error
	if err := s.PasswordRef().Validate("RESTIC_PASSWORD"); err != nil {
		errs = append(errs, err)
	}

	o.Layout, o.RepositoryTemplate, o.FleetRefreshInterval = s.Layout, s.RepositoryTemplate, s.FleetRefreshInterval
	o.RepositoryID = s.RepositoryID
	if s.PasswordRef().Set() {
		o.Password = "set"
	}

	if s.PasswordsDir != "" {
		o.Passwords = map[repo.PVC]repo.Secret{{}: "set"}
	}

	if err := o.Validate(); err != nil {
		errs = append(errs, err)
	}

	return errs
}

func (s *Settings) describe() string {
	layout := s.Layout
	if layout == "" {
		layout = LayoutPerPVC
	}

	fleet := "at every refresh"
	if s.FleetRefreshInterval > 0 && layout == LayoutPerPVC {
		fleet = "every " + s.FleetRefreshInterval.String() + ", lookups confirm their PVC"
	}

	verify := fmt.Sprint(s.PasswordRef().Set())
	if s.PasswordsDir != "" {
		verify = "with the per-PVC passwords of " + s.PasswordsDir
		if s.PasswordRef().Set() {
			verify += ", else RESTIC_PASSWORD"
		}
	}

	out := fmt.Sprintf("layout %s, verify snapshots %s, fleet listed %s", layout, verify, fleet)

	switch {
	case s.RepositoryID != "":
		out += ", repository pinned to " + s.RepositoryID
	case layout == LayoutShared:
		out += ", repository not pinned (RESTIC_REPOSITORY_ID)"
	}

	return out
}

// secrets are what a restic backend reads before every load.
type secrets struct {
	password             repo.Secret
	passwords            repo.Secret // readPasswordsDir's, "" without RESTIC_PASSWORDS_DIR
	accessKey, secretKey repo.Secret
}

// open returns a backend that re-reads the secrets before every load and builds a new Repo
// when they change (a new key derivation, so a rotated password takes effect).
func (s Settings) open(env repo.OpenEnv, base Options, readKeys func() (repo.Secret, repo.Secret, error)) repo.Backend {
	read := func() (secrets, error) {
		var out secrets

		if s.PasswordRef().Set() {
			pw, err := s.PasswordRef().Read()
			if err != nil {
				return secrets{}, fmt.Errorf("restic password: %w", err)
			}

			out.password = pw
		}

		if s.PasswordsDir != "" {
			pws, err := readPasswordsDir(s.PasswordsDir)
			if err != nil {
				return secrets{}, err
			}

			out.passwords = pws
		}

		if readKeys != nil {
			var err error
			if out.accessKey, out.secretKey, err = readKeys(); err != nil {
				return secrets{}, err
			}
		}

		return out, nil
	}

	pin := newPin(s.RepositoryID) // shared by the Repos a secret rotation replaces

	return repo.Reloading(env.Name, env.Logger, read, func(sec secrets) (repo.Backend, error) {
		o := base
		o.Layout, o.RepositoryTemplate, o.Password = s.Layout, s.RepositoryTemplate, sec.password
		if sec.passwords != "" {
			o.Passwords = decodePasswords(sec.passwords)
		}
		o.RepositoryID, o.Pin, o.Logger = s.RepositoryID, pin, env.Logger
		o.FleetRefreshInterval, o.LookupWait = s.FleetRefreshInterval, DefaultLookupWait
		o.S3.AccessKey, o.S3.SecretKey, o.S3.AccessKeyFile, o.S3.SecretKeyFile = sec.accessKey, sec.secretKey, "", ""

		r, err := New(o)
		if err != nil {
			return nil, err
		}

		return r, nil
	})
}

// S3Config configures a restic-s3 backend.
type S3Config struct {
	S3     repo.S3Config `yaml:"s3"`
	Restic Settings      `yaml:"restic"`
}

func (c *S3Config) options() Options {
	return Options{S3: S3Options{S3Config: c.S3}, Prefix: c.S3.Prefix}
}

// Fields implements repo.BackendConfig.
func (c *S3Config) Fields() []repo.Field { return append(c.S3.Fields(), c.Restic.fields()...) }

// Validate implements repo.BackendConfig.
func (c *S3Config) Validate() error {
	if c.S3.Bucket == "" {
		// Options.Validate would say "set either a directory or an S3 bucket".
		return errors.Join(append(c.S3.Problems(), c.Restic.validate(Options{Dir: "-"})...)...)
	}

	return errors.Join(c.Restic.validate(c.options())...)
}

// Describe implements repo.BackendConfig.
func (c *S3Config) Describe() string {
	ep, _ := c.S3.ParseEndpoint()

	return fmt.Sprintf("bucket %s at %s, prefix %q; %s", c.S3.Bucket, ep.URL(), c.S3.Prefix, c.Restic.describe())
}

// Open implements repo.BackendConfig.
func (c *S3Config) Open(env repo.OpenEnv) (repo.Backend, error) {
	cfg := c.S3

	return c.Restic.open(env, c.options(), cfg.Credentials), nil
}

// FSSettings is the "restic" section of a restic-fs backend.
type FSSettings struct {
	// Path is the directory holding the repositories.
	Path string `yaml:"path"`
	// Prefix is the {prefix} of the template: a sub-directory of Path.
	Prefix   string `yaml:"prefix"`
	Settings `yaml:",inline"`
}

// FSConfig configures a restic-fs backend.
type FSConfig struct {
	Restic FSSettings `yaml:"restic"`
}

func (c *FSConfig) options() Options { return Options{Dir: c.Restic.Path, Prefix: c.Restic.Prefix} }

// Fields implements repo.BackendConfig.
func (c *FSConfig) Fields() []repo.Field {
	return append([]repo.Field{
		{Flag: "restic-repository-path", Env: []string{"RESTIC_REPOSITORY_PATH"}, YAML: "restic.path", Usage: "directory holding the restic repositories", Value: (*repo.StringValue)(&c.Restic.Path)},
		{Flag: "restic-prefix", Env: []string{"RESTIC_PREFIX"}, YAML: "restic.prefix", Usage: "{prefix} of the restic template for restic-fs: a sub-directory of the repository path", Value: (*repo.StringValue)(&c.Restic.Prefix)},
	}, c.Restic.fields()...)
}

// Validate implements repo.BackendConfig.
func (c *FSConfig) Validate() error {
	var errs []error
	if c.Restic.Path == "" {
		errs = append(errs, repo.Problemf("RESTIC_REPOSITORY_PATH (restic.path) is required"))
	}

	o := c.options()
	if o.Dir == "" {
		o.Dir = "-" // reported above
	}

	return errors.Join(append(errs, c.Restic.validate(o)...)...)
}

// Describe implements repo.BackendConfig.
func (c *FSConfig) Describe() string {
	return fmt.Sprintf("directory %s, prefix %q; %s", c.Restic.Path, c.Restic.Prefix, c.Restic.describe())
}

// Open implements repo.BackendConfig.
func (c *FSConfig) Open(env repo.OpenEnv) (repo.Backend, error) {
	return c.Restic.open(env, c.options(), nil), nil
}
