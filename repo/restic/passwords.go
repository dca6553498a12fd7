package restic

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/backup-oracle/backup-oracle/repo"
)

// Per-PVC repository passwords (RESTIC_PASSWORDS_DIR): a directory of files named
// "<namespace>.<pvc>", each holding that PVC's repository password, as a Secret mounted in the
// oracle's own namespace shows its keys (the oracle never reads Secrets of other namespaces).
// A namespace has no dot, so the first dot splits the name; a PVC name may hold more.

// maxPasswordFiles bounds the files read from RESTIC_PASSWORDS_DIR (a Secret holds at most 1 MiB).
const maxPasswordFiles = 100_000

// readPasswordsDir reads every password file of dir into one comparable value (so a rotation of
// any of them is seen by repo.Reloading): sorted "<namespace>.<pvc>\x00<password>\n" records.
// Kubernetes' own entries of a mounted Secret ("..data" and the timestamped folder) are skipped;
// any other name that is not "<namespace>.<pvc>", and an empty file, are errors naming the file.
func readPasswordsDir(dir string) (repo.Secret, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("RESTIC_PASSWORDS_DIR: %w", err)
	}

	if len(entries) > maxPasswordFiles {
		return "", fmt.Errorf("RESTIC_PASSWORDS_DIR %s: more than %d files", dir, maxPasswordFiles)
	}

	var records []string

	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, "..") {
			continue
		}

		if _, err := passwordFilePVC(name); err != nil {
			return "", fmt.Errorf("RESTIC_PASSWORDS_DIR %s: %w", dir, err)
		}

		pw, err := repo.SecretRef{File: filepath.Join(dir, name)}.Read()
		if err != nil {
			return "", fmt.Errorf("RESTIC_PASSWORDS_DIR: %w", err)
		}

		records = append(records, name+"\x00"+pw.Reveal()+"\n")
	}

	slices.Sort(records)

	return repo.Secret(strings.Join(records, "")), nil
}

// passwordFilePVC parses a password file's name, "<namespace>.<pvc>".
func passwordFilePVC(name string) (repo.PVC, error) {
	ns, pvc, ok := strings.Cut(name, ".")
	p := repo.PVC{Namespace: ns, Name: pvc}

	if !ok {
		return p, fmt.Errorf("file %q: want <namespace>.<pvc> (the PVC whose repository the password opens)", name)
	}

	if err := p.Validate(); err != nil {
		return p, fmt.Errorf("file %q: want <namespace>.<pvc>: %w", name, err)
	}

	return p, nil
}

// decodePasswords turns readPasswordsDir's value back into a map (validated when read).
func decodePasswords(s repo.Secret) map[repo.PVC]repo.Secret {
	out := map[repo.PVC]repo.Secret{}

	for rec := range strings.SplitSeq(strings.TrimSuffix(s.Reveal(), "\n"), "\n") {
		name, pw, ok := strings.Cut(rec, "\x00")
		if !ok {
			continue
		}

		if p, err := passwordFilePVC(name); err == nil {
			out[p] = repo.Secret(pw)
		}
	}

	return out
}
