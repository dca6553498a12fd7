package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"
)

// The API's answers as the commands read them (a subset of openapi.yaml).
type (
	snapRef struct {
		ID   string    `json:"id"`
		Time time.Time `json:"time"`
		Size int64     `json:"size"`
	}
	existsBody struct {
		Decision         string   `json:"decision"`
		Namespace        string   `json:"namespace"`
		PVC              string   `json:"pvc"`
		Backend          string   `json:"backend"`
		Source           string   `json:"source"`
		SnapshotCount    int      `json:"snapshotCount"`
		LatestSnapshot   *snapRef `json:"latestSnapshot"`
		SelectedSnapshot *snapRef `json:"selectedSnapshot"`
		PointInTime      *struct {
			AsOf     *time.Time `json:"asOf"`
			Previous int        `json:"previous"`
		} `json:"pointInTime"`
		RestoreSource string `json:"restoreSource"`
		Error         string `json:"error"`
	}
	snapDetail struct {
		Backend   string     `json:"backend"`
		Source    string     `json:"source"`
		ID        string     `json:"id"`
		StartTime time.Time  `json:"startTime"`
		EndTime   *time.Time `json:"endTime"`
		Size      int64      `json:"size"`
		Files     int64      `json:"files"`
		Host      string     `json:"host"`
		Paths     []string   `json:"paths"`
		Tags      []string   `json:"tags"`
		Selected  bool       `json:"selected"`
	}
)

// decisionExit maps a decision to the exit code.
func decisionExit(d string) int {
	switch d {
	case "restore":
		return exitRestore
	case "fresh":
		return exitFresh
	}

	return exitUnknown
}

func renderCheck(w io.Writer, _ int, body []byte) int {
	var b existsBody
	if err := json.Unmarshal(body, &b); err != nil {
		fmt.Fprintf(w, "unreadable answer: %v\n", err)
		return exitUnknown
	}

	writeAnswer(w, b)

	return decisionExit(b.Decision)
}

func writeAnswer(w io.Writer, b existsBody) {
	fmt.Fprintf(w, "%s/%s: %s", b.Namespace, b.PVC, strings.ToUpper(b.Decision))

	if b.Backend != "" {
		fmt.Fprintf(w, " (%s)", b.Backend)
	}

	fmt.Fprintln(w)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if b.Source != "" {
		fmt.Fprintf(tw, "  source\t%s\n", b.Source)
	}

	if b.RestoreSource != "" {
		fmt.Fprintf(tw, "  named\tby the PVC (annotation backup-oracle.io/restore-source), instead of its own\n")
	}

	fmt.Fprintf(tw, "  snapshots\t%d\n", b.SnapshotCount)

	if s := b.LatestSnapshot; s != nil {
		fmt.Fprintf(tw, "  latest\t%s  %s  %s\n", s.ID, s.Time.UTC().Format(time.RFC3339), size(s.Size))
	}

	if p := b.PointInTime; p != nil {
		at := "latest"
		if p.AsOf != nil {
			at = "restoreAsOf " + p.AsOf.UTC().Format(time.RFC3339)
		}

		fmt.Fprintf(tw, "  asked\t%s, previous %d\n", at, p.Previous)
	}

	if s := b.SelectedSnapshot; s != nil {
		fmt.Fprintf(tw, "  restores\t%s  %s  %s\n", s.ID, s.Time.UTC().Format(time.RFC3339), size(s.Size))
	}

	if b.Error != "" {
		fmt.Fprintf(tw, "  reason\t%s\n", strings.ReplaceAll(b.Error, "\n", "; "))
	}

	_ = tw.Flush()
}

func renderSnapshots(w io.Writer, code int, body []byte) int {
	var b struct {
		Namespace string       `json:"namespace"`
		PVC       string       `json:"pvc"`
		Snapshots []snapDetail `json:"snapshots"`
		Error     string       `json:"error"`
	}

	if err := json.Unmarshal(body, &b); err != nil {
		fmt.Fprintf(w, "unreadable answer: %v\n", err)
		return exitUnknown
	}

	if len(b.Snapshots) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "\tSNAPSHOT\tSTART\tEND\tSIZE\tFILES\tBACKEND\tIDENTITY")

		for _, s := range b.Snapshots {
			mark, end := " ", ""
			if s.Selected {
				mark = "*"
			}

			if s.EndTime != nil {
				end = s.EndTime.UTC().Format(time.RFC3339)
			}

			id := s.Source
			if s.Host != "" || len(s.Tags) > 0 {
				id += fmt.Sprintf(" (host %s, paths %s, tags %s)", s.Host, strings.Join(s.Paths, ","), strings.Join(s.Tags, ","))
			}

			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", mark, shortID(s.ID), s.StartTime.UTC().Format(time.RFC3339), end,
				size(s.Size), count(s.Files), s.Backend, id)
		}

		_ = tw.Flush()
	}

	if b.Error != "" {
		fmt.Fprintf(w, "%s/%s: %s\n", b.Namespace, b.PVC, strings.ReplaceAll(b.Error, "\n", "; "))
	}

	switch code {
	case http.StatusOK:
		return exitRestore
	case http.StatusNotFound:
		return exitFresh
	}

	return exitUnknown
}

func renderList(w io.Writer, code int, body []byte) int {
	var b struct {
		Complete bool `json:"complete"`
		Backups  []struct {
			Backend        string   `json:"backend"`
			Namespace      string   `json:"namespace"`
			PVC            string   `json:"pvc"`
			Source         string   `json:"source"`
			SnapshotCount  int      `json:"snapshotCount"`
			NewestSnapshot *snapRef `json:"newestSnapshot"`
			AgeSeconds     *float64 `json:"ageSeconds"`
			Error          string   `json:"error"`
		} `json:"backups"`
		Errors []struct {
			Backend string `json:"backend"`
			Error   string `json:"error"`
		} `json:"errors"`
	}

	if err := json.Unmarshal(body, &b); err != nil {
		fmt.Fprintf(w, "unreadable answer: %v\n", err)
		return exitUnknown
	}

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tPVC\tSNAPSHOTS\tNEWEST\tAGE\tBACKEND\tSOURCE")

	for _, r := range b.Backups {
		newest, age := "-", "-"
		if r.NewestSnapshot != nil {
			newest = r.NewestSnapshot.Time.UTC().Format(time.RFC3339)
		}

		if r.AgeSeconds != nil {
			age = humanDuration(time.Duration(*r.AgeSeconds * float64(time.Second)))
		}

		src := r.Source
		if r.Error != "" {
			src += "  ! " + strings.ReplaceAll(r.Error, "\n", "; ")
		}

		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", dash(r.Namespace), dash(r.PVC), r.SnapshotCount, newest, age, r.Backend, src)
	}

	_ = tw.Flush()

	for _, e := range b.Errors {
		fmt.Fprintf(w, "INCOMPLETE: backend %s is not authoritative, its backups are missing above: %s\n", e.Backend, strings.ReplaceAll(e.Error, "\n", "; "))
	}

	if code != http.StatusOK || !b.Complete {
		return exitUnknown
	}

	return exitRestore
}

func renderIdentity(w io.Writer, _ int, body []byte) int {
	var b struct {
		Namespace              string `json:"namespace"`
		PVC                    string `json:"pvc"`
		ReplicationSource      string `json:"replicationSource"`
		ReplicationDestination string `json:"replicationDestination"`
		Backends               []struct {
			Backend string `json:"backend"`
			Source  string `json:"source"`
			Error   string `json:"error"`
		} `json:"backends"`
	}

	if err := json.Unmarshal(body, &b); err != nil {
		fmt.Fprintf(w, "unreadable answer: %v\n", err)
		return exitUnknown
	}

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "PVC\t%s/%s\n", b.Namespace, b.PVC)
	fmt.Fprintf(tw, "ReplicationSource\t%s\n", b.ReplicationSource)
	fmt.Fprintf(tw, "ReplicationDestination\t%s\n", b.ReplicationDestination)

	for _, be := range b.Backends {
		v := be.Source
		if be.Error != "" {
			v = "? " + be.Error
		}

		fmt.Fprintf(tw, "%s looks up\t%s\n", be.Backend, v)
	}

	_ = tw.Flush()

	return exitRestore
}

func renderExplain(w io.Writer, _ int, body []byte) int {
	var b struct {
		Answer   existsBody `json:"answer"`
		Backends []struct {
			Backend   string       `json:"backend"`
			Source    string       `json:"source"`
			Snapshots []snapDetail `json:"snapshots"`
			Nearby    []string     `json:"nearby"`
			Error     string       `json:"error"`
		} `json:"backends"`
	}

	if err := json.Unmarshal(body, &b); err != nil {
		fmt.Fprintf(w, "unreadable answer: %v\n", err)
		return exitUnknown
	}

	writeAnswer(w, b.Answer)

	for _, be := range b.Backends {
		fmt.Fprintf(w, "\n%s looks up %s: %d snapshot(s)\n", be.Backend, be.Source, len(be.Snapshots))

		for i := len(be.Snapshots) - 1; i >= 0; i-- {
			s := be.Snapshots[i]
			fmt.Fprintf(w, "  %s  %s  %s\n", shortID(s.ID), s.StartTime.UTC().Format(time.RFC3339), size(s.Size))
		}

		if be.Error != "" {
			fmt.Fprintf(w, "  not authoritative: %s\n", strings.ReplaceAll(be.Error, "\n", "; "))
		}

		if len(be.Nearby) > 0 {
			fmt.Fprintf(w, "  stored nearby (an identity mismatch shows here):\n")

			for _, n := range be.Nearby {
				fmt.Fprintf(w, "    %s\n", n)
			}
		}
	}

	return decisionExit(b.Answer.Decision)
}

func shortID(id string) string {
	if len(id) > 16 {
		return id[:16]
	}

	return id
}

func size(n int64) string {
	if n == 0 {
		return "-"
	}

	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}

	v, i := float64(n)/unit, 0
	for v >= unit && i < 4 {
		v /= unit
		i++
	}

	return fmt.Sprintf("%.1f %ciB", v, "KMGTP"[i])
}

func count(n int64) string {
	if n == 0 {
		return "-"
	}

	return fmt.Sprint(n)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}

	return s
}

// humanDuration prints an age: 42s, 5m, 3h12m, 2d04h.
func humanDuration(d time.Duration) string {
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

// printCommandHelp is `backup-oracle <command> -h`: what it does, examples, exit codes, flags.
func printCommandHelp(w io.Writer, c command, fs *flag.FlagSet) {
	fmt.Fprintf(w, `backup-oracle %s %s [flags]

%s

It reads the repository with the same settings as the server (BACKEND_TYPE, KOPIA_*, S3_*,
RESTIC_*, BACKENDS_FILE: every server flag below), loads the index once and answers by the same
rules, without an HTTP server; or, with --server URL, asks a running backup-oracle.

Examples:
%s
  backup-oracle %s --demo %s        # on the demo repository

Exit codes: 0 restore (a snapshot exists; for list: every backend answered),
  3 fresh (authoritatively no backup), 4 unknown (a backend is not authoritative),
  2 usage error or invalid name, 1 the repository or the server could not be asked.

Output: tables by default, -o json prints the API's answer (openapi.yaml).

Flags:
`, c.name, c.args, c.summary, c.examples, c.name, demoArg(c))
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

func demoArg(c command) string {
	if c.pvcArg {
		return "shop/postgres"
	}

	return ""
}
