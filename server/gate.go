package server

import (
	"time"

	"github.com/backup-oracle/backup-oracle/repo"
)

// Gate is what the server shows of the gate self-test (repo/gate.Gate): the last check and the
// namespaces whose backups the policies never check. Status does no I/O. It is shown on /status
// and the console, never in /readyz: the gate must not depend on itself, and a pod taken out of
// the Service because Kyverno is down would deny every labelled PVC for a second reason.
type Gate interface {
	Status() repo.GateStatus
}

// gateJSON is the gate self-test on /status.
type gateJSON struct {
	State  repo.GateState `json:"state"`
	Reason string         `json:"reason"`
	// LastCheck is when the last check started (its dry run was sent); absent before the first.
	LastCheck       *time.Time `json:"lastCheck,omitempty"`
	IntervalSeconds float64    `json:"intervalSeconds,omitempty"`
	// Canary is the last canary PVC sent, namespace/name.
	Canary string `json:"canary,omitempty"`
	// Uncovered lists the namespaces holding backups that the policies exclude; always present.
	Uncovered []uncoveredJSON `json:"uncoveredNamespaces"`
}

type uncoveredJSON struct {
	Namespace string   `json:"namespace"`
	Sources   int      `json:"sources"`
	Backends  []string `json:"backends"`
	Reason    string   `json:"reason"`
}

// gateStatus renders the gate's status; nil without a gate.
func (h *handler) gateStatus() *gateJSON {
	if h.gate == nil {
		return nil
	}

	st := h.gate.Status()
	g := &gateJSON{State: st.State, Reason: st.Reason, IntervalSeconds: st.Interval.Seconds(), Uncovered: []uncoveredJSON{}}

	if !st.LastCheck.IsZero() {
		t := st.LastCheck.UTC()
		g.LastCheck = &t
	}

	if st.Canary.Name != "" {
		g.Canary = st.Canary.String()
	}

	for _, u := range st.Uncovered {
		g.Uncovered = append(g.Uncovered, uncoveredJSON{Namespace: u.Namespace, Sources: u.Sources, Backends: u.Backends, Reason: u.Reason()})
	}

	return g
}
