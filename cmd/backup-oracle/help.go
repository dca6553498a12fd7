package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/backup-oracle/backup-oracle/repo"
)

// printHelp is --help: what the program does, how to run it, the backend kinds of the registry
// and every flag with its environment variables.
func printHelp(w io.Writer, fs *flag.FlagSet, kinds repo.Registry) {
	fmt.Fprint(w, `backup-oracle answers Kyverno, at PVC admission, whether a backup exists for a PVC:
restore (a snapshot exists), fresh (authoritatively none) or unknown (HTTP 503: deny the PVC).

Usage:
  backup-oracle [flags]            serve (every flag also reads the environment variable shown)
  backup-oracle --check-config     validate the configuration, print it and exit
  backup-oracle kinds [-o json]    list the backend kinds and the settings each reads
  backup-oracle rights [-o json]   the Kubernetes API rights this configuration needs (the chart's Role)
  backup-oracle gate check         run one gate self-test now: armed (exit 0), disarmed (3), refusing (4), unchecked (1)
  backup-oracle cutover run|undo   the colour being left of a cutover: the final backups (exit 0 done, 3 not done), or undo them

Operator commands (same settings; each has -h with examples and exit codes):
  backup-oracle check NS/PVC       will it restore? restore (exit 0), fresh (3), unknown (4)
  backup-oracle snapshots NS/PVC   every snapshot, newest first
  backup-oracle list [NS]          every PVC with a backup and the age of its newest snapshot
  backup-oracle identity NS/PVC    the RS/RD names the policies generate and the identity looked up
  backup-oracle explain NS/PVC     the answer with every snapshot and what is stored nearby
  (--server URL asks a running oracle instead of reading the repository; -o json)

Examples:
  backup-oracle --demo                                             # a demo repository; prints curl lines
  BACKEND_TYPE=kopia-fs KOPIA_REPOSITORY_PATH=/repository KOPIA_PASSWORD_FILE=/secrets/pw backup-oracle
  BACKEND_TYPE=restic-s3 S3_ENDPOINT=https://minio:9000 S3_BUCKET=volsync backup-oracle --check-config

Backend kinds (BACKEND_TYPE, or "type" in BACKENDS_FILE):
`)

	for _, k := range kinds {
		name := k.Name
		if len(k.Aliases) > 0 {
			name += " (alias " + strings.Join(k.Aliases, ", ") + ")"
		}

		fmt.Fprintf(w, "  %-24s %s\n", name, k.Summary)
	}

	fmt.Fprint(w, "\nFlags:\n")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// kindJSON is one kind as `backup-oracle kinds -o json` prints it.
type kindJSON struct {
	Name    string      `json:"name"`
	Aliases []string    `json:"aliases,omitempty"`
	Summary string      `json:"summary"`
	Fields  []fieldJSON `json:"fields"`
}

type fieldJSON struct {
	Flag  string   `json:"flag"`
	Env   []string `json:"env"`
	YAML  string   `json:"yaml,omitempty"`
	Usage string   `json:"usage"`
}

// runKinds is `backup-oracle kinds [-o json]`: the registry, for humans and for the chart's
// tests (which hold the chart's schema and Deployment to it).
func runKinds(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kinds", flag.ContinueOnError)
	fs.SetOutput(stderr)
	output := fs.String("o", "text", "output format: text or json")
	fs.Usage = func() {
		fmt.Fprintln(stdout, "Usage: backup-oracle kinds [-o json]\n\nThe backend kinds and, for each, its settings: environment variable, flag and BACKENDS_FILE key.")
		fs.SetOutput(stdout)
		fs.PrintDefaults()
	}

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}

		return 2
	}

	kinds := registry()
	out := make([]kindJSON, 0, len(kinds))

	for _, k := range kinds {
		kj := kindJSON{Name: k.Name, Aliases: k.Aliases, Summary: k.Summary}
		for _, f := range k.New().Fields() {
			kj.Fields = append(kj.Fields, fieldJSON{Flag: f.Flag, Env: f.Env, YAML: f.YAML, Usage: f.Usage})
		}

		out = append(out, kj)
	}

	switch *output {
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
	case "text":
		for _, k := range out {
			fmt.Fprintf(stdout, "%s: %s\n", k.Name, k.Summary)

			for _, f := range k.Fields {
				yaml := f.YAML
				if yaml == "" {
					yaml = "(not in BACKENDS_FILE: use the _FILE setting)"
				}

				fmt.Fprintf(stdout, "  %-30s --%-28s %s\n", strings.Join(f.Env, ", "), f.Flag, yaml)
			}
		}
	default:
		fmt.Fprintf(stderr, "kinds: -o %q: want text or json\n", *output)
		return 2
	}

	return 0
}
