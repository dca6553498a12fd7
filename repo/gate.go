package repo

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The gate self-test (README, "The gate self-test"): the oracle's whole value is a fail-closed
// gate, and nothing else notices when the admission path stops asking it (Kyverno uninstalled, a
// policy deleted or rejected, a webhook set to failurePolicy Ignore, a namespace excluded by
// mistake). So the service sends, through the API server, a server-side dry-run create of a
// canary PVC that the policies must refuse with the oracle's answer, and says what happened.

// GateState is what the last self-test found.
type GateState string

// Gate states.
const (
	// GateArmed: the API server refused the canary with the oracle's canary answer (the policies
	// asked the oracle and acted on its answer).
	GateArmed GateState = "armed"
	// GateRefusing: the canary was refused for another reason (Kyverno down with failurePolicy
	// Fail, a webhook timeout, the policies unable to reach the oracle): PVCs are safe, but none
	// can be created.
	GateRefusing GateState = "refusing"
	// GateDisarmed: the canary was admitted (no policy acted), or refused by something that never
	// asked the oracle: labelled PVCs would be created without a check.
	GateDisarmed GateState = "disarmed"
	// GateUnchecked: the API server could not be asked (no credentials, unreachable, forbidden,
	// the canary namespace missing).
	GateUnchecked GateState = "unchecked"
	// GateOff: the self-test is turned off by its settings.
	GateOff GateState = "off"
)

// GateStates lists every state, in the order metrics and documents use.
func GateStates() []GateState {
	return []GateState{GateArmed, GateRefusing, GateDisarmed, GateUnchecked, GateOff}
}

// CanaryPrefix starts the name of every canary PVC. Such names are reserved: the oracle answers
// every lookup of one Unknown (CanaryAnswer), whoever asks and in whatever namespace, so a canary
// (or a PVC that merely looks like one) is never answered restore or fresh.
const CanaryPrefix = "backup-oracle-canary-"

// ErrCanary is the reason of every answer about a canary name.
var ErrCanary = errors.New("gate self-test canary")

// CanaryName is the canary PVC's name for nonce (lowercase hex, so the name stays a valid PVC name).
func CanaryName(nonce string) string { return CanaryPrefix + nonce }

// CanaryNonce returns the nonce of a canary PVC; ok is false when the name is not a canary's.
func CanaryNonce(pvc PVC) (nonce string, ok bool) { return strings.CutPrefix(pvc.Name, CanaryPrefix) }

// CanaryMarker is the part of the canary answer's reason that names its nonce: a refusal that
// carries it carries the oracle's answer about that very canary.
func CanaryMarker(nonce string) string { return ErrCanary.Error() + " " + nonce }

// CanaryAnswer is the answer to every lookup of a canary name: Unknown, with a reason naming the
// self-test and the nonce. No quote or other character a policy engine might escape.
func CanaryAnswer(pvc PVC) Answer {
	nonce, _ := CanaryNonce(pvc)

	return Answer{PVC: pvc, Decision: Unknown, Reason: fmt.Errorf(
		"%w %s: names starting %s are reserved for the backup-oracle gate self-test and are never answered restore or fresh "+
			"(for the self-test's own dry run, this refusal means the gate is armed)", ErrCanary, nonce, CanaryPrefix)}
}

// DryRunVerdict is what the API server did with a server-side dry-run create.
type DryRunVerdict int

// Dry-run verdicts.
const (
	// DryRunAdmitted: admission let the object through (nothing is stored: a dry run).
	DryRunAdmitted DryRunVerdict = iota + 1
	// DryRunDenied: an admission webhook or policy denied it; the message says which and why.
	DryRunDenied
	// DryRunWebhookFailed: an admission webhook with failurePolicy Fail could not be called, or
	// did not answer in time.
	DryRunWebhookFailed
)

// DryRun is the API server's answer to a dry-run create.
type DryRun struct {
	Verdict DryRunVerdict
	// Message is the API server's message (the denial or the webhook failure); empty when admitted.
	Message string
}

// GateCheck is the evidence of one self-test.
type GateCheck struct {
	// Canary is the PVC whose dry-run create was sent; Nonce is its nonce.
	Canary PVC
	Nonce  string
	// DryRun is the API server's answer; Err, when set, is why the API server could not be asked.
	DryRun DryRun
	Err    error
	// Seen: this oracle answered a lookup of the canary while the dry run was in flight.
	Seen bool
}

// Judge returns the state the evidence shows, and why.
//
// Armed needs a denial that carries the oracle's canary answer for this nonce (only the oracle
// writes it, and it names the nonce, so the policies asked the oracle about this very canary and
// acted on its answer; with several replicas another one may have been asked), or, should a
// policy engine drop the oracle's reason from its message, a denial by the backup-oracle policies
// while this oracle saw the lookup. A denial by the backup-oracle policies without either is
// refusing (they could not reach the oracle: PVCs are refused, none is created); a denial by
// anything else, or an admitted canary, is disarmed: the policies did not act.
func (c GateCheck) Judge() (GateState, string) {
	canary := c.Canary.String()
	msg := strings.Join(strings.Fields(c.DryRun.Message), " ")

	if c.Err != nil {
		return GateUnchecked, fmt.Sprintf("the API server could not be asked to dry-run canary %s: %v", canary, c.Err)
	}

	switch c.DryRun.Verdict {
	case DryRunAdmitted:
		return GateDisarmed, fmt.Sprintf("the dry-run create of canary %s was admitted: no policy refused it%s; "+
			"labelled PVCs are created without asking the oracle", canary, seenNote(c.Seen, "although this oracle was asked", ""))
	case DryRunWebhookFailed:
		return GateRefusing, fmt.Sprintf("the dry-run create of canary %s was refused because an admission webhook failed: %s; "+
			"labelled PVCs are safe, but none can be created", canary, msg)
	case DryRunDenied:
	default:
		return GateUnchecked, fmt.Sprintf("the API server's answer to the dry run of canary %s is not understood (verdict %d)", canary, c.DryRun.Verdict)
	}

	switch {
	case strings.Contains(msg, CanaryMarker(c.Nonce)):
		return GateArmed, fmt.Sprintf("the dry-run create of canary %s was refused with the oracle's canary answer%s",
			canary, seenNote(c.Seen, " (this oracle answered it)", ""))
	case c.Seen && namesBackupOracle(msg, c.Canary):
		return GateArmed, fmt.Sprintf("the dry-run create of canary %s was refused by the backup-oracle policies after they asked this oracle "+
			"(the denial does not carry the oracle's reason: %s)", canary, msg)
	case namesBackupOracle(msg, c.Canary):
		return GateRefusing, fmt.Sprintf("the dry-run create of canary %s was refused by the backup-oracle policies without the oracle's answer "+
			"(can Kyverno reach the oracle?): %s; labelled PVCs are safe, but none can be created", canary, msg)
	default:
		return GateDisarmed, fmt.Sprintf("the dry-run create of canary %s was refused, but not by the backup-oracle policies%s: %s",
			canary, seenNote(c.Seen, ", although this oracle was asked", ", which never asked the oracle"), msg)
	}
}

func seenNote(seen bool, ifSeen, ifNot string) string {
	if seen {
		return ifSeen
	}

	return ifNot
}

// namesBackupOracle reports whether a message names the backup-oracle policies (their names and
// messages say backup-oracle), the canary's own namespace and name, which contain it, left out.
func namesBackupOracle(msg string, canary PVC) bool {
	msg = strings.ReplaceAll(msg, canary.Name, "")
	if canary.Namespace != "" {
		msg = strings.ReplaceAll(msg, canary.Namespace, "")
	}

	return strings.Contains(msg, "backup-oracle")
}

// GateStatus is the self-test's state as /status, the console and the metrics show it.
type GateStatus struct {
	State  GateState
	Reason string
	// LastCheck is when the last check started (its dry run was sent); zero before the first.
	LastCheck time.Time
	// Interval is the pause between checks (zero: off).
	Interval time.Duration
	// Canary is the last canary sent (its namespace is the canary namespace).
	Canary PVC
	// Uncovered are the namespaces holding backups whose PVCs the policies never check.
	Uncovered []UncoveredNamespace
}

// UncoveredNamespace is a namespace that holds backups but that the policies exclude: a PVC
// created there is never checked, so it starts empty even when its backup exists.
type UncoveredNamespace struct {
	Namespace string
	// Sources counts the backup sources stored for the namespace, over every backend.
	Sources int
	// Backends names the backends holding them, in the inventory's order.
	Backends []string
}

// Reason is the sentence an operator reads.
func (u UncoveredNamespace) Reason() string {
	return fmt.Sprintf("backups exist for namespace %s, but its PVCs are never checked: the policies exclude it "+
		"(%d backup source(s) on %s)", u.Namespace, u.Sources, strings.Join(u.Backends, ", "))
}

// Uncovered lists, sorted by namespace, the namespaces among excluded that hold backups in inv.
// A source that maps back to no namespace is not counted; an inventory that is not authoritative
// lists nothing (its backend's backups are then not known).
func Uncovered(inv []Inventory, excluded []string) []UncoveredNamespace {
	byNS := map[string]*UncoveredNamespace{}

	for _, i := range inv {
		for _, s := range i.Stored {
			ns := s.PVC.Namespace
			if ns == "" || !slices.Contains(excluded, ns) {
				continue
			}

			u := byNS[ns]
			if u == nil {
				u = &UncoveredNamespace{Namespace: ns}
				byNS[ns] = u
			}

			u.Sources++
			if !slices.Contains(u.Backends, i.Backend) {
				u.Backends = append(u.Backends, i.Backend)
			}
		}
	}

	out := make([]UncoveredNamespace, 0, len(byNS))
	for _, u := range byNS {
		out = append(out, *u)
	}

	slices.SortFunc(out, func(a, b UncoveredNamespace) int { return strings.Compare(a.Namespace, b.Namespace) })

	return out
}
