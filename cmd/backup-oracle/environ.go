package main

import (
	"fmt"
	"slices"
	"strings"
)

// lookupEnv returns a getenv over environ (KEY=VALUE; the last of a key wins, as os.Getenv).
func lookupEnv(environ []string) func(string) string {
	m := make(map[string]string, len(environ))

	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}

	return func(k string) string { return m[k] }
}

// moverVariables are the movers' own Secret keys (and look-alikes) with a hint each: set in the
// oracle, they are read by nothing.
func moverVariables() map[string]string {
	return map[string]string{ //nolint:gosec // variable names and hints, no credentials
		"KOPIA_REPOSITORY":        "is the Kopia mover's repository URL; backup-oracle reads KOPIA_REPOSITORY_PATH (kopia-fs, the mounted directory) or S3_ENDPOINT, S3_BUCKET and S3_PREFIX (kopia-s3)",
		"KOPIA_FS_PATH":           "is the Kopia mover's; backup-oracle reads KOPIA_REPOSITORY_PATH",
		"KOPIA_S3_BUCKET":         "is the Kopia mover's; backup-oracle reads S3_BUCKET",
		"KOPIA_S3_ENDPOINT":       "is the Kopia mover's; backup-oracle reads S3_ENDPOINT",
		"KOPIA_S3_PREFIX":         "is the Kopia mover's; backup-oracle reads S3_PREFIX",
		"KOPIA_S3_DISABLE_TLS":    "is the Kopia mover's; backup-oracle reads S3_SECURE (or an http:// S3_ENDPOINT)",
		"RESTIC_REPOSITORY":       "is the restic mover's one repository; backup-oracle reads every PVC's: S3_BUCKET, S3_PREFIX and RESTIC_REPOSITORY_TEMPLATE (restic-s3) or RESTIC_REPOSITORY_PATH (restic-fs)",
		"RESTIC_PASSWORD_COMMAND": "is not read by backup-oracle; use RESTIC_PASSWORD_FILE",
		"AWS_S3_ENDPOINT":         "is not read by backup-oracle; use S3_ENDPOINT",
	}
}

// ourPrefixes are the prefixes of backup-oracle's own variables: an unknown variable starting
// with one is most likely a misspelt setting.
func ourPrefixes() []string {
	return []string{"KOPIA_", "RESTIC_", "S3_", "BACKUP_ORACLE_", "GATE_", "POLICIES_"}
}

// unknownVariables warns about the variables of environ that look like settings but are not
// (misspelt ones, the movers' own), naming the setting probably meant. known lists every
// variable a setting reads.
func unknownVariables(environ, known []string) []string {
	var out []string

	movers := moverVariables()

	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		if value == "" || slices.Contains(known, name) {
			continue
		}

		if hint, ok := movers[name]; ok {
			out = append(out, fmt.Sprintf("%s %s", name, hint))
			continue
		}

		if near := closest(name, known); near != "" {
			out = append(out, fmt.Sprintf("%s is not a setting: did you mean %s?", name, near))
			continue
		}

		for _, p := range ourPrefixes() {
			if strings.HasPrefix(name, p) {
				out = append(out, fmt.Sprintf("%s is not a setting backup-oracle reads (backup-oracle --help lists them)", name))
				break
			}
		}
	}

	slices.Sort(out)

	return out
}

// closest returns the known name nearest to name within edit distance 2 (3 for names of 16
// characters or more), "" when none.
func closest(name string, known []string) string {
	best, bestD := "", 3
	if len(name) >= 16 {
		bestD = 4
	}

	for _, k := range known {
		if d := editDistance(name, k); d < bestD {
			best, bestD = k, d
		}
	}

	return best
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)

	for j := range prev {
		prev[j] = j
	}

	for i := 1; i <= len(a); i++ {
		cur[0] = i

		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}

			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}

		prev, cur = cur, prev
	}

	return prev[len(b)]
}
