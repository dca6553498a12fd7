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
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/backup-oracle/backup-oracle/cache"
	"github.com/backup-oracle/backup-oracle/repo/restic"
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
	cfg, err := parseConfig(args, getenv, stderr)
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

		return 0
	}

	logger := newLogger(cfg, stderr)
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

// serve wires the backends, caches and HTTP server, and runs until ctx is cancelled.
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

		demo = d
		cfg.Backends = []BackendConfig{{Name: backendKopiaFS, Type: backendKopiaFS,
			Kopia: KopiaConfig{RepositoryPath: d.path, Password: d.password}}}
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo(backendNames(cfg.Backends)))

	metrics := cache.NewMetrics(reg)
	oracle := make(cache.Group, 0, len(cfg.Backends))

	for _, b := range cfg.Backends {
		loader, err := newBackend(b, cfg.StateDir, logger)
		if err != nil {
			return err
		}

		cleanup.add(func() { _ = loader.Close(context.Background()) })

		c, err := cache.New(cache.Options{
			Backend: b.Name, Loader: loader,
			RefreshInterval: cfg.RefreshInterval, RefreshTimeout: cfg.RefreshTimeout, MaxIndexAge: cfg.MaxIndexAge,
			MemoSize: cfg.CacheSize, MemoTTL: cfg.CacheTTL, LookupTimeout: cfg.HTTPTimeout, AllowEmpty: cfg.AllowEmpty,
			Metrics: metrics, Logger: logger,
		})
		if err != nil {
			return err
		}

		oracle = append(oracle, c)
	}

	handler, err := server.New(server.Options{
		Oracle: oracle, Registerer: reg, Gatherer: reg, RequestTimeout: cfg.HTTPTimeout, Logger: logger,
	})
	if err != nil {
		return err
	}

	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.listenAddress())
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.listenAddress(), err)
	}

	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      cfg.HTTPTimeout + 10*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var refreshers sync.WaitGroup

	for _, c := range oracle {
		refreshers.Add(1)

		go func() {
			defer refreshers.Done()
			c.Run(ctx)
		}()
	}

	served := make(chan error, 1)

	go func() { served <- srv.Serve(ln) }()

	url := "http://" + dialable(ln.Addr())
	fmt.Fprintf(stdout, "backup-oracle %s listening on %s\n", version, url)
	logger.Info("listening", "address", ln.Addr().String(), "backends", backendNames(cfg.Backends), "version", version)

	if demo != nil {
		go demo.announce(ctx, oracle, url, stdout)
	}

	select {
	case <-ctx.Done():
	case err := <-served:
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

// describe summarises a backend for --check-config.
func describe(b BackendConfig) string {
	switch canonicalType(b.Type) {
	case backendKopiaFS, backendKopiaS3:
		id := b.Kopia.identity()
		if id.UserName != "" || id.HostName != "" {
			return fmt.Sprintf("%s (%s): username %q hostname %q path %q", b.Name, b.Type, id.UserName, id.HostName, id.Path)
		}

		return fmt.Sprintf("%s (%s): source name %q (username derived from it, hostname = namespace), path %q", b.Name, b.Type, id.SourceName, id.Path)
	default:
		o := b.resticOptions("")
		layout := o.Layout
		if layout == "" {
			layout = restic.LayoutPerPVC
		}

		return fmt.Sprintf("%s (%s): layout %s, verify snapshots %t", b.Name, b.Type, layout, b.Restic.password().set())
	}
}

func backendNames(bs []BackendConfig) string {
	names := make([]string, len(bs))
	for i, b := range bs {
		names[i] = b.Name
	}

	return strings.Join(names, ",")
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
