// Command backup-oracle answers Kyverno, at PVC admission, whether a backup exists for a PVC:
// restore, fresh or unknown. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"k8s.io/klog/v2"

	backuporacle "github.com/backup-oracle/backup-oracle"
	"github.com/backup-oracle/backup-oracle/cache"
	"github.com/backup-oracle/backup-oracle/repo"
	"github.com/backup-oracle/backup-oracle/repo/gate"
	"github.com/backup-oracle/backup-oracle/repo/kube"
	"github.com/backup-oracle/backup-oracle/repo/ledger"
	"github.com/backup-oracle/backup-oracle/server"
)

// Set by the linker (see Makefile).
var (
	version  = "dev"
	revision = "unknown"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)

	stop()
	os.Exit(code)
}

// run is the whole program: with no command the server, which returns the exit code (0 ok,
// 1 runtime failure, 2 bad config) when ctx is cancelled or it cannot start; environ is the
// environment, KEY=VALUE; `kinds`, `rights`, `gate check` (gatecmd.go), `cutover run|undo`
// (cutovercmd.go), or an
// operator command (check, snapshots, list, identity, explain: see cli.go and their exit codes).
func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "kinds":
			return runKinds(args[1:], stdout, stderr)
		case "gate":
			return runGate(ctx, args[1:], environ, stdout, stderr)
		case "rights":
			return runRights(args[1:], environ, stdout, stderr)
		case "cutover":
			return runCutover(ctx, args[1:], environ, stdout, stderr)
		}
	}

	if len(args) > 0 {
		if c, ok := findCommand(args[0]); ok {
			return runCommand(ctx, c, args[1:], environ, stdout, stderr)
		}
	}

	// --version needs no configuration.
	for _, a := range args {
		if a == "--" {
			break
		}

		if a == "--version" || a == "-version" {
			fmt.Fprintf(stdout, "backup-oracle %s (revision %s, %s)\n", version, revision, runtime.Version())
			return 0
		}
	}

	cfg, err := parseConfig(args, environ, stdout)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}

		fmt.Fprintf(stderr, "backup-oracle: configuration:\n%v\n", err)

		return 2
	}

	if cfg.Version {
		fmt.Fprintf(stdout, "backup-oracle %s (revision %s, %s)\n", version, revision, runtime.Version())
		return 0
	}

	if cfg.CheckConfig {
		if cfg.Demo { // check the demo repository, created as the server would
			cleanup := cleanups{}
			defer cleanup.run()

			if cfg, _, err = prepare(ctx, cfg, &cleanup); err != nil {
				fmt.Fprintf(stderr, "backup-oracle: demo repository: %v\n", err)
				return 1
			}
		}

		return checkConfig(ctx, cfg, stdout, stderr)
	}

	gin.SetMode(gin.ReleaseMode) // a process-wide setting: the program's, not the handler's

	logger := newLogger(cfg, stderr)
	klog.SetSlogLogger(logger) // k8s.io libraries (certificate reloads, reviews) log through ours

	for _, w := range cfg.Warnings {
		logger.Warn("configuration", "warning", w)
	}

	for _, w := range cfg.Auth.warnings() {
		logger.Warn("security", "warning", w)
	}

	if err := serve(ctx, cfg, logger, stdout); err != nil {
		logger.Error("backup-oracle stopped", "err", err)
		return 1
	}

	return 0
}

func newLogger(cfg Config, w io.Writer) *slog.Logger {
	level, _ := parseLevel(cfg.LogLevel) // validated
	opts := &slog.HandlerOptions{Level: level}

	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}

	return slog.New(slog.NewJSONHandler(w, opts))
}

// serve builds the backends and caches and the HTTP server, and runs until ctx is cancelled.
func serve(ctx context.Context, cfg Config, logger *slog.Logger, stdout io.Writer) error {
	cleanup := cleanups{}
	defer cleanup.run()

	cfg, demo, err := prepare(ctx, cfg, &cleanup)
	if err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo(backendNames(cfg.Backends)))

	// The oracle tells the gate self-test of every canary lookup; the gate reads the oracle's
	// inventory. g is set before anything runs.
	var g *gate.Gate

	oracle, err := buildOracle(cfg, reg, logger, &cleanup, func(p repo.PVC) { g.Saw(p) })
	if err != nil {
		return err
	}

	if g, err = buildGate(cfg.Gate, oracle, reg, logger); err != nil {
		return err
	}

	stopping := &atomic.Bool{}

	auth, runAuth, err := buildAuth(cfg.Auth, cfg.Gate.Kubeconfig, logger)
	if err != nil {
		return err
	}

	handler, err := newHandler(cfg, drainingOracle{Group: oracle, stopping: stopping}, oracle.Cutover, g, reg, logger, auth)
	if err != nil {
		return err
	}

	srv := newHTTPServer(handler, cfg)
	scheme := "http"

	if cfg.Auth.TLSCertFile != "" {
		t, err := kube.NewServingTLS(cfg.Auth.TLSCertFile, cfg.Auth.TLSKeyFile, cfg.Auth.ProxyClientCA)
		if err != nil {
			return err
		}

		t.Run(ctx)

		srv.TLSConfig, scheme = t.Config, "https"
	}

	runAuth(ctx)

	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.listenAddress())
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.listenAddress(), err)
	}

	url := scheme + "://" + dialable(ln.Addr())
	fmt.Fprintf(stdout, "backup-oracle %s listening on %s\n", version, url)
	logger.Info("listening", "address", ln.Addr().String(), "backends", backendNames(cfg.Backends), "version", version)

	if demo != nil {
		go demo.announce(ctx, oracle, url, stdout)
	}

	return runUntilShutdown(ctx, srv, ln, oracle, shutdown{stopping: stopping, delay: cfg.ShutdownDelay, timeout: cfg.ShutdownTimeout},
		cfg.RefreshInterval, logger, g.Run)
}

// prepare gives cfg a state directory (a new temporary one unless set) and, with --demo, creates
// the demo repository and makes it the only backend.
func prepare(ctx context.Context, cfg Config, cleanup *cleanups) (Config, *demoRepository, error) {
	if cfg.StateDir == "" {
		dir, err := os.MkdirTemp("", "backup-oracle-state-")
		if err != nil {
			return cfg, nil, fmt.Errorf("create state directory: %w", err)
		}

		cfg.StateDir = dir
		cleanup.add(func() { _ = os.RemoveAll(dir) })
	}

	if !cfg.Demo {
		return cfg, nil, nil
	}

	d, err := createDemo(ctx, cfg.StateDir)
	if err != nil {
		return cfg, nil, err
	}

	spec, err := d.backend(registry())
	if err != nil {
		return cfg, nil, err
	}

	cfg.Backends = []backendSpec{spec}

	return cfg, d, nil
}

// buildOracle opens every backend, puts a cache in front of each and groups them with the
// guards; cleanup closes the backends. onCanary (nil: none) is told of every canary lookup.
func buildOracle(cfg Config, reg prometheus.Registerer, logger *slog.Logger, cleanup *cleanups, onCanary func(repo.PVC)) (*cache.Group, error) {
	backends, err := openBackends(cfg.Backends, cfg.StateDir, logger)
	for _, b := range backends {
		cleanup.add(func() { _ = b.Close(context.Background()) })
	}

	if err != nil {
		return nil, err
	}

	nearMiss, _ := repo.ParseNearMissMode(cfg.NearMiss) // validated
	metrics := cache.NewMetricsWith(reg, cache.MetricsOptions{BackupSeriesLimit: cfg.BackupSeriesLimit})
	caches := make([]*cache.Cache, 0, len(backends))

	for i, b := range backends {
		c, err := cache.New(cache.Options{
			Backend: cfg.Backends[i].Name, Loader: b,
			RefreshInterval: cfg.RefreshInterval, RefreshTimeout: cfg.RefreshTimeout, MaxIndexAge: cfg.MaxIndexAge,
			MemoSize: cfg.CacheSize, MemoTTL: cfg.CacheTTL, LookupTimeout: cfg.HTTPTimeout, AllowEmpty: cfg.AllowEmpty,
			NearMisses: nearMiss != repo.NearMissOff, Metrics: metrics, Logger: logger,
		})
		if err != nil {
			return nil, err
		}

		caches = append(caches, c)
	}

	guards := repo.Guards{NearMiss: nearMiss}
	if cfg.ExpectedBackupsFile != "" {
		f := ledger.Open(cfg.ExpectedBackupsFile)
		if err := f.Err(); err != nil {
			logger.Warn("expected-backups ledger unusable: no PVC is answered fresh until it is fixed", "err", err)
		}

		reg.MustRegister(newLedgerCollector(f))
		guards.Ledger = f
	}

	cutover, _ := cfg.cutover() // validated
	g := cache.NewGroup(caches, cache.GroupOptions{Guards: guards, Metrics: metrics, Logger: logger, OnCanary: onCanary, Cutover: cutover})
	reg.MustRegister(g.CutoverCollector())

	if !cutover.IsZero() {
		logger.Info("blue/green cutover declared: PVCs of the colour being left wait for their final backup",
			"at", cutover.At.UTC().Format(time.RFC3339), "from", cutover.From)
	}

	return g, nil
}

// newHandler is the HTTP API over the caches, as the server and the CLI's in-process mode use it
// (the latter without a gate: g nil).
func newHandler(cfg Config, oracle server.Oracle, cutover func() repo.CutoverStatus, g *gate.Gate, reg *prometheus.Registry,
	logger *slog.Logger, auth server.Auth,
) (http.Handler, error) {
	rs, rd := replicationNames(cfg.Backends, cfg.DestinationNameTemplate)
	opts := server.Options{
		Oracle: oracle, Registerer: reg, Gatherer: reg, RequestTimeout: cfg.HTTPTimeout, RenderCacheSize: cfg.CacheSize, Logger: logger,
		OpenAPI: backuporacle.OpenAPI, ReplicationName: rs, DestinationName: rd, DefaultStaleFor: cfg.StaleFor,
		Cutover: cutover, Auth: auth, TrustedProxies: cfg.Auth.TrustedProxies,
	}

	if g != nil {
		opts.Gate = g
	}

	return server.New(opts)
}

func newHTTPServer(handler http.Handler, cfg Config) *http.Server {
	return &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      cfg.HTTPTimeout + 10*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
	}
}

func buildInfo(backend string) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "backup_oracle_build_info",
		Help:        "Build information; the value is always 1.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision, "goversion": runtime.Version(), "backend": backend},
	})
	g.Set(1)

	return g
}

// dialable turns a wildcard listen address into one a curl on this host can use.
func dialable(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return a.String()
	}

	return net.JoinHostPort("localhost", fmt.Sprint(tcp.Port))
}

// cleanups run in reverse order of registration.
type cleanups []func()

func (c *cleanups) add(f func()) { *c = append(*c, f) }

func (c *cleanups) run() {
	for i := len(*c) - 1; i >= 0; i-- {
		(*c)[i]()
	}
}
