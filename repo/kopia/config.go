package kopia

import (
	"errors"
	"fmt"

	"github.com/backup-oracle/backup-oracle/repo"
)

// Kind names.
const (
	KindFS = "kopia-fs"
	KindS3 = "kopia-s3"
)

// FSKind is a Kopia repository in a directory (the NFS share the movers write to).
func FSKind() repo.Kind {
	return repo.Kind{
		Name: KindFS, Summary: "a Kopia repository in a directory (the NFS share VolSync's Kopia mover writes to)",
		New: func() repo.BackendConfig { return &FSConfig{Kopia: FSSettings{Settings: defaultSettings()}} },
	}
}

// S3Kind is a Kopia repository in an S3 bucket.
func S3Kind() repo.Kind {
	return repo.Kind{
		Name: KindS3, Summary: "a Kopia repository in an S3 bucket, read through Kopia's own S3 storage",
		New: func() repo.BackendConfig { return &S3Config{Kopia: defaultSettings()} },
	}
}

// Settings are what every Kopia kind reads besides its storage: the repository password and the
// identity templates that map a PVC to the source VolSync's Kopia mover writes (repo.KopiaIdentity).
type Settings struct {
	Password           repo.Secret `yaml:"-"`
	PasswordFile       string      `yaml:"passwordFile"`
	SourceNameTemplate string      `yaml:"sourceNameTemplate"`
	UsernameTemplate   string      `yaml:"usernameTemplate"`
	HostnameTemplate   string      `yaml:"hostnameTemplate"`
	Path               string      `yaml:"path"`
	// RepositoryID pins the repository (see Pin).
	RepositoryID string `yaml:"repositoryID"`
	// OtherSchemes declares the layouts the repository holds on purpose (repo.ParseSchemes).
	OtherSchemes string `yaml:"otherSchemes"`
}

func defaultSettings() Settings {
	id := repo.DefaultKopiaIdentity()
	return Settings{SourceNameTemplate: id.SourceName, Path: id.Path}
}

// PasswordRef is the password as given.
func (s *Settings) PasswordRef() repo.SecretRef {
	return repo.SecretRef{Value: s.Password, File: s.PasswordFile}
}

// Identity is the identity the templates describe.
func (s *Settings) Identity() repo.KopiaIdentity {
	id := repo.DefaultKopiaIdentity()
	if s.SourceNameTemplate != "" {
		id.SourceName = s.SourceNameTemplate
	}

	if s.Path != "" {
		id.Path = s.Path
	}

	id.UserName, id.HostName = s.UsernameTemplate, s.HostnameTemplate

	return id
}

func (s *Settings) fields() []repo.Field {
	return []repo.Field{
		{Flag: "kopia-password", Env: []string{"KOPIA_PASSWORD"}, Usage: "Kopia repository password (prefer the file)", Value: (*repo.SecretValue)(&s.Password)},
		{Flag: "kopia-password-file", Env: []string{"KOPIA_PASSWORD_FILE"}, YAML: "kopia.passwordFile", Usage: "file holding the Kopia password, re-read before every refresh", Value: (*repo.StringValue)(&s.PasswordFile)},
		{Flag: "kopia-source-name-template", Env: []string{"KOPIA_SOURCE_NAME_TEMPLATE"}, YAML: "kopia.sourceNameTemplate", Usage: "ReplicationSource name for a PVC ({namespace}, {pvc}); the username is derived from it", Value: (*repo.StringValue)(&s.SourceNameTemplate)},
		{Flag: "kopia-username-template", Env: []string{"KOPIA_USERNAME_TEMPLATE"}, YAML: "kopia.usernameTemplate", Usage: "explicit Kopia username (spec.kopia.username); empty: derived from the source name", Value: (*repo.StringValue)(&s.UsernameTemplate)},
		{Flag: "kopia-hostname-template", Env: []string{"KOPIA_HOSTNAME_TEMPLATE"}, YAML: "kopia.hostnameTemplate", Usage: "explicit Kopia hostname (spec.kopia.hostname); empty: the namespace", Value: (*repo.StringValue)(&s.HostnameTemplate)},
		{Flag: "kopia-path", Env: []string{"KOPIA_PATH"}, YAML: "kopia.path", Usage: "Kopia source path (spec.kopia.sourcePathOverride)", Value: (*repo.StringValue)(&s.Path)},
		{Flag: "kopia-other-schemes", Env: []string{"KOPIA_OTHER_SCHEMES"}, YAML: "kopia.otherSchemes", Usage: "source-name templates of other layouts the repository holds on purpose, comma-separated (e.g. {pvc}-volsync): they count as fitting and remain near-miss schemes", Value: (*repo.StringValue)(&s.OtherSchemes)},
		{Flag: "kopia-repository-id", Env: []string{"KOPIA_REPOSITORY_ID"}, YAML: "kopia.repositoryID", Usage: "the repository's unique id (uniqueIDHex of kopia repository status --json, or /status): another repository at the location is refused", Value: (*repo.StringValue)(&s.RepositoryID)},
	}
}

func (s *Settings) validate() []error {
	var errs []error

	if err := s.PasswordRef().Validate("KOPIA_PASSWORD"); err != nil {
		errs = append(errs, err)
	}

	if !s.PasswordRef().Set() {
		errs = append(errs, repo.Problemf("KOPIA_PASSWORD or KOPIA_PASSWORD_FILE (kopia.passwordFile) is required"))
	}

	if err := s.Identity().Validate(); err != nil {
		errs = append(errs, err)
	}

	if s.RepositoryID != "" {
		if err := validRepositoryID(s.RepositoryID); err != nil {
			errs = append(errs, err)
		}
	}

	if _, err := repo.ParseSchemes(s.OtherSchemes); err != nil {
		errs = append(errs, err)
	}

	return errs
}

func (s *Settings) describe() string {
	pin := "repository not pinned (KOPIA_REPOSITORY_ID)"
	if s.RepositoryID != "" {
		pin = "repository pinned to " + s.RepositoryID
	}

	id := s.Identity()
	if id.UserName != "" || id.HostName != "" {
		return fmt.Sprintf("username %q hostname %q path %q; %s%s", id.UserName, id.HostName, id.Path, pin, s.describeOthers())
	}

	return fmt.Sprintf("source name %q (username derived from it, hostname = namespace), path %q; %s%s", id.SourceName, id.Path, pin, s.describeOthers())
}

func (s *Settings) describeOthers() string {
	if s.OtherSchemes == "" {
		return ""
	}

	return "; other layouts held on purpose: " + s.OtherSchemes
}

// secrets are what a Kopia backend reads before every load.
type secrets struct {
	password             repo.Secret
	accessKey, secretKey repo.Secret
}

// open returns a backend that re-reads the secrets before every load and reconnects with a new
// storage when they change.
func (s Settings) open(env repo.OpenEnv, readKeys func() (repo.Secret, repo.Secret, error), storage func(secrets) Storage) repo.Backend {
	read := func() (secrets, error) {
		pw, err := s.PasswordRef().Read()
		if err != nil {
			return secrets{}, fmt.Errorf("kopia password: %w", err)
		}

		out := secrets{password: pw}
		if readKeys != nil {
			if out.accessKey, out.secretKey, err = readKeys(); err != nil {
				return secrets{}, err
			}
		}

		return out, nil
	}

	pin := NewPin(s.RepositoryID)                  // shared by the Repos a secret rotation replaces
	others, _ := repo.ParseSchemes(s.OtherSchemes) // validated

	return repo.Reloading(env.Name, env.Logger, read, func(sec secrets) (repo.Backend, error) {
		r, err := New(Options{
			Storage: storage(sec), Password: sec.password, StateDir: env.StateDir,
			Identity: s.Identity(), OtherSchemes: others, Pin: pin, Logger: env.Logger,
		})
		if err != nil {
			return nil, err
		}

		return r, nil
	})
}

// FSSettings is the "kopia" section of a kopia-fs backend.
type FSSettings struct {
	RepositoryPath string `yaml:"repositoryPath"`
	Settings       `yaml:",inline"`
}

// FSConfig configures a kopia-fs backend.
type FSConfig struct {
	Kopia FSSettings `yaml:"kopia"`
}

// Fields implements repo.BackendConfig.
func (c *FSConfig) Fields() []repo.Field {
	return append([]repo.Field{{
		Flag: "kopia-repository-path", Env: []string{"KOPIA_REPOSITORY_PATH"}, YAML: "kopia.repositoryPath",
		Usage: "Kopia filesystem repository: the directory holding kopia.repository.f (the NFS mount)", Value: (*repo.StringValue)(&c.Kopia.RepositoryPath),
	}}, c.Kopia.fields()...)
}

// Validate implements repo.BackendConfig.
func (c *FSConfig) Validate() error {
	var errs []error
	if c.Kopia.RepositoryPath == "" {
		errs = append(errs, repo.Problemf("KOPIA_REPOSITORY_PATH (kopia.repositoryPath) is required"))
	}

	return errors.Join(append(errs, c.Kopia.validate()...)...)
}

// Describe implements repo.BackendConfig.
func (c *FSConfig) Describe() string {
	return fmt.Sprintf("repository %s; %s", c.Kopia.RepositoryPath, c.Kopia.describe())
}

// Open implements repo.BackendConfig.
func (c *FSConfig) Open(env repo.OpenEnv) (repo.Backend, error) {
	st := Filesystem{Path: c.Kopia.RepositoryPath}
	return c.Kopia.open(env, nil, func(secrets) Storage { return st }), nil
}

// S3Config configures a kopia-s3 backend.
type S3Config struct {
	S3    repo.S3Config `yaml:"s3"`
	Kopia Settings      `yaml:"kopia"`
}

// Fields implements repo.BackendConfig.
func (c *S3Config) Fields() []repo.Field { return append(c.S3.Fields(), c.Kopia.fields()...) }

// Validate implements repo.BackendConfig.
func (c *S3Config) Validate() error {
	errs := append(c.S3.Problems(), c.Kopia.validate()...)
	if c.S3.VirtualHostStyle {
		errs = append(errs, repo.Problemf("S3_VIRTUAL_HOST_STYLE is not supported by kopia-s3: Kopia's S3 storage chooses the addressing itself (virtual-host on AWS, path style elsewhere)"))
	}

	return errors.Join(errs...)
}

// Describe implements repo.BackendConfig.
func (c *S3Config) Describe() string {
	return fmt.Sprintf("repository %s; %s", NewS3(c.S3), c.Kopia.describe())
}

// Open implements repo.BackendConfig.
func (c *S3Config) Open(env repo.OpenEnv) (repo.Backend, error) {
	cfg := c.S3

	return c.Kopia.open(env, cfg.Credentials, func(s secrets) Storage {
		c := cfg
		c.AccessKey, c.SecretKey, c.AccessKeyFile, c.SecretKeyFile = s.accessKey, s.secretKey, "", ""

		return NewS3(c)
	}), nil
}
