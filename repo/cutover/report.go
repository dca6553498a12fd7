package cutover

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/backup-oracle/backup-oracle/repo"
)

// State is where a PVC's final backup stands.
type State string

// States of a PVC.
const (
	// Done: every ReplicationSource of the PVC reports the cutover's trigger done.
	Done State = "done"
	// Waiting: before the instant, or the trigger is set (or about to be) and VolSync has not
	// finished.
	Waiting State = "waiting"
	// Mounted: a pod other than a VolSync mover still uses the PVC; its trigger is not set.
	Mounted State = "mounted"
	// Failed: nothing backs the PVC up, a change was refused, or VolSync reports an error (it
	// retries; the PVC may still become done).
	Failed State = "failed"
)

// States lists every state, in the order tables and metrics use.
func States() []State { return []State{Done, Waiting, Mounted, Failed} }

// Result is one PVC after a pass.
type Result struct {
	PVC   repo.PVC
	State State
	// Sources are the names of the ReplicationSources backing it up.
	Sources []string
	// Detail says why, in a sentence (VolSync's condition, the pods using it, what was scaled).
	Detail string
}

// Report is one pass over every backup-labelled PVC.
type Report struct {
	Cutover repo.Cutover
	Trigger string
	Time    time.Time
	// Results are sorted by namespace and name.
	Results []Result
	// Scaled are the workloads this pass scaled to zero.
	Scaled []string
}

// Count is the number of PVCs in state s.
func (r Report) Count(s State) int {
	n := 0

	for _, res := range r.Results {
		if res.State == s {
			n++
		}
	}

	return n
}

// Done reports whether every PVC is done (true when there is none).
func (r Report) Done() bool { return r.Count(Done) == len(r.Results) }

// Summary is one line: the counts per state.
func (r Report) Summary() string {
	parts := make([]string, 0, len(States()))
	for _, s := range States() {
		parts = append(parts, fmt.Sprintf("%d %s", r.Count(s), s))
	}

	return fmt.Sprintf("cutover at %s from %s, trigger %s: %d PVCs: %s", r.Cutover.At.UTC().Format(time.RFC3339), orNone(r.Cutover.From),
		r.Trigger, len(r.Results), strings.Join(parts, ", "))
}

// Table writes the report as a table: NAMESPACE, PVC, STATE, REPLICATIONSOURCES, DETAIL.
func (r Report) Table(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tPVC\tSTATE\tREPLICATIONSOURCES\tDETAIL")

	for _, res := range r.Results {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", res.PVC.Namespace, res.PVC.Name, res.State, orNone(strings.Join(res.Sources, ",")), res.Detail)
	}

	return tw.Flush()
}

// TerminationMessage is the summary and the PVCs not done, one per line, within limit bytes (a
// container's termination message holds 4096): what `kubectl get pod` shows of the Job after it
// ended.
func (r Report) TerminationMessage(limit int) string {
	var b strings.Builder

	b.WriteString(r.Summary())

	for _, res := range r.Results {
		if res.State == Done {
			continue
		}

		line := fmt.Sprintf("\n%s %s: %s", res.PVC, res.State, res.Detail)
		if b.Len()+len(line) > limit-len("\n…") {
			b.WriteString("\n…")
			break
		}

		b.WriteString(line)
	}

	return b.String()
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}

	return s
}
