package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/backup-oracle/backup-oracle/cache"
	"github.com/backup-oracle/backup-oracle/repo"
	"github.com/backup-oracle/backup-oracle/server"
)

// Config is every setting of the service. Each is a flag with an environment fallback
// (flag > environment > default); defaults live in defaultConfig and in each backend kind.
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
	// NearMiss is what a near miss does to a would-be fresh answer (NEAR_MISS: deny, warn, off).
	NearMiss string
	// DestinationNameTemplate is the name the policies give a PVC's ReplicationDestination
	// (DESTINATION_NAME_TEMPLATE, the chart's config.kopia.destinationNameTemplate); empty: the
	// ReplicationSource's name. Only GET /identity reads it.
	DestinationNameTemplate string
	// ExpectedBackupsFile is the expected-backups ledger (EXPECTED_BACKUPS_FILE), re-read on
	// every refresh interval.
	ExpectedBackupsFile string
	Demo                bool
	CheckConfig         bool
	// Open makes --check-config open every backend read-only and load its index once.
	Open bool
	// Version prints the version and exits.
	Version bool
	// BackupSeriesLimit bounds the per-backup series of /metrics (cache.MetricsOptions).
	BackupSeriesLimit int
	// StaleFor is the console's default staleness threshold.
	StaleFor time.Duration
	// ShutdownDelay and ShutdownTimeout: see shutdown.
	ShutdownDelay   time.Duration
	ShutdownTimeout time.Duration
	// Gate is the gate self-test's and the coverage report's settings.
	Gate GateConfig
	// Auth is TLS and who may ask.
	Auth AuthConfig
	// BackendType is the kind of the one backend the environment describes (BACKEND_TYPE).
	BackendType string
	// BackendsFile, when set, lists the backends instead (several, in order of preference).
	BackendsFile string
	// Backends is what the program serves: those of BackendsFile, or the one of the environment.
	// Set by parseConfig.
	Backends []backendSpec
	// Warnings are settings that were given but that nothing reads (e.g. S3_PREFIX for kopia-fs).
	Warnings []string
	// CutoverAt and CutoverFrom declare a blue/green cutover (repo.Cutover): the RFC 3339
	// instant and the backend of the colour being left.
	CutoverAt, CutoverFrom string
}

// backendSpec is one configured backend: its name, its kind and the kind's configuration.
type backendSpec struct {
	Name   string
	Kind   repo.Kind
	Config repo.BackendConfig
}

func defaultConfig() Config {
	return Config{
		Port:              8080,
		HTTPTimeout:       2 * time.Second,
		CacheTTL:          cache.DefaultMemoTTL,
		CacheSize:         cache.DefaultMemoSize,
		RefreshInterval:   cache.DefaultRefreshInterval,
		RefreshTimeout:    cache.DefaultRefreshTimeout,
		MaxIndexAge:       cache.DefaultMaxIndexAge,
		LogLevel:          "info",
		LogFormat:         "json",
		NearMiss:          string(repo.NearMissDeny),
		BackupSeriesLimit: cache.DefaultBackupSeriesLimit,
		StaleFor:          server.DefaultStaleFor,
		ShutdownTimeout:   10 * time.Second,
		Gate:              defaultGateConfig(),
		Auth:              defaultAuthConfig(),
		BackendType:       registry()[0].Name, // the registry's first kind is the default
	}
}

// setting binds one flag to its environment variables (the first one set wins).
type setting struct {
	flag  string
	env   []string
	usage string
	value flag.Value
}

// settings are the service's own settings; each backend kind declares its own (repo.Field).
func (c *Config) settings(kinds repo.Registry) []setting {
	return append(c.serviceSettings(kinds), c.Auth.settings()...)
}

func (c *Config) serviceSettings(kinds repo.Registry) []setting {
	return []setting{
		{"backend", []string{"BACKEND_TYPE"}, "backend kind: " + strings.Join(kinds.Names(), ", "), (*repo.StringValue)(&c.BackendType)},
		{"backends-file", []string{"BACKENDS_FILE"}, "YAML file listing several backends in order of preference (replaces the backend settings)", (*repo.StringValue)(&c.BackendsFile)},
		{"listen-address", []string{"LISTEN_ADDRESS"}, "address to listen on (default \":$PORT\")", (*repo.StringValue)(&c.ListenAddress)},
		{"port", []string{"PORT"}, "port to listen on when no listen address is given", (*repo.IntValue)(&c.Port)},
		{"http-timeout", []string{"HTTP_TIMEOUT"}, "bound on one /exists lookup; past it the answer is unknown", (*repo.DurationValue)(&c.HTTPTimeout)},
		{"cache-ttl", []string{"CACHE_TTL"}, "lifetime of a memoised per-PVC answer (also dropped on every index refresh)", (*repo.DurationValue)(&c.CacheTTL)},
		{"cache-size", []string{"CACHE_SIZE"}, "maximum number of memoised per-PVC answers", (*repo.IntValue)(&c.CacheSize)},
		{"refresh-interval", []string{"REFRESH_INTERVAL", "RE_WARM_INTERVAL"}, "pause between index refreshes", (*repo.DurationValue)(&c.RefreshInterval)},
		{"refresh-timeout", []string{"REFRESH_TIMEOUT"}, "bound on one index refresh", (*repo.DurationValue)(&c.RefreshTimeout)},
		{"max-index-age", []string{"MAX_INDEX_AGE"}, "staleness bound: an older index answers unknown and is not ready", (*repo.DurationValue)(&c.MaxIndexAge)},
		{"log-level", []string{"LOG_LEVEL"}, "debug, info, warn or error", (*repo.StringValue)(&c.LogLevel)},
		{"log-format", []string{"LOG_FORMAT"}, "json or text", (*repo.StringValue)(&c.LogFormat)},
		{"allow-empty-index", []string{"ALLOW_EMPTY_INDEX"}, "accept a backend holding no backup at all (new installations only: a wrong path or prefix looks the same)", (*repo.BoolValue)(&c.AllowEmpty)},
		{"near-miss", []string{"NEAR_MISS"}, "what snapshots of the PVC under a slightly different identity do to a would-be fresh answer: deny (unknown), warn (fresh, reported) or off", (*repo.StringValue)(&c.NearMiss)},
		{"destination-name-template", []string{"DESTINATION_NAME_TEMPLATE"}, "the name the policies give a PVC's ReplicationDestination (its dataSourceRef; {namespace}, {pvc}), reported by GET /identity; empty: the ReplicationSource's (kopia-source-name-template)", (*repo.StringValue)(&c.DestinationNameTemplate)},
		{"expected-backups-file", []string{"EXPECTED_BACKUPS_FILE"}, "YAML ledger of PVCs known to have had a backup (pvcs: [<namespace>/<pvc>, ...]); a listed PVC is never fresh; re-read every refresh interval", (*repo.StringValue)(&c.ExpectedBackupsFile)},
		{"cutover-at", []string{"CUTOVER_AT"}, "a blue/green cutover's instant (RFC 3339): a PVC whose snapshots in CUTOVER_FROM all started before it is unknown until its final backup is indexed", (*repo.StringValue)(&c.CutoverAt)},
		{"cutover-from", []string{"CUTOVER_FROM"}, "the backend (of BACKENDS_FILE) of the colour being left at CUTOVER_AT", (*repo.StringValue)(&c.CutoverFrom)},
		{"state-dir", []string{"STATE_DIR"}, "private writable directory for Kopia's config and cache (default: a new temporary directory)", (*repo.StringValue)(&c.StateDir)},
		{"demo", []string{"DEMO"}, "serve a demo Kopia repository created in the state directory", (*repo.BoolValue)(&c.Demo)},
		{"backup-metrics-limit", []string{"BACKUP_METRICS_LIMIT"}, "bound on the per-backup series of /metrics (backup_oracle_backup_newest_snapshot_timestamp_seconds); past it the stalest are kept; negative: none", (*repo.IntValue)(&c.BackupSeriesLimit)},
		{"console-stale-for", []string{"CONSOLE_STALE_FOR"}, "the console's default staleness threshold (a backup whose newest snapshot is older is marked stale)", (*repo.DurationValue)(&c.StaleFor)},
		{"shutdown-delay", []string{"SHUTDOWN_DELAY"}, "after SIGTERM, /readyz fails at once but requests are still served this long (Kubernetes removes the pod from the Service meanwhile)", (*repo.DurationValue)(&c.ShutdownDelay)},
		{"shutdown-timeout", []string{"SHUTDOWN_TIMEOUT"}, "after the delay, bound on the wait for in-flight requests", (*repo.DurationValue)(&c.ShutdownTimeout)},
		{"gate-check-interval", []string{"GATE_CHECK_INTERVAL"}, "pause between two gate self-tests (a server-side dry-run create of a canary PVC through the API server); 0 turns the self-test off", (*repo.DurationValue)(&c.Gate.Interval)},
		{"gate-canary-namespace", []string{"GATE_CANARY_NAMESPACE"}, "namespace of the gate self-test's canary PVC: one the policies cover, holding nothing else (the chart creates it); empty turns the self-test off", (*repo.StringValue)(&c.Gate.Namespace)},
		{"kubeconfig", []string{"KUBECONFIG"}, "kubeconfig file for the Kubernetes API (the gate self-test, AUTH_MODE=kubernetes); empty: the pod's service account", (*repo.StringValue)(&c.Gate.Kubeconfig)},
		{"policies-label-key", []string{"POLICIES_LABEL_KEY"}, "the label the policies select backup-labelled PVCs by (chart: policies.labelKey); the canary carries it", (*repo.StringValue)(&c.Gate.LabelKey)},
		{"policies-label-values", []string{"POLICIES_LABEL_VALUES"}, "comma-separated values of that label the policies handle (chart: the keys of policies.schedules); the canary carries the first", (*listValue)(&c.Gate.LabelValues)},
		{"policies-excluded-namespaces", []string{"POLICIES_EXCLUDED_NAMESPACES"}, "comma-separated namespaces the policies exclude (chart: policies.excludedNamespaces); one holding backups is reported: its PVCs are never checked", (*listValue)(&c.Gate.Excluded)},
		{"check-config", nil, "validate the configuration, print it and exit (2 on a bad configuration)", (*repo.BoolValue)(&c.CheckConfig)},
		{"open", nil, "with --check-config: also open every backend read-only and load its index once (location, readability, password, sources, sources fitting the identity settings); exit 1 on any failure, e.g. in an init container or CI", (*repo.BoolValue)(&c.Open)},
		{"version", nil, "print the version and exit", (*repo.BoolValue)(&c.Version)},
	}
}

// backendFlag is one backend setting shared by every kind that declares it: setting it sets it
// on each of them, and the chosen kind's configuration is used.
type backendFlag struct {
	repo.Field
	kinds  []string
	values []flag.Value
	given  string // the flag or environment variable it was set by; empty when not set
}

func (b *backendFlag) Set(s string) error {
	for _, v := range b.values {
		if err := v.Set(s); err != nil {
			return err
		}
	}

	return nil
}

// String is the current value, or "" when it is its type's zero value (so --help shows no
// "(default 0s)" or "(default [redacted])" for unset settings).
func (b *backendFlag) String() string {
	if len(b.values) == 0 {
		return ""
	}

	v := b.values[0]
	if zero, ok := reflect.New(reflect.TypeOf(v).Elem()).Interface().(flag.Value); ok && zero.String() == v.String() {
		return ""
	}

	return v.String()
}

// IsBoolFlag lets `--flag` mean `--flag=true` for boolean settings.
func (b *backendFlag) IsBoolFlag() bool {
	bf, ok := b.Value.(interface{ IsBoolFlag() bool })
	return ok && bf.IsBoolFlag()
}

// backendFlags gathers the fields of every kind, one per flag name, in registry order, and the
// configuration of each kind the flags write to.
func backendFlags(kinds repo.Registry) ([]*backendFlag, map[string]repo.BackendConfig) {
	var flags []*backendFlag

	byName := map[string]*backendFlag{}
	configs := map[string]repo.BackendConfig{}

	for _, k := range kinds {
		c := k.New()
		configs[k.Name] = c

		for _, f := range c.Fields() {
			b, ok := byName[f.Flag]
			if !ok {
				b = &backendFlag{Field: f}
				byName[f.Flag] = b
				flags = append(flags, b)
			}

			b.kinds = append(b.kinds, k.Name)
			b.values = append(b.values, f.Value)
		}
	}

	return flags, configs
}

// parseConfig reads the environment, then the flags. It returns every problem at once; -h
// prints the help to help and returns flag.ErrHelp.
func parseConfig(args, environ []string, help io.Writer) (Config, error) {
	cfg, pos, err := parseConfigWith(flagSetup{name: "backup-oracle", help: help}, args, environ)
	if err == nil && len(pos) > 0 {
		err = fmt.Errorf("unexpected arguments: %q", pos)
	}

	return cfg, err
}

// flagSetup adapts the configuration's flag set to a command: its name, its own flags, its help.
type flagSetup struct {
	name string
	help io.Writer
	// extra adds the command's own flags; usage prints its help (default: the server's).
	extra func(fs *flag.FlagSet)
	usage func(w io.Writer, fs *flag.FlagSet, kinds repo.Registry)
	// positional allows arguments between and after the flags; they are returned.
	positional bool
	// skipBackends leaves the backend settings unvalidated (a command asking a running server).
	skipBackends func() bool
}

// parseConfigWith is parseConfig for a command: the same settings, plus the command's flags and
// positional arguments.
func parseConfigWith(setup flagSetup, args, environ []string) (Config, []string, error) {
	getenv := lookupEnv(environ)
	cfg := defaultConfig()
	kinds := registry()
	settings := cfg.settings(kinds)
	bflags, configs := backendFlags(kinds)

	fs := flag.NewFlagSet(setup.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // parse errors are returned; help goes to help

	usage := setup.usage
	if usage == nil {
		usage = printHelp
	}

	fs.Usage = func() { usage(setup.help, fs, kinds) }

	if setup.extra != nil {
		setup.extra(fs)
	}

	var errs []error

	fromEnv := func(envs []string, v flag.Value) string {
		for _, env := range envs {
			if s := getenv(env); s != "" {
				if err := v.Set(s); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", env, err))
				}

				return env
			}
		}

		return ""
	}

	for _, s := range settings {
		fs.Var(s.value, s.flag, envUsage(s.usage, s.env))
		fromEnv(s.env, s.value)
	}

	for _, b := range bflags {
		fs.Var(b, b.Flag, envUsage(b.Usage+" ("+strings.Join(b.kinds, ", ")+")", b.Env))
		b.given = fromEnv(b.Env, b)
	}

	var pos []string

	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			return cfg, nil, err
		}

		if fs.NArg() == 0 || !setup.positional {
			break
		}

		pos, rest = append(pos, fs.Arg(0)), fs.Args()[1:]
	}

	var known []string
	for _, s := range settings {
		known = append(known, s.env...)
	}

	for _, b := range bflags {
		known = append(known, b.Env...)
	}

	unknown := unknownVariables(environ, known)

	fs.Visit(func(f *flag.Flag) {
		if b, ok := f.Value.(*backendFlag); ok {
			b.given = "--" + f.Name
		}
	})

	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments: %q", fs.Args()))
	}

	// A value that did not parse keeps its default: go on, so every problem is reported at once
	// (a malformed duration and a bad template together), not one per attempt.
	if setup.skipBackends != nil && setup.skipBackends() {
		return cfg, pos, errors.Join(errs...)
	}

	if cfg.BackendsFile != "" {
		bs, err := loadBackendsFile(cfg.BackendsFile, kinds)
		if err != nil {
			return cfg, pos, errors.Join(append(errs, err)...)
		}

		cfg.Backends = bs
		cfg.Warnings = ignored(bflags, "", "BACKENDS_FILE replaces the backend settings of the environment and flags")
	} else if k, err := kinds.Lookup(cfg.BackendType); err != nil {
		errs = append(errs, err)
	} else {
		cfg.Backends = []backendSpec{{Name: cfg.BackendType, Kind: k, Config: configs[k.Name]}}
		cfg.Warnings = ignored(bflags, k.Name, "the "+k.Name+" backend does not read it")
	}

	cfg.Warnings = append(cfg.Warnings, unknown...)
	errs = append(errs, cfg.Validate())

	return cfg, pos, errors.Join(errs...)
}

// ignored lists the backend settings given but not read by kind (every one when kind is empty).
func ignored(bflags []*backendFlag, kind, why string) []string {
	var out []string

	for _, b := range bflags {
		if b.given != "" && (kind == "" || !slices.Contains(b.kinds, kind)) {
			out = append(out, fmt.Sprintf("%s is set but ignored: %s", b.given, why))
		}
	}

	return out
}

func envUsage(usage string, env []string) string {
	if len(env) == 0 {
		return usage
	}

	return usage + " [$" + strings.Join(env, ", $") + "]"
}

// Validate returns every problem of the configuration, joined. The backends are validated
// unless the demo replaces them.
func (c *Config) Validate() error {
	var errs []error

	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	if !c.Demo {
		errs = append(errs, validateBackends(c.Backends)...)
	}

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
		{"REFRESH_TIMEOUT", c.RefreshTimeout}, {"MAX_INDEX_AGE", c.MaxIndexAge}, {"CONSOLE_STALE_FOR", c.StaleFor},
	} {
		if d.v <= 0 {
			add("%s must be positive, got %s", d.name, d.v)
		}
	}

	if c.MaxIndexAge > 0 && c.MaxIndexAge <= c.RefreshInterval {
		add("MAX_INDEX_AGE (%s) must exceed REFRESH_INTERVAL (%s), or the index is stale between refreshes", c.MaxIndexAge, c.RefreshInterval)
	}

	if c.ShutdownDelay < 0 {
		add("SHUTDOWN_DELAY must not be negative, got %s", c.ShutdownDelay)
	}

	if c.ShutdownTimeout <= 0 {
		add("SHUTDOWN_TIMEOUT must be positive, got %s", c.ShutdownTimeout)
	}

	if c.CacheSize < 1 {
		add("CACHE_SIZE must be at least 1, got %d", c.CacheSize)
	}

	if _, err := parseLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}

	errs = append(errs, c.Gate.validate()...)
	errs = append(errs, c.Auth.validate()...)

	if _, err := repo.ParseNearMissMode(c.NearMiss); err != nil {
		errs = append(errs, err)
	}

	if _, err := c.cutover(); err != nil {
		errs = append(errs, err)
	}

	if c.DestinationNameTemplate != "" {
		if err := repo.CheckNameTemplate("DESTINATION_NAME_TEMPLATE", c.DestinationNameTemplate); err != nil {
			errs = append(errs, err)
		}
	}

	if c.LogFormat != "json" && c.LogFormat != "text" {
		add("LOG_FORMAT %q: want json or text", c.LogFormat)
	}

	return errors.Join(errs...)
}

// cutover is the declared cutover (zero when none), checked against the backends' names.
func (c *Config) cutover() (repo.Cutover, error) {
	var out repo.Cutover

	if c.CutoverAt != "" {
		at, err := time.Parse(time.RFC3339, c.CutoverAt)
		if err != nil {
			return out, repo.Problemf("CUTOVER_AT %q is not an RFC 3339 time such as 2026-12-06T18:00:00Z", c.CutoverAt)
		}

		out.At = at
	}

	out.From = c.CutoverFrom
	names := make([]string, 0, len(c.Backends))

	for _, b := range c.Backends {
		names = append(names, b.Name)
	}

	return out, out.Validate(names)
}

// validateBackends checks every backend and that names are unique.
func validateBackends(bs []backendSpec) []error {
	var errs []error

	names := make([]string, 0, len(bs))

	for _, b := range bs {
		if err := b.Config.Validate(); err != nil {
			for _, e := range flatten(err) {
				errs = append(errs, fmt.Errorf("backend %s: %w", b.Name, e))
			}
		}

		if slices.Contains(names, b.Name) {
			errs = append(errs, fmt.Errorf("backend name %q is used twice: names label metrics and answers", b.Name))
		}

		names = append(names, b.Name)
	}

	return errs
}

// flatten lists the problems of an errors.Join, recursively, so each is reported on its own line
// with its backend's name. Other errors, even those wrapping several (fmt's "%w: %w"), are one
// problem each.
func flatten(err error) []error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}

	children := j.Unwrap()
	texts := make([]string, len(children))

	for i, c := range children {
		texts[i] = c.Error()
	}

	if err.Error() != strings.Join(texts, "\n") { // not a join: one problem
		return []error{err}
	}

	var out []error
	for _, c := range children {
		out = append(out, flatten(c)...)
	}

	return out
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
