package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/backup-oracle/backup-oracle/repo"
	"github.com/backup-oracle/backup-oracle/repo/gate"
	"github.com/backup-oracle/backup-oracle/repo/kube"
)

// GateConfig is the gate self-test's settings (README, "The gate self-test") and what the
// coverage report needs to know of the policies. The chart passes the policies' own values, so
// both sides agree; a value changed on one side only shows as a disarmed gate.
type GateConfig struct {
	// Interval is the pause between checks; 0 turns the self-test off.
	Interval time.Duration
	// Namespace is the canary namespace; empty turns the self-test off.
	Namespace string
	// Kubeconfig is the Kubernetes API's kubeconfig; empty: the in-cluster service account.
	Kubeconfig string
	// LabelKey, LabelValues: the policies' backup label; the canary carries the first value.
	LabelKey    string
	LabelValues []string
	// Excluded are the namespaces the policies exclude.
	Excluded []string
}

// defaultGateConfig is the chart's defaults, so the binary run by hand judges the chart's
// policies; the canary namespace is the chart's to create, so it is not set by default.
func defaultGateConfig() GateConfig {
	return GateConfig{
		Interval:    gate.DefaultInterval,
		LabelKey:    "backup",
		LabelValues: []string{"daily", "hourly"},
		Excluded:    []string{"kube-system", "volsync-system", "kyverno"},
	}
}

func (g GateConfig) validate() []error {
	var errs []error

	if g.Interval < 0 {
		errs = append(errs, fmt.Errorf("GATE_CHECK_INTERVAL must not be negative (0 turns the self-test off), got %s", g.Interval))
	}

	if g.Namespace != "" {
		if err := (repo.PVC{Namespace: g.Namespace, Name: repo.CanaryName("0")}).Validate(); err != nil {
			errs = append(errs, fmt.Errorf("GATE_CANARY_NAMESPACE: %w", err))
		}
	}

	if g.LabelKey == "" || len(g.LabelValues) == 0 {
		errs = append(errs, fmt.Errorf("POLICIES_LABEL_KEY and POLICIES_LABEL_VALUES must not be empty: the canary carries the policies' backup label"))
	}

	return errs
}

// off is why the self-test is off, "" when it runs.
func (g GateConfig) off() string {
	switch {
	case g.Interval == 0:
		return "the gate self-test is off: GATE_CHECK_INTERVAL is 0"
	case g.Namespace == "":
		return "the gate self-test is off: GATE_CANARY_NAMESPACE is not set (the chart sets it)"
	default:
		return ""
	}
}

// rules are the Kubernetes API rights this configuration needs (`backup-oracle rights`, the
// chart's Role): none when the self-test is off.
func (g GateConfig) rules() []kube.Rule {
	if g.off() != "" {
		return []kube.Rule{}
	}

	return []kube.Rule{kube.DryRunCreatePVCRule(g.Namespace)}
}

// listValue is a comma-separated list setting; spaces around items and empty items are dropped.
type listValue []string

func (l *listValue) Set(s string) error {
	*l = nil

	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			*l = append(*l, item)
		}
	}

	return nil
}

func (l *listValue) String() string { return strings.Join(*l, ",") }

// buildGate wires the self-test: a Kubernetes API client (repo/kube) for the dry runs, the
// oracle's inventory for the coverage report, the metrics on reg. A client that cannot be
// configured (no kubeconfig, not in a cluster) does not stop the process: every check then
// reports unchecked with the reason.
func buildGate(cfg GateConfig, inventory gate.Inventory, reg prometheus.Registerer, logger *slog.Logger) (*gate.Gate, error) {
	opts := gate.Options{
		Off: cfg.off(), Namespace: cfg.Namespace, Interval: cfg.Interval, Excluded: cfg.Excluded, Inventory: inventory,
		Registerer: reg, Logger: logger,
	}

	if opts.Off == "" {
		if slices.Contains(cfg.Excluded, cfg.Namespace) {
			logger.Warn("GATE_CANARY_NAMESPACE is one of POLICIES_EXCLUDED_NAMESPACES: the policies never see the canary, so the self-test reports disarmed",
				"namespace", cfg.Namespace)
		}

		opts.API = newDryRunner(cfg)
		opts.Labels = map[string]string{cfg.LabelKey: cfg.LabelValues[0]}
	}

	return gate.New(opts)
}

// newDryRunner is the Kubernetes API client the self-test sends its dry runs through, or, when
// none can be configured, a stand-in answering every dry run with that error.
func newDryRunner(cfg GateConfig) gate.DryRunCreator {
	c, err := kube.New(kube.Config{Kubeconfig: cfg.Kubeconfig, UserAgent: "backup-oracle/" + version})
	if err != nil {
		return gate.DryRunFunc(func(context.Context, repo.PVC, map[string]string, map[string]string) (repo.DryRun, error) {
			return repo.DryRun{}, err
		})
	}

	return c
}
