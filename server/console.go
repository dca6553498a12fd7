package server

import (
	"bytes"
	"cmp"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/backup-oracle/backup-oracle/repo"
)

// DefaultStaleFor is the console's staleness threshold: a daily backup (the policies' "daily"
// schedule) plus two hours of slack.
const DefaultStaleFor = 26 * time.Hour

//go:embed console.html
var consoleFS embed.FS //nolint:gochecknoglobals // go:embed needs a package variable

func consoleTemplate() *template.Template {
	return template.Must(template.New("console.html").Funcs(template.FuncMap{
		"age": func(s *float64) string {
			if s == nil {
				return "–"
			}

			return humanAge(time.Duration(*s * float64(time.Second)))
		},
		"when":        func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
		"whenp":       func(t *time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
		"bytes":       humanBytes,
		"newestFirst": newestFirst,
		"restores":    restores,
	}).ParseFS(consoleFS, "console.html"))
}

// humanBytes prints a size for people: 512 B, 1.5 KiB, 1.0 GiB.
func humanBytes(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}

	v, unit := float64(n)/1024, 0
	for v >= 1024 && unit < 4 {
		v /= 1024
		unit++
	}

	return fmt.Sprintf("%.1f %ciB", v, "KMGTP"[unit])
}

// newestFirst returns the snapshots (oldest first, as explained) newest first: the one a plain
// restore gets is on top.
func newestFirst(s []snapshotDetail) []snapshotDetail {
	out := make([]snapshotDetail, len(s))
	for i := range s {
		out[len(s)-1-i] = s[i]
	}

	return out
}

// restores reports whether snapshot id of backend is the one VolSync would restore for answer a:
// the selected one (a point in time) or the newest, of the backend that decided restore.
func restores(a existsResponse, backend, id string) bool {
	if a.Decision != repo.Restore || a.Backend != backend {
		return false
	}

	if a.SelectedSnapshot != nil {
		return a.SelectedSnapshot.ID == id
	}

	return a.LatestSnapshot != nil && a.LatestSnapshot.ID == id
}

// consoleData is what the page shows.
type consoleData struct {
	Query, AsOf, Previous string
	// Source is the named source searched for (what the annotation backup-oracle.io/restore-source
	// would say), empty for the PVC's own.
	Source string
	// QueryError is why the search could not run; Result is the search's answer.
	QueryError string
	Result     *explainResponse
	StaleFor   string
	// Gate is the gate self-test, nil when the server has none.
	Gate      *gateJSON
	Backends  []backendStatus
	Cutover   *cutoverStatus
	Inventory backupsResponse
	Rows      []consoleRow
	Stale     int
	Broken    int
	Generated time.Time
	// Caller is who the page is for, when authentication is on.
	Caller string
	// Hidden says what the caller may not see (the backends and the gate); Scope, which
	// namespaces the inventory is restricted to.
	Hidden, Scope string
}

type consoleRow struct {
	backupEntry
	// State is "ok", "stale" or "error": the row's colour.
	State string
}

// consolePage is the read-only console: the gate self-test and the namespaces whose backups the
// policies never check, the backends' index state, a search "will this PVC
// restore?" (?pvc=namespace/name, optionally asOf and previous) showing the decision and the
// explanation, and the inventory with staleness (?staleFor=, default DefaultStaleFor).
// Server-rendered with html/template (every value escaped), no script, no external asset.
func (h *handler) consolePage(c *gin.Context) {
	d := consoleData{Query: strings.TrimSpace(c.Query("pvc")), AsOf: c.Query("asOf"), Previous: c.Query("previous"),
		Source: strings.TrimSpace(c.Query("source")), Generated: h.now().UTC()}

	stale := h.staleFor
	if v := c.Query("staleFor"); v != "" {
		s, err := staleFor(c)
		if err != nil {
			d.QueryError = err.Error()
		} else {
			stale = s
		}
	}

	d.StaleFor = stale.String()

	if d.Query != "" {
		ctx, cancel := context.WithTimeout(c.Request.Context(), h.timeout)
		var serr string
		d.Result, serr = h.search(ctx, c, d.Query, d.AsOf, d.Previous, d.Source)
		d.QueryError = strings.TrimSpace(d.QueryError + "\n" + serr)

		cancel()
	}

	if !h.consoleScope(c, &d) {
		return
	}

	for _, b := range d.Inventory.Backups {
		row := consoleRow{backupEntry: b, State: "ok"}

		switch {
		case b.Error != "":
			row.State = "error"
			d.Broken++
		case b.AgeSeconds != nil && *b.AgeSeconds > stale.Seconds():
			row.State = "stale"
			d.Stale++
		}

		d.Rows = append(d.Rows, row)
	}

	var buf bytes.Buffer
	if err := h.console.Execute(&buf, d); err != nil {
		h.logger.Error("render console", "err", err)
		c.JSON(http.StatusInternalServerError, errorBody{Error: "internal error"})

		return
	}

	// Read-only, self-contained: no script, no external resource, forms to this page only, never
	// framed, cached or sent as a referrer (its URLs name PVCs).
	c.Header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	c.Header("X-Frame-Options", "DENY")
	c.Header("Referrer-Policy", "no-referrer")
	c.Data(http.StatusOK, "text/html; charset=utf-8", buf.Bytes())
}

// consoleScope fills the parts of the page the caller may see: the backends, the gate and the
// cutover with get repositories, the inventory's namespaces it may list. It answers 503 itself
// and returns false when that cannot be told.
func (h *handler) consoleScope(c *gin.Context, d *consoleData) bool {
	if !unrestricted(c) {
		d.Caller = callerOf(c).Name
	}

	repos, err := h.may(c, Access{Verb: VerbGet, Resource: ResourceRepositories})
	if err != nil {
		h.deny(c, http.StatusServiceUnavailable, fmt.Sprintf("cannot check what %q may see: %v", d.Caller, err))
		return false
	}

	if repos {
		d.Gate, d.Backends, d.Cutover = h.gateStatus(), h.statuses(), h.cutoverStatus()
	} else {
		d.Hidden = "The backends, the gate self-test and the cutover are shown to those who may get repositories." + APIGroup + "."
	}

	d.Inventory = h.inventory("", 0)

	if unrestricted(c) {
		return true
	}

	namespaces := make([]string, 0, len(d.Inventory.Backups))
	for _, b := range d.Inventory.Backups {
		namespaces = append(namespaces, b.Namespace)
	}

	all, visible, err := h.visibleNamespaces(c, namespaces)
	if err != nil {
		h.deny(c, http.StatusServiceUnavailable, fmt.Sprintf("cannot check which namespaces %q may list backups of: %v", d.Caller, err))
		return false
	}

	if !all {
		kept := d.Inventory.Backups[:0]
		for _, b := range d.Inventory.Backups {
			if visible[b.Namespace] {
				kept = append(kept, b)
			}
		}

		d.Inventory.Backups = kept
		d.Scope = "Only the namespaces you may list backups." + APIGroup + " in: " + strings.Join(slices.Sorted(maps.Keys(visible)), ", ") + "."

		if len(visible) == 0 {
			d.Scope = "You may list backups." + APIGroup + " in no namespace holding backups."
		}
	}

	if !repos {
		h.redactErrors(c, &d.Inventory)
	}

	return true
}

func errString(err error) string {
	if err == nil {
		return ""
	}

	return err.Error()
}

// search runs the console's query "namespace/pvc" like /explain does, from the named source
// when one is given.
func (h *handler) search(ctx context.Context, c *gin.Context, q, asOf, previous, source string) (*explainResponse, string) {
	ns, name, ok := strings.Cut(q, "/")
	if !ok {
		return nil, "search for namespace/pvc, e.g. shop/postgres"
	}

	access := Access{Verb: VerbGet, Resource: ResourceBackups, Namespace: ns}
	if ok, err := h.may(c, access); err != nil || !ok {
		return nil, cmp.Or(errString(err), forbidden(callerOf(c), access, ""))
	}

	pvc := repo.PVC{Namespace: ns, Name: name}

	var (
		p    repo.PointInTime
		errs []error
	)

	errs = append(errs, pvc.Validate())

	if asOf != "" {
		t, err := repo.ParseAsOf(asOf)
		p.AsOf, errs = t, append(errs, err)
	}

	if previous != "" {
		n, err := repo.ParsePrevious(previous)
		p.Previous, errs = n, append(errs, err)
	}

	var src repo.KopiaSource

	if source != "" {
		s, err := repo.ParseKopiaSource(source)
		src, errs = s, append(errs, err)
	}

	if err := errors.Join(errs...); err != nil {
		return nil, err.Error()
	}

	r := h.explanation(ctx, repo.Query{PVC: pvc, PointInTime: p, Source: src})

	return &r, ""
}
