package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/backup-oracle/backup-oracle/repo"
	"github.com/backup-oracle/backup-oracle/repo/cutover"
	"github.com/backup-oracle/backup-oracle/repo/kube"
)

// exitNotDone is `backup-oracle cutover run`'s exit code when the timeout passed before every
// PVC's final backup was done (the table says which and why).
const exitNotDone = 3

// terminationMessageLimit is what Kubernetes keeps of a container's termination message.
const terminationMessageLimit = 4096

// cutoverFlags are the cutover command's own flags, added to the service's settings.
type cutoverFlags struct {
	scale             bool
	interval, timeout time.Duration
	metrics, termLog  string
	rights            bool
}

const cutoverUsage = `Usage: backup-oracle cutover run|undo [flags]

The colour being left of a blue/green cutover (README, "Blue/green migration"); the chart runs it
as a Job on the release whose own backend is cutover.from, with the Kubernetes API rights printed
by --rights (KUBECONFIG, else the pod's service account).

run: at CUTOVER_AT, for every PVC labelled POLICIES_LABEL_KEY=<one of POLICIES_LABEL_VALUES> outside
POLICIES_EXCLUDED_NAMESPACES: waits until no pod but a VolSync mover uses it (or, with
--scale-workloads, scales its Deployment or StatefulSet to zero, recording the replicas), sets
spec.trigger.manual of every ReplicationSource whose spec.sourcePVC is the PVC to
cutover-<CUTOVER_AT in UTC> while VolSync is idle, and waits until status.lastManualSync equals
it. Re-run safe. Prints what changes, then a table; exit 0 when every PVC is done, 3 when the
timeout passed first, 1 when the API server could not be asked, 2 usage.

undo: restores what any cutover changed (found by the label backup-oracle.io/cutover): the manual
trigger from before (none: the schedule runs the ReplicationSource again) and, with
--scale-workloads, the replicas of the workloads still at zero. Exit 0, or 1 when a change failed.

Flags (every setting of the service is accepted; these matter):
`

// parseCutoverCommand reads the service's settings (the backends are not needed) and the
// command's own flags.
func parseCutoverCommand(name string, args, environ []string, stdout io.Writer) (Config, cutoverFlags, error) {
	var f cutoverFlags

	setup := flagSetup{
		name: name, help: stdout,
		extra: func(fs *flag.FlagSet) {
			fs.BoolVar(&f.scale, "scale-workloads", false, "scale the Deployments and StatefulSets using a PVC to zero (run) or back (undo), instead of waiting for the GitOps engine")
			fs.DurationVar(&f.interval, "interval", cutover.DefaultInterval, "run: pause between two passes over the PVCs")
			fs.DurationVar(&f.timeout, "timeout", cutover.DefaultTimeout, "run: give up this long after CUTOVER_AT (or the start, when later)")
			fs.StringVar(&f.metrics, "metrics-address", "", "run: serve /metrics on this address while running (the chart's PodMonitor scrapes it); empty: none")
			fs.StringVar(&f.termLog, "termination-log", "", "write the summary and the PVCs not done to this file at the end (the chart: /dev/termination-log)")
			fs.BoolVar(&f.rights, "rights", false, "print the Kubernetes API rights this invocation needs (JSON, as backup-oracle rights -o json) and exit")
		},
		usage: func(w io.Writer, fs *flag.FlagSet, _ repo.Registry) {
			fmt.Fprint(w, cutoverUsage)
			fs.SetOutput(w)
			fs.PrintDefaults()
			fs.SetOutput(io.Discard)
		},
		skipBackends: func() bool { return true },
	}

	cfg, _, err := parseConfigWith(setup, args, environ)
	if err == nil && (f.interval <= 0 || f.timeout <= 0) {
		err = errors.New("--interval and --timeout must be positive")
	}

	return cfg, f, err
}

// cutoverRules are the rights of `cutover <mode>`, from the calls it makes (repo/kube states each).
func cutoverRules(mode string, scale bool) []kube.Rule {
	rules := []kube.Rule{kube.ListReplicationSourcesRule(), kube.PatchReplicationSourceRule()}

	switch {
	case mode == "run":
		rules = append(rules, kube.ListLabelledPVCsRule(), kube.ListMountsRule())
		if scale {
			rules = append(rules, kube.ReplicaSetOwnerRule(), kube.GetWorkloadRule(), kube.PatchWorkloadRule())
		}
	case scale:
		rules = append(rules, kube.ListMarkedWorkloadsRule(), kube.PatchWorkloadRule())
	}

	return rules
}

// runCutover is `backup-oracle cutover run|undo`.
func runCutover(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "run" && args[0] != "undo") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			fmt.Fprint(stdout, cutoverUsage)
			return 0
		}

		fmt.Fprintf(stderr, "backup-oracle cutover: want the subcommand run or undo\n(backup-oracle cutover run -h for help)\n")

		return exitUsage
	}

	mode := args[0]

	cfg, f, err := parseCutoverCommand("cutover "+mode, args[1:], environ, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}

	var c repo.Cutover
	if err == nil && mode == "run" {
		c, err = declaredCutover(cfg)
	}

	if err != nil {
		fmt.Fprintf(stderr, "backup-oracle cutover %s: %v\n(backup-oracle cutover %s -h for help)\n", mode, err, mode)
		return exitUsage
	}

	if f.rights {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(cutoverRules(mode, f.scale))

		return 0
	}

	client, err := kube.New(kube.Config{Kubeconfig: cfg.Gate.Kubeconfig, UserAgent: "backup-oracle-cutover/" + version})
	if err != nil {
		fmt.Fprintf(stderr, "backup-oracle cutover %s: %v\n", mode, err)
		return exitFailure
	}

	logger := newLogger(cfg, stderr)

	if mode == "undo" {
		return undoCutover(ctx, client, f, stdout, stderr)
	}

	return runFinalBackup(ctx, cfg, c, client, f, logger, stdout, stderr)
}

// declaredCutover is the cutover of CUTOVER_AT and CUTOVER_FROM, and the policies' label.
func declaredCutover(cfg Config) (repo.Cutover, error) {
	if cfg.CutoverAt == "" {
		return repo.Cutover{}, errors.New("CUTOVER_AT (--cutover-at) is not set: the instant of the cutover, RFC 3339")
	}

	at, err := time.Parse(time.RFC3339, cfg.CutoverAt)
	if err != nil {
		return repo.Cutover{}, fmt.Errorf("CUTOVER_AT %q is not an RFC 3339 time such as 2026-12-06T18:00:00Z", cfg.CutoverAt)
	}

	if cfg.Gate.LabelKey == "" || len(cfg.Gate.LabelValues) == 0 {
		return repo.Cutover{}, errors.New("POLICIES_LABEL_KEY and POLICIES_LABEL_VALUES must not be empty: they select the backup-labelled PVCs")
	}

	return repo.Cutover{At: at, From: cfg.CutoverFrom}, nil
}

// runFinalBackup is `cutover run`: passes until done or the timeout, the changes printed as they
// happen, then the table.
func runFinalBackup(ctx context.Context, cfg Config, c repo.Cutover, client *kube.Client, f cutoverFlags, logger *slog.Logger,
	stdout, stderr io.Writer,
) int {
	reg := prometheus.NewRegistry()
	reg.MustRegister(buildInfo("cutover"))

	if f.metrics != "" {
		stop, err := serveMetrics(f.metrics, reg, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "backup-oracle cutover run: %v\n", err)
			return exitFailure
		}

		defer stop()
	}

	seen := map[repo.PVC]string{}
	opts := cutover.Options{
		Cutover: c, LabelKey: cfg.Gate.LabelKey, LabelValues: cfg.Gate.LabelValues, Excluded: cfg.Gate.Excluded, Scale: f.scale,
		Claims: client, Pods: client, Sources: client, Interval: f.interval, Timeout: f.timeout, Registerer: reg, Logger: logger,
		OnPass: func(r cutover.Report) { printChanges(stdout, r, seen) },
	}

	if f.scale {
		opts.Workloads = client
	}

	r, err := cutover.New(opts)
	if err != nil {
		fmt.Fprintf(stderr, "backup-oracle cutover run: %v\n", err)
		return exitUsage
	}

	fmt.Fprintf(stdout, "cutover at %s from %s on %s: trigger %s for the PVCs labelled %s in (%s)\n", c.At.UTC().Format(time.RFC3339),
		orDash(c.From), client.Host(), c.Trigger(), cfg.Gate.LabelKey, strings.Join(cfg.Gate.LabelValues, ","))

	rep, err := r.Run(ctx)

	fmt.Fprintln(stdout)
	_ = rep.Table(stdout)
	fmt.Fprintln(stdout, rep.Summary())
	writeTerminationLog(f.termLog, rep.TerminationMessage(terminationMessageLimit), stderr)

	switch {
	case err != nil:
		fmt.Fprintf(stderr, "backup-oracle cutover run: %v\n", err)
		return exitFailure
	case !rep.Done():
		fmt.Fprintf(stdout, "not done after %s: re-run the Job (re-run safe) once the PVCs above are fixed\n", f.timeout)
		return exitNotDone
	default:
		return 0
	}
}

// printChanges prints the PVCs whose state or detail changed since the last pass.
func printChanges(w io.Writer, r cutover.Report, seen map[repo.PVC]string) {
	for _, res := range r.Results {
		line := string(res.State) + ": " + res.Detail
		if seen[res.PVC] == line {
			continue
		}

		seen[res.PVC] = line
		fmt.Fprintf(w, "%s %s %s\n", r.Time.UTC().Format(time.RFC3339), res.PVC, line)
	}
}

// undoCutover is `cutover undo`.
func undoCutover(ctx context.Context, client *kube.Client, f cutoverFlags, stdout, stderr io.Writer) int {
	var workloads cutover.Workloads
	if f.scale {
		workloads = client
	}

	changes, err := cutover.Undo(ctx, client, workloads)

	var (
		b      strings.Builder
		failed int
	)

	for _, c := range changes {
		if c.Err != nil {
			failed++
			fmt.Fprintf(&b, "%s: FAILED (%s): %v\n", c.Object, c.Action, c.Err)

			continue
		}

		fmt.Fprintf(&b, "%s: %s\n", c.Object, c.Action)
	}

	if len(changes) == 0 && err == nil {
		fmt.Fprintf(&b, "nothing to undo: nothing on %s carries the label %s\n", client.Host(), repo.CutoverLabel)
	}

	fmt.Fprint(stdout, b.String())
	writeTerminationLog(f.termLog, truncate(b.String(), terminationMessageLimit), stderr)

	if err != nil {
		fmt.Fprintf(stderr, "backup-oracle cutover undo: %v\n", err)
		return exitFailure
	}

	if failed > 0 {
		return exitFailure
	}

	return 0
}

// serveMetrics serves reg's /metrics on address until stop.
func serveMetrics(address string, reg *prometheus.Registry, stderr io.Writer) (stop func(), err error) {
	l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", address)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s: %w", address, err)
	}

	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}

	go func() { _ = srv.Serve(l) }()

	fmt.Fprintf(stderr, "metrics on http://%s/metrics\n", dialable(l.Addr()))

	return func() { _ = srv.Close() }, nil
}

// writeTerminationLog writes msg to path ("" : nowhere); a failure is reported, not fatal.
func writeTerminationLog(path, msg string, stderr io.Writer) {
	if path == "" {
		return
	}

	if err := os.WriteFile(path, []byte(msg), 0o600); err != nil {
		fmt.Fprintf(stderr, "backup-oracle cutover: termination message: %v\n", err)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}

	return s[:n-len("\n…")] + "\n…"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}

	return s
}
