package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/backup-oracle/backup-oracle/repo"
	"github.com/backup-oracle/backup-oracle/server"
)

// Exit codes of the operator commands (documented in --help and the README).
const (
	exitRestore = 0 // check/explain: restore; snapshots: some; list: complete; identity: ok
	exitFailure = 1 // the repository or server could not be asked
	exitUsage   = 2 // bad flags or arguments, invalid names (HTTP 400)
	exitFresh   = 3 // check/explain: fresh; snapshots: none (404)
	exitUnknown = 4 // check/explain: unknown; snapshots, list: a backend is not authoritative (503)
)

// command is one operator command: it asks the API (a running server with --server, or the
// same handler in-process on the repository) and renders the answer.
type command struct {
	name, args, summary, examples string
	// pvcArg: the command takes exactly one NS/PVC; otherwise at most one namespace (list).
	pvcArg bool
	// pointInTime: the command takes --as-of and --previous.
	pointInTime bool
	// path is the API path for the arguments and query.
	path func(arg string, q url.Values) string
	// render prints the answer; it returns the exit code.
	render func(w io.Writer, code int, body []byte) int
}

func commands() []command {
	return []command{
		{
			name: "check", args: "NAMESPACE/PVC", pvcArg: true, pointInTime: true,
			summary: "will this PVC restore? The answer Kyverno gets (GET /exists): restore, fresh or unknown, and why.",
			examples: `  backup-oracle check shop/postgres
  backup-oracle check shop/postgres --as-of 2026-11-20T02:00:00Z     # what restoreAsOf would get
  backup-oracle check shop/postgres --previous 1 -o json
  backup-oracle check media/data --source data-volsync@media:/data   # a PVC annotated backup-oracle.io/restore-source
  backup-oracle check --server http://localhost:8080 shop/postgres   # ask a running oracle (kubectl port-forward)`,
			path: func(a string, q url.Values) string { return withQuery("/exists/"+a, q) }, render: renderCheck,
		},
		{
			name: "snapshots", args: "NAMESPACE/PVC", pvcArg: true, pointInTime: true,
			summary: "every snapshot of the PVC on every backend, newest first; * marks the one a restore gets (GET /snapshots).",
			examples: `  backup-oracle snapshots shop/postgres
  backup-oracle snapshots shop/postgres --as-of 2026-11-20T02:00:00Z   # only those restoreAsOf lets through`,
			path: func(a string, q url.Values) string { return withQuery("/snapshots/"+a, q) }, render: renderSnapshots,
		},
		{
			name: "list", args: "[NAMESPACE]",
			summary: "every PVC with a backup: snapshot count, newest snapshot and its age (GET /backups).",
			examples: `  backup-oracle list
  backup-oracle list shop
  backup-oracle list --stale-for 26h        # only backups whose newest snapshot is older than 26 hours`,
			path: func(a string, q url.Values) string {
				if a != "" {
					q.Set("namespace", a)
				}

				return withQuery("/backups", q)
			},
			render: renderList,
		},
		{
			name: "identity", args: "NAMESPACE/PVC", pvcArg: true,
			summary:  "the names the policies give the PVC's ReplicationSource and ReplicationDestination, and the identity each backend looks up (GET /identity).",
			examples: `  backup-oracle identity shop/my.app.data   # Kopia source myappdata-backup@shop:/data: the mover drops the dots`,
			path:     func(a string, _ url.Values) string { return "/identity/" + a }, render: renderIdentity,
		},
		{
			name: "explain", args: "NAMESPACE/PVC", pvcArg: true, pointInTime: true,
			summary:  "the answer, and per backend the identity looked up, every snapshot and what is stored nearby (GET /explain).",
			examples: `  backup-oracle explain shop/redis   # fresh? the namespace's backups are listed next to the identity looked up`,
			path:     func(a string, q url.Values) string { return withQuery("/explain/"+a, q) }, render: renderExplain,
		},
	}
}

func withQuery(path string, q url.Values) string {
	if len(q) == 0 {
		return path
	}

	return path + "?" + q.Encode()
}

// findCommand returns the operator command called name.
func findCommand(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}

	return command{}, false
}

// cliFlags are the flags every operator command adds to the service's settings.
type cliFlags struct {
	server, output, asOf, previous, staleFor, accept, source string
	timeout, wait                                            time.Duration
	remote                                                   remoteFlags
}

// runCommand runs an operator command and returns its exit code.
func runCommand(ctx context.Context, c command, args, environ []string, stdout, stderr io.Writer) int {
	getenv := lookupEnv(environ)

	var f cliFlags

	setup := flagSetup{
		name: c.name, help: stdout, positional: true,
		extra: func(fs *flag.FlagSet) {
			fs.StringVar(&f.server, "server", getenv("BACKUP_ORACLE_SERVER"), "ask the backup-oracle at this URL instead of reading the repository [$BACKUP_ORACLE_SERVER]")
			fs.StringVar(&f.output, "o", "text", "output: text (tables), json (the API's answer), or for list ledger (an expected-backups ledger, EXPECTED_BACKUPS_FILE)")
			fs.DurationVar(&f.timeout, "timeout", 2*time.Minute, "bound on the whole command (loading the repository, or asking the server)")
			f.remote.register(fs, getenv)

			if c.pointInTime {
				fs.StringVar(&f.asOf, "as-of", "", "VolSync's restoreAsOf (RFC 3339): the newest snapshot at or before it")
				fs.StringVar(&f.previous, "previous", "", "VolSync's previous: skip this many of the eligible snapshots, newest first")
				fs.StringVar(&f.accept, "accept", "", "an acknowledgement: near-miss answers as if no near miss existed (what the policies ask for a PVC annotated backup-oracle.io/accept-near-miss)")
				fs.DurationVar(&f.wait, "wait", time.Minute, "while the answer is unknown only because the PVC's snapshots are still being verified (restic with a password), ask again for up to this long; 0: answer at once")
			}

			if c.name == "check" || c.name == "explain" {
				fs.StringVar(&f.source, "source", "", "the Kopia source to restore from instead of the PVC's own, <username>@<hostname>:<path> (what the policies ask for a PVC annotated "+repo.RestoreSourceAnnotation+")")
			}

			if c.name == "list" {
				fs.StringVar(&f.staleFor, "stale-for", "", "only backups whose newest snapshot is older than this Go duration (26h)")
			}
		},
		usage:        func(w io.Writer, fs *flag.FlagSet, _ repo.Registry) { printCommandHelp(w, c, fs) },
		skipBackends: func() bool { return f.server != "" },
	}

	cfg, pos, err := parseConfigWith(setup, args, environ)
	if errors.Is(err, flag.ErrHelp) {
		return exitRestore
	}

	if err == nil {
		err = checkArgs(c, pos, f.output)
	}

	if err != nil {
		fmt.Fprintf(stderr, "backup-oracle %s: %v\n(backup-oracle %s -h for help)\n", c.name, err, c.name)
		return exitUsage
	}

	q := url.Values{}
	for k, v := range map[string]string{"asOf": f.asOf, "previous": f.previous, "staleFor": f.staleFor, "accept": f.accept, "source": f.source} {
		if v != "" {
			q.Set(k, v)
		}
	}

	if f.output == "ledger" {
		q.Set("format", "ledger")
	}

	arg := ""
	if len(pos) > 0 {
		arg = pos[0]
	}

	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()

	a, err := newAsker(ctx, cfg, f.server, f.remote, stderr)
	defer a.close()

	var (
		code int
		body []byte
	)

	if err == nil {
		code, body, err = a.getSettled(ctx, c.path(arg, q), f.wait, stderr)
	}

	if err != nil {
		fmt.Fprintf(stderr, "backup-oracle %s: %v\n", c.name, err)
		return exitFailure
	}

	if code == http.StatusBadRequest {
		var e struct {
			Error string `json:"error"`
		}

		_ = json.Unmarshal(body, &e)
		fmt.Fprintf(stderr, "backup-oracle %s: %s\n", c.name, e.Error)

		return exitUsage
	}

	if f.output == "ledger" {
		if code != http.StatusOK {
			return c.render(stdout, code, body)
		}

		_, _ = stdout.Write(body)

		return exitRestore
	}

	if f.output == "json" {
		var out bytes.Buffer
		if json.Indent(&out, body, "", "  ") != nil {
			out.Reset()
			out.Write(body)
		}

		fmt.Fprintln(stdout, out.String())

		return c.render(io.Discard, code, body)
	}

	return c.render(stdout, code, body)
}

func checkArgs(c command, pos []string, output string) error {
	switch {
	case output == "ledger" && c.name != "list":
		return fmt.Errorf("-o ledger: only list exports the expected-backups ledger")
	case output != "text" && output != "json" && output != "ledger":
		return fmt.Errorf("-o %q: want text or json (list: or ledger)", output)
	}

	if c.pvcArg {
		if len(pos) != 1 || strings.Count(pos[0], "/") != 1 {
			return fmt.Errorf("want one NAMESPACE/PVC argument, got %q", pos)
		}

		ns, name, _ := strings.Cut(pos[0], "/")

		return (repo.PVC{Namespace: ns, Name: name}).Validate()
	}

	if len(pos) > 1 {
		return fmt.Errorf("want at most one NAMESPACE argument, got %q", pos)
	}

	return nil
}

// asker gets API paths from the server at base, or, without one, from the API handler
// in-process on the configured backends (loaded once, no listener; asking again reuses them, so
// a verification started by the first question goes on).
type asker struct {
	base   string
	client *remoteClient
	h      http.Handler
	close  func()
}

func newAsker(ctx context.Context, cfg Config, base string, rf remoteFlags, stderr io.Writer) (*asker, error) {
	if base != "" {
		c, err := newRemoteClient(rf, cfg.Gate.Kubeconfig)
		return &asker{base: base, client: c, close: func() {}}, err
	}

	// The answer carries the reasons; the log only says what kept the repository from loading.
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	gin.SetMode(gin.ReleaseMode) // a process-wide setting: the program's, not the handler's

	h, closeAll, err := loadOnce(ctx, cfg, logger)

	return &asker{h: h, close: closeAll}, err
}

func (a *asker) get(ctx context.Context, path string) (int, []byte, error) {
	if a.base != "" {
		return a.client.ask(ctx, a.base, path)
	}

	rec := httptest.NewRecorder()
	a.h.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, http.MethodGet, path, nil))

	return rec.Code, rec.Body.Bytes(), nil
}

// pendingPoll is the pause between two questions while an answer is pending.
const pendingPoll = time.Second

// getSettled gets path, and asks again (every second, for at most wait) while the answer says
// it is pending: unknown only because the PVC's snapshots are still being verified (the server
// verifies a PVC's repository first once it is asked). Past wait it says so on stderr.
func (a *asker) getSettled(ctx context.Context, path string, wait time.Duration, stderr io.Writer) (int, []byte, error) {
	deadline := time.Now().Add(wait)
	told := false

	for {
		code, body, err := a.get(ctx, path)
		if err != nil || !pending(body) {
			return code, body, err
		}

		if time.Now().Add(pendingPoll).After(deadline) {
			fmt.Fprintf(stderr, "still verifying this PVC's snapshots after %s: run the command again, or give --wait a longer time\n", wait)
			return code, body, nil
		}

		if !told {
			fmt.Fprintf(stderr, "verifying this PVC's snapshots (restic with a password); waiting up to %s (--wait)\n", wait)
			told = true
		}

		select {
		case <-ctx.Done():
			return code, body, nil
		case <-time.After(pendingPoll):
		}
	}
}

// pending reports whether an answer (/exists, or /explain's answer) is pending.
func pending(body []byte) bool {
	var r struct {
		Pending bool `json:"pending"`
		Answer  struct {
			Pending bool `json:"pending"`
		} `json:"answer"`
	}

	return json.Unmarshal(body, &r) == nil && (r.Pending || r.Answer.Pending)
}

// loadOnce builds the backends and caches as the server does, refreshes each once (bounded by
// REFRESH_TIMEOUT and ctx) and returns the API handler over them. closeAll releases everything.
func loadOnce(ctx context.Context, cfg Config, logger *slog.Logger) (http.Handler, func(), error) {
	cleanup := &cleanups{}

	cfg, _, err := prepare(ctx, cfg, cleanup)
	if err != nil {
		return nil, cleanup.run, err
	}

	reg := prometheus.NewRegistry()

	oracle, err := buildOracle(cfg, reg, logger, cleanup, nil)
	if err != nil {
		return nil, cleanup.run, err
	}

	var wg sync.WaitGroup

	for _, c := range oracle.Caches() {
		wg.Go(func() { _ = c.Refresh(ctx) }) // a failure shows as unknown, with the reason
	}

	wg.Wait()

	h, err := newHandler(cfg, oracle, oracle.Cutover, nil, reg, logger, server.Auth{})

	return h, cleanup.run, err
}
