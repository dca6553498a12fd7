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
	"sync"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/backup-oracle/backup-oracle/cache"
	"github.com/backup-oracle/backup-oracle/server"
)

// Set by the linker (see Makefile).
var (
	version  = "dev"
	revision = "unknown"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)

	stop()
	os.Exit(code)
}

// run is the whole program: it returns the exit code (0 ok, 1 runtime failure, 2 bad config)
// when ctx is cancelled or the server cannot start.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "kinds" {
		return runKinds(args[1:], stdout, stderr)
	}

	cfg, err := parseConfig(args, getenv, stdout)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}

		fmt.Fprintf(stderr, "backup-oracle: configuration:\n%v\n", err)

		return 2
	}

	if cfg.CheckConfig {
		fmt.Fprintf(stdout, "configuration ok: listen %s, refresh every %s, max index age %s\n",
			cfg.listenAddress(), cfg.RefreshInterval, cfg.MaxIndexAge)

		for i, b := range cfg.Backends {
			fmt.Fprintf(stdout, "  backend %d: %s\n", i+1, describe(b))
		}

		for _, w := range cfg.Warnings {
			fmt.Fprintf(stdout, "  warning: %s\n", w)
		}

		return 0
	}

	gin.SetMode(gin.ReleaseMode) // a process-wide setting: the program's, not the handler's

	logger := newLogger(cfg, stderr)
	for _, w := range cfg.Warnings {
		logger.Warn("configuration", "warning", w)
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

	if cfg.StateDir == "" {
		dir, err := os.MkdirTemp("", "backup-oracle-state-")
		if err != nil {
			return fmt.Errorf("create state directory: %w", err)
		}

		cfg.StateDir = dir
		cleanup.add(func() { _ = os.RemoveAll(dir) })
	}

	var demo *demoRepository

	if cfg.Demo {
		d, err := createDemo(ctx, cfg.StateDir)
		if err != nil {
			return err
		}

		spec, err := d.backend(registry())
		if err != nil {
			return err
		}

		demo, cfg.Backends = d, []backendSpec{spec}
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo(backendNames(cfg.Backends)))

	oracle, err := buildCaches(cfg, reg, logger, &cleanup)
	if err != nil {
		return err
	}

	handler, err := server.New(server.Options{
		Oracle: oracle, Registerer: reg, Gatherer: reg, RequestTimeout: cfg.HTTPTimeout, RenderCacheSize: cfg.CacheSize, Logger: logger,
	})
	if err != nil {
		return err
	}

	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.listenAddress())
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.listenAddress(), err)
	}

	url := "http://" + dialable(ln.Addr())
	fmt.Fprintf(stdout, "backup-oracle %s listening on %s\n", version, url)
	logger.Info("listening", "address", ln.Addr().String(), "backends", backendNames(cfg.Backends), "version", version)

	if demo != nil {
		go demo.announce(ctx, oracle, url, stdout)
	}

	return runUntilShutdown(ctx, newHTTPServer(handler, cfg), ln, oracle, logger)
}

// buildCaches opens every backend and puts a cache in front of each; cleanup closes them.
func buildCaches(cfg Config, reg prometheus.Registerer, logger *slog.Logger, cleanup *cleanups) (cache.Group, error) {
	backends, err := openBackends(cfg.Backends, cfg.StateDir, logger)
	for _, b := range backends {
		cleanup.add(func() { _ = b.Close(context.Background()) })
	}

	if err != nil {
		return nil, err
	}

	metrics := cache.NewMetrics(reg)
	oracle := make(cache.Group, 0, len(backends))

	for i, b := range backends {
		c, err := cache.New(cache.Options{
			Backend: cfg.Backends[i].Name, Loader: b,
			RefreshInterval: cfg.RefreshInterval, RefreshTimeout: cfg.RefreshTimeout, MaxIndexAge: cfg.MaxIndexAge,
			MemoSize: cfg.CacheSize, MemoTTL: cfg.CacheTTL, LookupTimeout: cfg.HTTPTimeout, AllowEmpty: cfg.AllowEmpty,
			Metrics: metrics, Logger: logger,
		})
		if err != nil {
			return nil, err
		}

		oracle = append(oracle, c)
	}

	return oracle, nil
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

// runUntilShutdown runs the refreshers and serves ln until ctx is cancelled, then shuts the
// server down (in-flight requests finish, at most 10 s) and waits for the refreshers.
func runUntilShutdown(ctx context.Context, srv *http.Server, ln net.Listener, oracle cache.Group, logger *slog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var refreshers sync.WaitGroup

	for _, c := range oracle {
		refreshers.Go(func() { c.Run(ctx) })
	}

	served := make(chan error, 1)

	go func() { served <- srv.Serve(ln) }()

	select {
	case <-ctx.Done():
	case err := <-served:
		cancel()
		refreshers.Wait()

		return fmt.Errorf("serve: %w", err)
	}

	shutdownCtx, done := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer done()

	if err := srv.Shutdown(shutdownCtx); err != nil {
		logger.Warn("shutdown", "err", err)
	}

	cancel()
	refreshers.Wait()

	return nil
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
