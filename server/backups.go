package server

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/backup-oracle/backup-oracle/repo"
)

// backupsResponse is GET /backups: the inventory of every backup source of every backend.
type backupsResponse struct {
	// Complete is false when a backend is not authoritative: its backups are then missing from
	// the list (and the status is 503).
	Complete bool          `json:"complete"`
	StaleFor string        `json:"staleFor,omitempty"`
	Backups  []backupEntry `json:"backups"`
	Errors   []backendErr  `json:"errors,omitempty"`
	// VisibleNamespaces is set when the caller may list backups in some namespaces only: the
	// list holds theirs, and nothing else (README, "Who may ask").
	VisibleNamespaces []string `json:"visibleNamespaces,omitempty"`
}

type backupEntry struct {
	Backend   string `json:"backend"`
	Namespace string `json:"namespace,omitempty"`
	// PVC is a PVC that restores from Source; empty when Source maps back to none.
	PVC            string        `json:"pvc,omitempty"`
	Source         string        `json:"source"`
	SnapshotCount  int           `json:"snapshotCount"`
	NewestSnapshot *snapshotJSON `json:"newestSnapshot,omitempty"`
	AgeSeconds     *float64      `json:"ageSeconds,omitempty"`
	Error          string        `json:"error,omitempty"`
}

type backendErr struct {
	Backend string `json:"backend"`
	Error   string `json:"error"`
}

// backups answers the inventory: 200 when every backend is authoritative, 503 (with what the
// others hold) when one is not, 400 for a bad filter. ?namespace= keeps one namespace;
// ?staleFor=26h keeps the sources whose newest snapshot is older than that, and those whose
// snapshots cannot be vouched for.
func (h *handler) backups(c *gin.Context) {
	ns, nerr := namespaceFilter(c)
	stale, serr := staleFor(c)

	if err := errors.Join(nerr, serr); err != nil {
		c.JSON(http.StatusBadRequest, errorBody{Error: err.Error()})
		return
	}

	out := h.inventory(ns, stale)
	if !h.restrict(c, &out, ns) {
		return
	}

	code := http.StatusOK
	if !out.Complete {
		code = http.StatusServiceUnavailable
	}

	switch c.Query("format") {
	case "", "json":
		c.JSON(code, out)
	case "ledger":
		if !out.Complete {
			c.JSON(code, errorBody{Error: "a backend is not authoritative, so the inventory is incomplete and no ledger is exported (it would forget backups): " + joinErrors(out.Errors)})
			return
		}

		c.Data(http.StatusOK, "application/yaml; charset=utf-8", ledgerFile(out.Backups))
	default:
		c.JSON(http.StatusBadRequest, errorBody{Error: fmt.Sprintf("%s: format=%q: want json or ledger", repo.ErrInvalidParameter, c.Query("format"))})
	}
}

func joinErrors(errs []backendErr) string {
	parts := make([]string, len(errs))
	for i, e := range errs {
		parts[i] = e.Backend + ": " + e.Error
	}

	return strings.Join(parts, "; ")
}

// ledgerFile renders backups as an expected-backups ledger (EXPECTED_BACKUPS_FILE, package
// repo/ledger): every PVC the inventory maps a backup back to, sorted, once; the sources that do
// not map back to a PVC name (a collision-free username, another path or naming scheme) are
// listed as comments, for a human to add by hand. Commit it with the apps: the memory that "this
// PVC once had data" then travels to the next cluster.
func ledgerFile(backups []backupEntry) []byte {
	var (
		pvcs     []string
		unmapped []string
	)

	for _, b := range backups {
		switch {
		case b.PVC != "":
			pvcs = append(pvcs, b.Namespace+"/"+b.PVC)
		default:
			unmapped = append(unmapped, b.Backend+": "+b.Source)
		}
	}

	slices.Sort(pvcs)
	pvcs = slices.Compact(pvcs)

	var out strings.Builder

	out.WriteString("# backup-oracle expected backups: PVCs known to have had a backup (exported from GET /backups?format=ledger).\n")
	out.WriteString("# A listed PVC is never answered \"fresh\" when no backup is found. Mount it as EXPECTED_BACKUPS_FILE.\n")
	out.WriteString("# Names are matched without their dots (the Kopia mover drops them: my.app.data is listed as myappdata).\n")

	if len(unmapped) > 0 {
		out.WriteString("# Sources not mapped back to a PVC name (add their PVCs by hand):\n")

		for _, u := range unmapped {
			out.WriteString("#   " + u + "\n")
		}
	}

	if len(pvcs) == 0 {
		out.WriteString("pvcs: []\n")
		return []byte(out.String())
	}

	out.WriteString("pvcs:\n")

	for _, p := range pvcs {
		out.WriteString("  - " + p + "\n")
	}

	return []byte(out.String())
}

// restrict keeps, of out, what the caller may list: everything with the right cluster-wide, else
// the namespaces it may list backups in (backend errors, which may name repository locations,
// are then summarised). It answers 403 (or 503) itself and returns false when the caller may see
// nothing: ?namespace= it may not list, or no namespace of the inventory.
func (h *handler) restrict(c *gin.Context, out *backupsResponse, namespace string) bool {
	if unrestricted(c) {
		return true
	}

	if namespace != "" {
		return h.allowed(c, callerOf(c), Access{Verb: VerbList, Resource: ResourceBackups, Namespace: namespace}) && h.redactErrors(c, out)
	}

	namespaces := make([]string, 0, len(out.Backups))
	for _, b := range out.Backups {
		namespaces = append(namespaces, b.Namespace)
	}

	all, visible, err := h.visibleNamespaces(c, namespaces)

	switch {
	case err != nil:
		h.deny(c, http.StatusServiceUnavailable, fmt.Sprintf("cannot check which namespaces %q may list backups of: %v", callerOf(c).Name, err))
		return false
	case all:
		return true
	case len(visible) == 0:
		h.deny(c, http.StatusForbidden, forbidden(callerOf(c), Access{Verb: VerbList, Resource: ResourceBackups}, "nor in any namespace holding backups"))
		return false
	}

	kept := out.Backups[:0]
	for _, b := range out.Backups {
		if visible[b.Namespace] {
			kept = append(kept, b)
		}
	}

	out.Backups = kept
	out.VisibleNamespaces = slices.Sorted(maps.Keys(visible))

	return h.redactErrors(c, out)
}

// redactErrors replaces the backends' errors by a sentence for a caller who may not see the
// repositories (their errors name locations and credentials' files). It returns true.
func (h *handler) redactErrors(c *gin.Context, out *backupsResponse) bool {
	if ok, err := h.may(c, Access{Verb: VerbGet, Resource: ResourceRepositories}); ok && err == nil {
		return true
	}

	for i := range out.Errors {
		out.Errors[i].Error = "not authoritative (the reason is on /status, for those who may get repositories." + APIGroup + ")"
	}

	return true
}

// inventory builds the /backups body; the console shows the same.
func (h *handler) inventory(namespace string, stale time.Duration) backupsResponse {
	out := backupsResponse{Complete: true, Backups: []backupEntry{}}
	if stale > 0 {
		out.StaleFor = stale.String()
	}

	now := h.now()

	for _, inv := range h.oracle.Inventory() {
		if inv.Err != nil {
			out.Complete = false
			out.Errors = append(out.Errors, backendErr{Backend: inv.Backend, Error: inv.Err.Error()})

			continue
		}

		for _, s := range inv.Stored {
			if namespace != "" && s.PVC.Namespace != namespace {
				continue
			}

			age, ok := s.Age(now)
			if stale > 0 && ok && age <= stale {
				continue
			}

			out.Backups = append(out.Backups, entry(inv.Backend, s, age, ok))
		}
	}

	slices.SortStableFunc(out.Backups, func(a, b backupEntry) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.PVC, b.PVC), cmp.Compare(a.Source, b.Source), cmp.Compare(a.Backend, b.Backend))
	})

	return out
}

func entry(backend string, s repo.Stored, age time.Duration, hasAge bool) backupEntry {
	e := backupEntry{Backend: backend, Namespace: s.PVC.Namespace, PVC: s.PVC.Name, Source: s.Source, SnapshotCount: s.Snapshots}

	if s.Newest != nil {
		e.NewestSnapshot = &snapshotJSON{ID: s.Newest.ID, Time: s.Newest.StartTime.UTC(), Size: s.Newest.TotalSize}
	}

	if hasAge {
		a := age.Seconds()
		e.AgeSeconds = &a
	}

	if s.Err != nil {
		e.Error = s.Err.Error()
	}

	return e
}

// humanAge prints an age for people: 3d4h, 5h12m, 42s.
func humanAge(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}

	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}
