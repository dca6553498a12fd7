// Command casemutants applies, one at a time, the mutations gremlins cannot make on the decision
// path, and the bugs of issue 15's audit, runs the mutated package's tests, and reports each
// mutant killed or lived. It is part of `make mutate`; run it from the module root.
//
// Why: gremlins (v0.6.0) tests only mutants its coverage profile marks covered, and Go's coverage
// blocks start after a case clause's colon, so the conditions of `switch { case …: }` are always
// "NOT COVERED" and never mutated. Those conditions are exactly where the decision path decides
// (repo.Decide, the cache's freshness gate, the indexes' Find). Each mutant here is a realistic
// bug in one of them. Mutated files are substituted with `go test -overlay`: the source tree is
// never modified.
//
// Arguments, if any, select the mutants whose file or description contains one of them.
//
// Exit status: 0 when every mutant is killed, 1 when one lived, 2 on a usage or setup error.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// mutant replaces the only occurrence of from with to in file, and runs the tests of pkg.
type mutant struct {
	pkg, file, from, to, bug string
}

func mutants() []mutant {
	return []mutant{
		// Issue 15's table: realistic bugs in the rule that outranks all others; each must be
		// caught by the tests of the package it is in (and by others, not run here).
		{"./repo", "repo/identity.go", "MaxKopiaUsernameLen = 50", "MaxKopiaUsernameLen = 49", "Kopia username cut at 49 (repo's tests)"},
		{"./repo/kopia", "repo/identity.go", "MaxKopiaUsernameLen = 50", "MaxKopiaUsernameLen = 49", "Kopia username cut at 49 (the Kopia adapter's tests)"},
		{"./cache", "cache/cache.go", "age > c.opts.MaxIndexAge", "age < 0", "staleness check removed"},
		{"./cache", "cache/cache.go", "idx, start, prev.generation+1", "idx, end, prev.generation+1", "an index dated by the end of its load"},
		{"./repo/kopia", "repo/kopia/manifests.go", "c.broken[k] = fmt.Errorf(", "_ = fmt.Errorf(", "a snapshot manifest that cannot be loaded is dropped"},
		{"./repo/kopia", "repo/kopia/kopia.go", `if os.Getenv(ignoreMalformedManifests) != "" {`, "if false {", "kopia allowed to skip unreadable manifests"},
		// Conditions of case clauses, which gremlins never mutates.
		{"./repo", "repo/decision.go", "case err != nil:", "case false:", "a backend error is ignored: fresh from an empty finding"},
		{"./repo", "repo/decision.go", "case len(f.Snapshots) > 0:", "case len(f.Snapshots) >= 0:", "no snapshot answers restore"},
		{"./repo", "repo/identity.go", "case isAlnum(r) || r == '.' || r == '-':", "case isAlnum(r) || r == '-':", "dots dropped from hostnames"},
		{"./repo", "repo/identity.go", "case r == '_':", "case false:", "underscores dropped from hostnames instead of becoming '-'"},
		{"./repo", "repo/pvc.go", "case len(s) > maxLen:", "case len(s) >= maxLen:", "a name of exactly the maximum length refused"},
		{"./repo", "repo/pvc.go", "case !valid(s):", "case false:", "invalid names accepted"},
		{"./cache", "cache/cache.go", "case err == nil && idx == nil:", "case false:", "a loader returning no index and no error is accepted"},
		{"./cache", "cache/cache.go", "idx.Stats().Sources == 0 && !c.opts.AllowEmpty:", "idx.Stats().Sources == 0 && c.opts.AllowEmpty:", "an empty index refused only when allowed"},
		{"./cache", "cache/cache.go", "case err == nil && idx.Stats().Sources == 0 && !c.opts.AllowEmpty:", "case false:", "an empty index accepted by default"},
		{"./cache", "cache/cache.go", "case st.index == nil && errors.Is(st.lastErr, repo.ErrNotLoaded):", "case false:", "no reason given before the first refresh ends"},
		{"./cache", "cache/cache.go", "case st.index == nil:", "case false:", "a failed first refresh not reported as not loaded"},
		{"./cache", "cache/cache.go", "case st.lastErr != nil:", "case false:", "a failed refresh does not withhold the previous index"},
		{"./repo/kopia", "repo/kopia/index.go", "case e.err != nil:", "case false:", "a source whose manifest cannot be loaded is fresh"},
		{"./repo/kopia", "repo/kopia/index.go", "case len(e.snapshots) == 0 && e.incomplete > 0:", "case false:", "a source with only incomplete snapshots is fresh"},
		{"./repo/kopia", "repo/kopia/index.go", "case len(e.snapshots) == 0 && e.incomplete > 0:", "case e.incomplete > 0:", "a checkpoint next to complete snapshots withholds restore"},
		{"./repo/restic", "repo/restic/index.go", "case pending == 0:", "case false:", "verified repositories reported unverified"},
		{"./repo/restic", "repo/restic/index.go", "case failed != nil:", "case false:", "a snapshot that failed verification reported as merely pending"},
		{"./repo/restic", "repo/restic/index.go", "case !r.verifies(dir):\n\t\t\tv.snapshots = unverified(list)", "case false:\n\t\t\tv.snapshots = unverified(list)",
			"without a password, the fleet listing's snapshots go to the verifier"},
		{"./repo/restic", "repo/restic/index.go", "case !r.verifies(dir):\n\t\tf.Snapshots = unverified(objs)", "case false:\n\t\tf.Snapshots = unverified(objs)",
			"without a password, a lookup's snapshots go to the verifier"},
		// The adapters' switch clauses added since: what a mover would restore, what kopia wrote.
		{"./repo/restic", "repo/restic/index.go", "case misread > 0:", "case false:", "a snapshot the mover would misread leaves the repository answerable"},
		{"./repo/restic", "repo/restic/index.go", "case pending == 0 && len(kept) == 0 && skipped > 0:", "case false:",
			"a repository whose snapshots the mover would all skip answers fresh"},
		{"./repo/kopia", "repo/kopia/index.go", "case e.flags&flagBroken != 0:", "case false:", "an undecodable manifest counted as a complete snapshot"},
		{"./repo/kopia", "repo/kopia/index.go", "case e.flags&flagIncomplete != 0:", "case false:", "a checkpoint counted as a complete snapshot"},
		{"./repo/kopia", "repo/kopia/nearmiss.go", "case src.UserName == self.UserName && src.Host == self.Host:", "case false:",
			"the same username under another path is no near miss"},
		// Issue 18: near misses by rule, the layout fit, the cutover.
		{"./repo/kopia", "repo/kopia/nearmiss.go", "case named:", "case named && false:", "the naming-scheme rule removed (only paths and cuts)"},
		{"./repo/kopia", "repo/kopia/nearmiss.go", "case i.schemes.NamesPVC(src.Path, pvc):", "case strings.HasSuffix(src.Path, \"/\"+pvc.Name):", "the movers' default path read as a PVC name (the old rule)"},
		{"./repo/kopia", "repo/kopia/nearmiss.go", "if !overrides && i.ownedByAnother(src, pvc) {", "if !(overrides && false) && i.ownedByAnother(src, pvc) {", "a learned scheme no longer overrides another PVC's claim: {pvc} over -volsync answers fresh"},
		{"./repo/kopia", "repo/kopia/nearmiss.go", "case fit && (ownAffix || !carries):", "case fit:", "a source fitting {pvc} only by reading a learned word as part of the name counts as fitting"},
		{"./repo", "repo/scheme.go", "if 4*n >= len(users) {", "if 2*n >= len(users) {", "a scheme must be carried by half the usernames, not a quarter"},
		{"./repo", "repo/scheme.go", "if !own[k] && n >= hostCarriers && 3*n >= 2*hostTotal[host] {", "if false && !own[k] && n >= hostCarriers && 3*n >= 2*hostTotal[host] {", "a minority scheme ruling its namespaces is not learned"},
		{"./repo/kopia", "repo/scheme.go", "if !own[k] && n >= hostCarriers && 3*n >= 2*hostTotal[host] {", "if false && !own[k] && n >= hostCarriers && 3*n >= 2*hostTotal[host] {", "a minority scheme ruling its namespaces is not learned (the Kopia adapter's tests)"},
		{"./repo/kopia", "repo/scheme.go", "if names[strings.ToLower(w)]", "if false", "words of PVC names (config, data...) learned as schemes (the precision measurement)"},
		{"./repo", "repo/scheme.go", "return path.Base(p) == pvc.Name && dir != \"/\" && s.PathParents[dir]", "return path.Base(p) == pvc.Name || dir == \"\"", "any path ending in the PVC's name names it"},
		{"./repo", "repo/cutover.go", "if a.Backend != c.From || a.Latest == nil || !a.Latest.StartTime.Before(c.At) {", "if a.Backend != c.From || a.Latest == nil {", "the final backup never ends the wait"},
		{"./repo", "repo/cutover.go", "if c.IsZero() || !p.IsZero() {", "if c.IsZero() {", "a point in time asked still waits"},
		{"./repo/restic", "repo/restic/index.go", "out = append(out, repo.Snapshot{ID: snapshotID(o.Key), StartTime: o.ModTime, ApproxTime: true})",
			"out = append(out, repo.Snapshot{ID: snapshotID(o.Key), StartTime: o.ModTime})", "object times taken for restic's times: a point in time without the password"},
	}
}

func main() { os.Exit(run()) }

func run() int {
	tmp, err := os.MkdirTemp("", "casemutants-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer os.RemoveAll(tmp)

	var lived []string

	list := selected(mutants(), os.Args[1:])
	for i, m := range list {
		killed, err := try(tmp, i, m)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", m.file, err)
			return 2
		}

		status := "KILLED"
		if !killed {
			status = "LIVED"
			lived = append(lived, fmt.Sprintf("%s: %q -> %q (%s)", m.file, m.from, m.to, m.bug))
		}

		fmt.Printf("%6s %s: %q -> %q (%s)\n", status, m.file, m.from, m.to, m.bug)
	}

	fmt.Printf("\nmutants: %d, killed %d, lived %d\n", len(list), len(list)-len(lived), len(lived))

	if len(lived) > 0 {
		fmt.Printf("lived:\n  %s\n", strings.Join(lived, "\n  "))
		return 1
	}

	return 0
}

func selected(all []mutant, filters []string) []mutant {
	if len(filters) == 0 {
		return all
	}

	var out []mutant

	for _, m := range all {
		for _, f := range filters {
			if strings.Contains(m.file, f) || strings.Contains(m.bug, f) {
				out = append(out, m)
				break
			}
		}
	}

	return out
}

// try applies m through an overlay and reports whether the package's tests failed.
func try(tmp string, i int, m mutant) (bool, error) {
	src, err := os.ReadFile(m.file)
	if err != nil {
		return false, err
	}

	if n := strings.Count(string(src), m.from); n != 1 {
		return false, fmt.Errorf("%q occurs %d times, want exactly once: update the mutant", m.from, n)
	}

	abs, err := filepath.Abs(m.file)
	if err != nil {
		return false, err
	}

	mutated := filepath.Join(tmp, fmt.Sprintf("%d.go", i))
	if err := os.WriteFile(mutated, []byte(strings.Replace(string(src), m.from, m.to, 1)), 0o600); err != nil {
		return false, err
	}

	overlay, err := json.Marshal(map[string]map[string]string{"Replace": {abs: mutated}})
	if err != nil {
		return false, err
	}

	ov := filepath.Join(tmp, fmt.Sprintf("%d.json", i))
	if err := os.WriteFile(ov, overlay, 0o600); err != nil {
		return false, err
	}

	// A mutant that does not compile would count as killed: it must be fixed instead.
	if out, err := exec.Command("go", "vet", "-overlay", ov, m.pkg).CombinedOutput(); err != nil {
		return false, fmt.Errorf("mutant does not build: %w\n%s", err, out)
	}

	err = exec.Command("go", "test", "-count=1", "-failfast", "-overlay", ov, m.pkg).Run()
	if err == nil {
		return false, nil
	}

	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 1 {
		return true, nil // a test failed
	}

	return false, fmt.Errorf("go test %s: %w", m.pkg, err)
}
