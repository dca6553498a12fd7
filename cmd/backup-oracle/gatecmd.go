package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/backup-oracle/backup-oracle/repo"
	"github.com/backup-oracle/backup-oracle/repo/gate"
)

// Exit codes of `backup-oracle gate check`, beside exitFailure (unchecked) and exitUsage.
const (
	exitArmed    = 0
	exitDisarmed = 3
	exitRefusing = 4
)

// gateFlags are the flags of the gate and rights commands, added to the service's settings.
type gateFlags struct {
	output  string
	timeout time.Duration
}

// parseGateCommand reads the service's settings (the gate's among them; the backends are not
// needed) and the command's own flags.
func parseGateCommand(name, usage string, args, environ []string, stdout io.Writer) (Config, gateFlags, error) {
	var f gateFlags

	setup := flagSetup{
		name: name, help: stdout,
		extra: func(fs *flag.FlagSet) {
			fs.StringVar(&f.output, "o", "text", "output: text or json")
			fs.DurationVar(&f.timeout, "timeout", gate.DefaultTimeout, "bound on the check (the API server calls up to two admission webhooks)")
		},
		usage: func(w io.Writer, fs *flag.FlagSet, _ repo.Registry) {
			fmt.Fprint(w, usage)
			fs.SetOutput(w)
			fs.PrintDefaults()
			fs.SetOutput(io.Discard)
		},
		skipBackends: func() bool { return true },
	}

	cfg, _, err := parseConfigWith(setup, args, environ)
	if err == nil && f.output != "text" && f.output != "json" {
		err = fmt.Errorf("-o %q: want text or json", f.output)
	}

	return cfg, f, err
}

const gateUsage = `Usage: backup-oracle gate check [flags]

Runs one gate self-test now: a server-side dry-run create (dryRun=All: nothing is stored, nothing
is generated) of a canary PVC in GATE_CANARY_NAMESPACE, labelled POLICIES_LABEL_KEY=<first of
POLICIES_LABEL_VALUES>, through the Kubernetes API (KUBECONFIG, else the pod's service account),
and says whether the policies refused it with the oracle's canary answer. This process is not the
oracle the policies ask, so armed needs the oracle's answer in the denial (the server's own checks
also count the lookups it sees). Run it in the oracle's pod to use its settings and rights:
  kubectl -n backup-oracle exec deploy/backup-oracle -- /backup-oracle gate check

Exit codes: 0 armed, 3 disarmed (the canary was admitted, or refused by something that never asked
the oracle), 4 refusing (refused for another reason: Kyverno down, a webhook timeout), 1 unchecked
(the API server could not be asked), 2 usage.

Flags (every setting of the service is accepted; these matter):
`

// runGate is `backup-oracle gate check`.
func runGate(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "check" && !strings.HasPrefix(args[0], "-")) {
		fmt.Fprintf(stderr, "backup-oracle gate: want the subcommand check\n(backup-oracle gate check -h for help)\n")
		return exitUsage
	}

	if args[0] == "check" {
		args = args[1:]
	}

	cfg, f, err := parseGateCommand("gate check", gateUsage, args, environ, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return exitArmed
	}

	if err == nil && cfg.Gate.Namespace == "" {
		err = errors.New("GATE_CANARY_NAMESPACE (--gate-canary-namespace) is not set: the canary needs a namespace the policies cover")
	}

	if err != nil {
		fmt.Fprintf(stderr, "backup-oracle gate check: %v\n(backup-oracle gate check -h for help)\n", err)
		return exitUsage
	}

	g, err := gate.New(gate.Options{
		API: newDryRunner(cfg.Gate), Namespace: cfg.Gate.Namespace, Timeout: f.timeout,
		Labels: map[string]string{cfg.Gate.LabelKey: cfg.Gate.LabelValues[0]},
	})
	if err != nil {
		fmt.Fprintf(stderr, "backup-oracle gate check: %v\n", err)
		return exitUsage
	}

	st := g.Check(ctx)

	if f.output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(map[string]any{"state": st.State, "reason": st.Reason, "lastCheck": st.LastCheck.UTC(), "canary": st.Canary.String()})
	} else {
		fmt.Fprintf(stdout, "gate: %s\n  canary  %s\n  reason  %s\n", strings.ToUpper(string(st.State)), st.Canary, st.Reason)
	}

	switch st.State {
	case repo.GateArmed:
		return exitArmed
	case repo.GateDisarmed:
		return exitDisarmed
	case repo.GateRefusing:
		return exitRefusing
	default:
		return exitFailure
	}
}

const rightsUsage = `Usage: backup-oracle rights [-o json]

The Kubernetes API rights this configuration needs, each with the reason (the chart renders its
Role from the same list, and its tests compare the two). With the gate self-test off and
AUTH_MODE=none: none.

Flags (every setting of the service is accepted):
`

// runRights is `backup-oracle rights`.
func runRights(args, environ []string, stdout, stderr io.Writer) int {
	cfg, f, err := parseGateCommand("rights", rightsUsage, args, environ, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}

	if err != nil {
		fmt.Fprintf(stderr, "backup-oracle rights: %v\n", err)
		return exitUsage
	}

	rules := append(cfg.Gate.rules(), cfg.Auth.rules()...)

	if f.output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rules)

		return 0
	}

	if len(rules) == 0 {
		fmt.Fprintln(stdout, "none: "+cfg.Gate.off()+"; AUTH_MODE is "+cfg.Auth.Mode)
	}

	for _, r := range rules {
		scope := "cluster-wide"
		if r.Namespace != "" {
			scope = "namespace " + r.Namespace
		}

		fmt.Fprintf(stdout, "%s %s (API group %q) in %s: %s\n", strings.Join(r.Verbs, ","), strings.Join(r.Resources, ","),
			strings.Join(r.APIGroups, ","), scope, r.Why)
	}

	return 0
}
