package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/backup-oracle/backup-oracle/cache"
	"github.com/backup-oracle/backup-oracle/repo"
)

// Config is every setting of the service. Each is a flag with an environment fallback
// (flag > environment > default); defaults live in defaultConfig only.
type Config struct {
	ListenAddress   string
	Port            int
	HTTPTimeout     time.Duration
	CacheTTL        time.Duration
	CacheSize       int
	RefreshInterval time.Duration
	RefreshTimeout  time.Duration
	MaxIndexAge     time.Duration
	LogLevel        string
	LogFormat       string
	StateDir        string
	AllowEmpty      bool
	Demo            bool
	CheckConfig     bool
	// Env is the one backend the predecessor's environment variables describe.
	Env BackendConfig
	// BackendsFile, when set, lists the backends instead (several, in order of preference).
	BackendsFile string
	// Backends is what the program serves: those of BackendsFile, or Env. Set by parseConfig.
	Backends []BackendConfig
}

func defaultConfig() Config {
	return Config{
		Port:            8080,
		HTTPTimeout:     2 * time.Second,
		CacheTTL:        cache.DefaultMemoTTL,
		CacheSize:       cache.DefaultMemoSize,
		RefreshInterval: cache.DefaultRefreshInterval,
		RefreshTimeout:  cache.DefaultRefreshTimeout,
		MaxIndexAge:     cache.DefaultMaxIndexAge,
		LogLevel:        "info",
		LogFormat:       "json",
		Env: BackendConfig{Type: backendKopiaFS, Kopia: KopiaConfig{
			SourceNameTemplate: repo.DefaultSourceNameTemplate, Path: repo.DefaultKopiaPath,
		}},
	}
}

// setting binds one flag to its environment variables (the first one set wins).
type setting struct {
	flag  string
	env   []string
	usage string
	value flag.Value
}

func (c *Config) settings() []setting {
	return []setting{
		{"backend", []string{"BACKEND_TYPE"}, "backend type: " + strings.Join(validBackends(), ", "), (*stringValue)(&c.Env.Type)},
		{"backends-file", []string{"BACKENDS_FILE"}, "YAML file listing several backends in order of preference (replaces the backend settings below)", (*stringValue)(&c.BackendsFile)},
		{"listen-address", []string{"LISTEN_ADDRESS"}, "address to listen on (default \":$PORT\")", (*stringValue)(&c.ListenAddress)},
		{"port", []string{"PORT"}, "port to listen on when no listen address is given", (*intValue)(&c.Port)},
		{"http-timeout", []string{"HTTP_TIMEOUT"}, "bound on one /exists lookup; past it the answer is unknown", (*durationValue)(&c.HTTPTimeout)},
		{"cache-ttl", []string{"CACHE_TTL"}, "lifetime of a memoised per-PVC answer (also dropped on every index refresh)", (*durationValue)(&c.CacheTTL)},
		{"cache-size", []string{"CACHE_SIZE"}, "maximum number of memoised per-PVC answers", (*intValue)(&c.CacheSize)},
		{"refresh-interval", []string{"REFRESH_INTERVAL", "RE_WARM_INTERVAL"}, "pause between index refreshes", (*durationValue)(&c.RefreshInterval)},
		{"refresh-timeout", []string{"REFRESH_TIMEOUT"}, "bound on one index refresh", (*durationValue)(&c.RefreshTimeout)},
		{"max-index-age", []string{"MAX_INDEX_AGE"}, "staleness bound: an older index answers unknown and is not ready", (*durationValue)(&c.MaxIndexAge)},
		{"log-level", []string{"LOG_LEVEL"}, "debug, info, warn or error", (*stringValue)(&c.LogLevel)},
		{"log-format", []string{"LOG_FORMAT"}, "json or text", (*stringValue)(&c.LogFormat)},
		{"allow-empty-index", []string{"ALLOW_EMPTY_INDEX"}, "accept a backend holding no backup at all (new installations only: a wrong path or prefix looks the same)", (*boolValue)(&c.AllowEmpty)},
		{"state-dir", []string{"STATE_DIR"}, "private writable directory for Kopia's config and cache (default: a new temporary directory)", (*stringValue)(&c.StateDir)},
		{"kopia-repository-path", []string{"KOPIA_REPOSITORY_PATH"}, "Kopia filesystem repository (kopia-fs)", (*stringValue)(&c.Env.Kopia.RepositoryPath)},
		{"kopia-password", []string{"KOPIA_PASSWORD"}, "Kopia repository password (prefer the file)", (*secretValue)(&c.Env.Kopia.Password)},
		{"kopia-password-file", []string{"KOPIA_PASSWORD_FILE"}, "file holding the Kopia password, re-read before every refresh", (*stringValue)(&c.Env.Kopia.PasswordFile)},
		{"kopia-source-name-template", []string{"KOPIA_SOURCE_NAME_TEMPLATE"}, "ReplicationSource name for a PVC ({namespace}, {pvc})", (*stringValue)(&c.Env.Kopia.SourceNameTemplate)},
		{"kopia-username-template", []string{"KOPIA_USERNAME_TEMPLATE"}, "explicit Kopia username (spec.kopia.username); empty: derived from the source name", (*stringValue)(&c.Env.Kopia.UsernameTemplate)},
		{"kopia-hostname-template", []string{"KOPIA_HOSTNAME_TEMPLATE"}, "explicit Kopia hostname (spec.kopia.hostname); empty: the namespace", (*stringValue)(&c.Env.Kopia.HostnameTemplate)},
		{"kopia-path", []string{"KOPIA_PATH"}, "Kopia source path (spec.kopia.sourcePathOverride)", (*stringValue)(&c.Env.Kopia.Path)},
		{"s3-endpoint", []string{"S3_ENDPOINT"}, "S3 endpoint, host:port or URL (kopia-s3, restic-s3); empty: AWS", (*stringValue)(&c.Env.S3.Endpoint)},
		{"s3-bucket", []string{"S3_BUCKET"}, "S3 bucket", (*stringValue)(&c.Env.S3.Bucket)},
		{"s3-prefix", []string{"S3_PREFIX"}, "key prefix of the repositories ({prefix} of the restic template; the Kopia repository's prefix)", (*stringValue)(&c.Env.S3.Prefix)},
		{"s3-region", []string{"S3_REGION"}, "S3 region", (*stringValue)(&c.Env.S3.Region)},
		{"s3-secure", []string{"S3_SECURE"}, "use TLS for a host:port endpoint", (*boolValue)(&c.Env.S3.Secure)},
		{"s3-ca-file", []string{"S3_CA_FILE"}, "PEM certificates to trust for the S3 endpoint", (*stringValue)(&c.Env.S3.CAFile)},
		{"s3-virtual-host-style", []string{"S3_VIRTUAL_HOST_STYLE"}, "address buckets as bucket.host (default: path style)", (*boolValue)(&c.Env.S3.VirtualHostStyle)},
		{"s3-request-timeout", []string{"S3_REQUEST_TIMEOUT"}, "bound on one S3 request attempt while refreshing (restic-s3); default 10s", (*durationValue)(&c.Env.S3.RequestTimeout)},
		{"s3-access-key", []string{"S3_ACCESS_KEY"}, "S3 access key (empty with the secret key: the SDK's default chain)", (*secretValue)(&c.Env.S3.AccessKey)},
		{"s3-access-key-file", []string{"S3_ACCESS_KEY_FILE"}, "file holding the S3 access key", (*stringValue)(&c.Env.S3.AccessKeyFile)},
		{"s3-secret-key", []string{"S3_SECRET_KEY"}, "S3 secret key (prefer the file)", (*secretValue)(&c.Env.S3.SecretKey)},
		{"s3-secret-key-file", []string{"S3_SECRET_KEY_FILE"}, "file holding the S3 secret key", (*stringValue)(&c.Env.S3.SecretKeyFile)},
		{"restic-repository-path", []string{"RESTIC_REPOSITORY_PATH"}, "directory holding restic repositories (restic-fs)", (*stringValue)(&c.Env.Restic.Path)},
		{"restic-layout", []string{"RESTIC_LAYOUT"}, "per-pvc (one repository per PVC) or shared (snapshots tagged <namespace>/<pvc>)", (*stringValue)(&c.Env.Restic.Layout)},
		{"restic-repository-template", []string{"RESTIC_REPOSITORY_TEMPLATE"}, "a PVC's repository ({prefix}, {namespace}, {pvc}); default {prefix}/{namespace}/{pvc}", (*stringValue)(&c.Env.Restic.RepositoryTemplate)},
		{"restic-password", []string{"RESTIC_PASSWORD"}, "restic password: every snapshot is then decrypted and authenticated (prefer the file)", (*secretValue)(&c.Env.Restic.Password)},
		{"restic-password-file", []string{"RESTIC_PASSWORD_FILE"}, "file holding the restic password", (*stringValue)(&c.Env.Restic.PasswordFile)},
		{"demo", []string{"DEMO"}, "serve a demo Kopia repository created in a temporary directory", (*boolValue)(&c.Demo)},
		{"check-config", nil, "validate the configuration, print it and exit", (*boolValue)(&c.CheckConfig)},
	}
}

// parseConfig reads the environment, then the flags. It returns every problem at once.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	cfg := defaultConfig()
	fs := flag.NewFlagSet("backup-oracle", flag.ContinueOnError)
	fs.SetOutput(stderr)

	var errs []error

	for _, s := range cfg.settings() {
		fs.Var(s.value, s.flag, envUsage(s))

		for _, env := range s.env {
			if v := getenv(env); v != "" {
				if err := s.value.Set(v); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", env, err))
				}

				break
			}
		}
	}

	if err := fs.Parse(args); err != nil {
		return cfg, err
	}

	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments: %q", fs.Args()))
	}

	if err := errors.Join(errs...); err != nil {
		return cfg, err
	}

	cfg.Env.Name = cfg.Env.Type
	cfg.Backends = []BackendConfig{cfg.Env}

	if cfg.BackendsFile != "" {
		bs, err := loadBackendsFile(cfg.BackendsFile)
		if err != nil {
			return cfg, err
		}

		cfg.Backends = bs
	}

	return cfg, cfg.Validate()
}

func envUsage(s setting) string {
	if len(s.env) == 0 {
		return s.usage
	}

	return s.usage + " [$" + strings.Join(s.env, ", $") + "]"
}

// Validate returns every problem of the configuration, joined.
func (c *Config) Validate() error {
	var errs []error

	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	errs = append(errs, validateBackends(c.Backends, c.Demo)...)

	if c.Port < 1 || c.Port > 65535 {
		add("PORT %d is not a port number (1-65535)", c.Port)
	}

	if c.ListenAddress != "" {
		if _, _, err := net.SplitHostPort(c.ListenAddress); err != nil {
			add("LISTEN_ADDRESS %q: %v", c.ListenAddress, err)
		}
	}

	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"HTTP_TIMEOUT", c.HTTPTimeout}, {"CACHE_TTL", c.CacheTTL}, {"REFRESH_INTERVAL", c.RefreshInterval},
		{"REFRESH_TIMEOUT", c.RefreshTimeout}, {"MAX_INDEX_AGE", c.MaxIndexAge},
	} {
		if d.v <= 0 {
			add("%s must be positive, got %s", d.name, d.v)
		}
	}

	if c.MaxIndexAge > 0 && c.MaxIndexAge <= c.RefreshInterval {
		add("MAX_INDEX_AGE (%s) must exceed REFRESH_INTERVAL (%s), or the index is stale between refreshes", c.MaxIndexAge, c.RefreshInterval)
	}

	if c.CacheSize < 1 {
		add("CACHE_SIZE must be at least 1, got %d", c.CacheSize)
	}

	if _, err := parseLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}

	if c.LogFormat != "json" && c.LogFormat != "text" {
		add("LOG_FORMAT %q: want json or text", c.LogFormat)
	}

	return errors.Join(errs...)
}

// listenAddress is LISTEN_ADDRESS, or ":$PORT".
func (c *Config) listenAddress() string {
	if c.ListenAddress != "" {
		return c.ListenAddress
	}

	return ":" + strconv.Itoa(c.Port)
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("LOG_LEVEL %q: want debug, info, warn or error", s)
	}

	return l, nil
}

// flag.Value implementations.
type (
	stringValue   string
	intValue      int
	boolValue     bool
	durationValue time.Duration
	secretValue   repo.Secret
)

func (v *stringValue) Set(s string) error { *v = stringValue(s); return nil }
func (v *stringValue) String() string     { return string(*v) }

func (v *intValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("%q is not a whole number", s)
	}

	*v = intValue(n)

	return nil
}
func (v *intValue) String() string { return strconv.Itoa(int(*v)) }

func (v *boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("%q is not a boolean", s)
	}

	*v = boolValue(b)

	return nil
}
func (v *boolValue) String() string   { return strconv.FormatBool(bool(*v)) }
func (v *boolValue) IsBoolFlag() bool { return true }

// Set accepts a Go duration ("90s", "2m") or, as the predecessor did, a bare number of seconds.
func (v *durationValue) Set(s string) error {
	if n, err := strconv.Atoi(s); err == nil {
		*v = durationValue(time.Duration(n) * time.Second)
		return nil
	}

	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration (e.g. 30s, 2m, or a number of seconds)", s)
	}

	*v = durationValue(d)

	return nil
}
func (v *durationValue) String() string { return time.Duration(*v).String() }

func (v *secretValue) Set(s string) error { *v = secretValue(s); return nil }
func (v *secretValue) String() string     { return repo.Secret(*v).String() }
