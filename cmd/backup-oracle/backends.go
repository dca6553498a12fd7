package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/backup-oracle/backup-oracle/cache"
	"github.com/backup-oracle/backup-oracle/repo"
	"github.com/backup-oracle/backup-oracle/repo/kopia"
	"github.com/backup-oracle/backup-oracle/repo/restic"
)

// Backend types accepted by BACKEND_TYPE and by the backends file.
const (
	backendKopiaFS  = "kopia-fs"
	backendKopiaS3  = "kopia-s3"
	backendResticS3 = "restic-s3"
	backendResticFS = "restic-fs"
	// backendS3 is the predecessor's name for restic-s3.
	backendS3 = "s3"
)

// validBackends lists what BACKEND_TYPE accepts.
func validBackends() []string {
	return []string{backendKopiaFS, backendKopiaS3, backendResticS3, backendS3, backendResticFS}
}

// BackendConfig is one backend: from the environment (the predecessor's variables) or one entry
// of the backends file.
type BackendConfig struct {
	Name   string       `yaml:"name"`
	Type   string       `yaml:"type"`
	Kopia  KopiaConfig  `yaml:"kopia"`
	S3     S3Config     `yaml:"s3"`
	Restic ResticConfig `yaml:"restic"`
}

// KopiaConfig locates a Kopia repository and says how PVCs map to its sources.
type KopiaConfig struct {
	RepositoryPath     string      `yaml:"repositoryPath"`
	Password           repo.Secret `yaml:"-"`
	PasswordFile       string      `yaml:"passwordFile"`
	SourceNameTemplate string      `yaml:"sourceNameTemplate"`
	UsernameTemplate   string      `yaml:"usernameTemplate"`
	HostnameTemplate   string      `yaml:"hostnameTemplate"`
	Path               string      `yaml:"path"`
}

// S3Config is an S3 endpoint, bucket and credentials (kopia-s3, restic-s3).
type S3Config struct {
	Endpoint         string `yaml:"endpoint"` // host:port or URL
	Bucket           string `yaml:"bucket"`
	Prefix           string `yaml:"prefix"`
	Region           string `yaml:"region"`
	Secure           bool   `yaml:"secure"`
	CAFile           string `yaml:"caFile"`
	VirtualHostStyle bool   `yaml:"virtualHostStyle"`
	// RequestTimeout bounds each S3 request attempt (restic-s3); zero means the adapter's default.
	RequestTimeout time.Duration `yaml:"requestTimeout"`
	AccessKey      repo.Secret   `yaml:"-"`
	AccessKeyFile  string        `yaml:"accessKeyFile"`
	SecretKey      repo.Secret   `yaml:"-"`
	SecretKeyFile  string        `yaml:"secretKeyFile"`
}

// ResticConfig is how restic repositories are laid out and opened.
type ResticConfig struct {
	Path               string      `yaml:"path"` // restic-fs: the directory holding repositories
	Layout             string      `yaml:"layout"`
	RepositoryTemplate string      `yaml:"repositoryTemplate"`
	Password           repo.Secret `yaml:"-"`
	PasswordFile       string      `yaml:"passwordFile"`
}

// secretRef is a secret given as a value (environment, flag) or as a file, re-read on every use
// so a rotated Secret is picked up. The backends file accepts files only.
type secretRef struct {
	Value repo.Secret
	File  string
}

func (k KopiaConfig) password() secretRef  { return secretRef{k.Password, k.PasswordFile} }
func (r ResticConfig) password() secretRef { return secretRef{r.Password, r.PasswordFile} }
func (s S3Config) accessKey() secretRef    { return secretRef{s.AccessKey, s.AccessKeyFile} }
func (s S3Config) secretKey() secretRef    { return secretRef{s.SecretKey, s.SecretKeyFile} }
func (s secretRef) both() bool             { return s.Value != "" && s.File != "" }

// set says whether a value or a file was given.
func (s secretRef) set() bool { return s.Value != "" || s.File != "" }

// read returns the secret now: the file's content without trailing newlines, else the value.
func (s secretRef) read() (string, error) {
	if s.File == "" {
		return s.Value.Reveal(), nil
	}

	b, err := os.ReadFile(s.File) //nolint:gosec // the path is the operator's configuration
	if err != nil {
		return "", fmt.Errorf("read secret file: %w", err)
	}

	v := strings.TrimRight(string(b), "\r\n")
	if v == "" {
		return "", fmt.Errorf("secret file %s is empty", s.File)
	}

	return v, nil
}

func (k KopiaConfig) identity() repo.KopiaIdentity {
	id := repo.DefaultKopiaIdentity()
	if k.SourceNameTemplate != "" {
		id.SourceName = k.SourceNameTemplate
	}

	if k.Path != "" {
		id.Path = k.Path
	}

	id.UserName, id.HostName = k.UsernameTemplate, k.HostnameTemplate

	return id
}

// canonicalType resolves aliases.
func canonicalType(t string) string {
	if t == backendS3 {
		return backendResticS3
	}

	return t
}

// validate returns every problem of one backend; demo relaxes the Kopia requirements.
func (b BackendConfig) validate(demo bool) []error {
	var errs []error

	add := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("backend %s: "+format, append([]any{b.Name}, a...)...))
	}

	for _, s := range []struct {
		what string
		ref  secretRef
	}{{"KOPIA_PASSWORD", b.Kopia.password()}, {"RESTIC_PASSWORD", b.Restic.password()}, {"S3_ACCESS_KEY", b.S3.accessKey()}, {"S3_SECRET_KEY", b.S3.secretKey()}} {
		if s.ref.both() {
			add("set %s or %s_FILE, not both", s.what, s.what)
		}
	}

	switch canonicalType(b.Type) {
	case backendKopiaFS, backendKopiaS3:
		if b.Type == backendKopiaFS && b.Kopia.RepositoryPath == "" && !demo {
			add("KOPIA_REPOSITORY_PATH (kopia.repositoryPath) is required")
		}

		if !b.Kopia.password().set() && !demo {
			add("KOPIA_PASSWORD or KOPIA_PASSWORD_FILE (kopia.passwordFile) is required")
		}

		if err := b.Kopia.identity().Validate(); err != nil {
			errs = append(errs, fmt.Errorf("backend %s: %w", b.Name, err))
		}
	case backendResticS3, backendResticFS:
	default:
		add("unknown type %q: valid types are %s", b.Type, strings.Join(validBackends(), ", "))
		return errs
	}

	switch canonicalType(b.Type) {
	case backendKopiaS3, backendResticS3:
		if b.S3.Bucket == "" {
			add("S3_BUCKET (s3.bucket) is required")
		}

		if b.S3.accessKey().set() != b.S3.secretKey().set() {
			add("set both S3 keys, or neither to use the default credential chain")
		}
	case backendResticFS:
		if b.Restic.Path == "" {
			add("RESTIC_REPOSITORY_PATH (restic.path) is required")
		}
	}

	if t := canonicalType(b.Type); t == backendResticS3 || t == backendResticFS {
		// Structural checks only: secrets are read when the backend is built, not here.
		opts := b.resticOptions("")
		if b.Restic.password().set() {
			opts.Password = "set"
		}

		if err := opts.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("backend %s: %w", b.Name, err))
		}
	}

	return errs
}

// resticOptions maps the configuration onto restic.Options with the given password.
func (b BackendConfig) resticOptions(password string) restic.Options {
	o := restic.Options{
		Layout: b.Restic.Layout, RepositoryTemplate: b.Restic.RepositoryTemplate, Password: repo.Secret(password),
		Prefix: b.S3.Prefix,
	}

	if canonicalType(b.Type) == backendResticFS {
		o.Dir = b.Restic.Path

		return o
	}

	o.S3 = restic.S3Options{
		Endpoint: b.S3.Endpoint, Bucket: b.S3.Bucket, Region: b.S3.Region, Secure: b.S3.Secure,
		VirtualHostStyle: b.S3.VirtualHostStyle, CAFile: b.S3.CAFile, RequestTimeout: b.S3.RequestTimeout,
	}

	return o
}

// loadBackendsFile reads the backends file: strict YAML, unknown fields rejected.
func loadBackendsFile(path string) ([]BackendConfig, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("backends file: %w", err)
	}

	var f struct {
		Backends []BackendConfig `yaml:"backends"`
	}

	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)

	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("backends file %s: %w", path, err)
	}

	if len(f.Backends) == 0 {
		return nil, fmt.Errorf("backends file %s: no backends listed", path)
	}

	for i := range f.Backends {
		if f.Backends[i].Name == "" {
			f.Backends[i].Name = f.Backends[i].Type
		}
	}

	return f.Backends, nil
}

// validateBackends checks every backend and that names are unique.
func validateBackends(bs []BackendConfig, demo bool) []error {
	var errs []error

	names := make([]string, 0, len(bs))

	for _, b := range bs {
		errs = append(errs, b.validate(demo)...)
		if slices.Contains(names, b.Name) {
			errs = append(errs, fmt.Errorf("backend name %q is used twice: names label metrics and answers", b.Name))
		}

		names = append(names, b.Name)
	}

	return errs
}

// closingLoader is a Loader the program must close on exit.
type closingLoader interface {
	cache.Loader
	Close(ctx context.Context) error
}

// newBackend is the one place backends are chosen.
func newBackend(b BackendConfig, stateDir string, logger *slog.Logger) (closingLoader, error) {
	logger = logger.With("backend", b.Name)

	switch canonicalType(b.Type) {
	case backendKopiaFS:
		return newKopia(b, kopia.Filesystem{Path: b.Kopia.RepositoryPath}, stateDir, logger)
	case backendKopiaS3:
		endpoint, insecure := hostPort(b.S3.Endpoint, b.S3.Secure)

		return newKopia(b, kopia.S3{
			Endpoint: endpoint, Bucket: b.S3.Bucket, Prefix: b.S3.Prefix, Region: b.S3.Region,
			Insecure: insecure, CAFile: b.S3.CAFile, Credentials: b.s3Credentials,
		}, stateDir, logger)
	case backendResticS3, backendResticFS:
		return &rebuilding{name: b.Name, secrets: b.resticSecrets, build: func(s []string) (closingLoader, error) {
			o := b.resticOptions(s[0])
			o.S3.AccessKey, o.S3.SecretKey = s[1], repo.Secret(s[2])

			r, err := restic.New(o)
			if err != nil {
				return nil, err
			}

			return resticCloser{r}, nil
		}}, nil
	default:
		return nil, fmt.Errorf("unknown backend type %q: valid types are %s", b.Type, strings.Join(validBackends(), ", "))
	}
}

func newKopia(b BackendConfig, st kopia.Storage, stateDir string, logger *slog.Logger) (closingLoader, error) {
	return kopia.New(kopia.Options{
		Storage: st, Password: b.Kopia.password().read, StateDir: filepath.Join(stateDir, b.Name),
		Identity: b.Kopia.identity(), Logger: logger,
	})
}

func (b BackendConfig) s3Credentials() (string, string, error) {
	if !b.S3.accessKey().set() {
		return "", "", nil
	}

	ak, err := b.S3.accessKey().read()
	if err != nil {
		return "", "", fmt.Errorf("s3 access key: %w", err)
	}

	sk, err := b.S3.secretKey().read()
	if err != nil {
		return "", "", fmt.Errorf("s3 secret key: %w", err)
	}

	return ak, sk, nil
}

// resticSecrets reads the password and S3 keys now.
func (b BackendConfig) resticSecrets() ([]string, error) {
	var pw string

	if b.Restic.password().set() {
		v, err := b.Restic.password().read()
		if err != nil {
			return nil, fmt.Errorf("restic password: %w", err)
		}

		pw = v
	}

	ak, sk, err := b.s3Credentials()
	if err != nil {
		return nil, err
	}

	return []string{pw, ak, sk}, nil
}

// hostPort turns an endpoint given as a URL into host:port and whether TLS is off; a bare
// host:port keeps S3_SECURE.
func hostPort(endpoint string, secure bool) (string, bool) {
	switch {
	case strings.HasPrefix(endpoint, "https://"):
		return strings.TrimSuffix(strings.TrimPrefix(endpoint, "https://"), "/"), false
	case strings.HasPrefix(endpoint, "http://"):
		return strings.TrimSuffix(strings.TrimPrefix(endpoint, "http://"), "/"), true
	default:
		return endpoint, !secure
	}
}

type resticCloser struct{ *restic.Repo }

func (r resticCloser) Close(context.Context) error { return r.Repo.Close() }

// rebuilding builds an adapter from the secrets as they are now and rebuilds it when they change,
// so a Secret file that is missing at start or rotated later needs no restart and never makes
// the process exit (crash loops of admission services have caused cluster-wide outages).
type rebuilding struct {
	name    string
	secrets func() ([]string, error)
	build   func(secrets []string) (closingLoader, error)

	mu          sync.Mutex
	cur         closingLoader
	fingerprint [32]byte
}

// Load builds or rebuilds the adapter as needed, then loads it.
func (r *rebuilding) Load(ctx context.Context) (repo.Index, error) {
	r.mu.Lock()
	defer r.mu.Unlock()

	s, err := r.secrets()
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", r.name, repo.ErrUnavailable, err)
	}

	fp := sha256.Sum256([]byte(strings.Join(s, "\x00")))
	if r.cur == nil || fp != r.fingerprint {
		if r.cur != nil {
			_ = r.cur.Close(ctx)
			r.cur = nil
		}

		l, err := r.build(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w: %w", r.name, repo.ErrUnavailable, err)
		}

		r.cur, r.fingerprint = l, fp
	}

	return r.cur.Load(ctx)
}

// Close closes the current adapter.
func (r *rebuilding) Close(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()

	if r.cur == nil {
		return nil
	}

	err := r.cur.Close(ctx)
	r.cur = nil

	return err
}
