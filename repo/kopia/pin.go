package kopia

import (
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/kopia/kopia/repo/format"

	"github.com/backup-oracle/backup-oracle/repo"
)

// Pin is what a Kopia backend knows of its repository's identity: the unique id every Kopia
// repository gets at creation (kopia.repository's uniqueID; `kopia repository status --json`
// prints it as uniqueIDHex). A wiped and re-created repository, or a mount pointed at another
// one, has another id, and would answer "fresh" for every PVC it does not hold.
//
// Pinned (KOPIA_REPOSITORY_ID), any other id fails every load with repo.ErrRepositoryMismatch.
// Unpinned, the first id seen is remembered and a later change fails the same way until the
// process restarts or the id is pinned; the first sighting logs how to pin. Safe for
// concurrent use.
type Pin struct {
	mu     sync.Mutex
	pinned string
	seen   string
}

// NewPin returns a Pin for the hex id pinned, or an unpinned one for "".
func NewPin(pinned string) *Pin { return &Pin{pinned: strings.ToLower(strings.TrimSpace(pinned))} }

// check compares the id read from the storage with the pin.
func (p *Pin) check(id string, logger *slog.Logger, storage string) error {
	p.mu.Lock()
	defer p.mu.Unlock()

	switch {
	case p.pinned != "" && id != p.pinned:
		return fmt.Errorf("%w: the repository at %s has id %s, but KOPIA_REPOSITORY_ID pins %s: it was re-initialised, wiped or the "+
			"location points at another repository. Every answer is unknown until the pinned repository is back, or the pin is "+
			"changed by someone who checked", repo.ErrRepositoryMismatch, storage, id, p.pinned)
	case p.pinned != "":
		return nil
	case p.seen == "":
		p.seen = id
		logger.Info("kopia repository id; pin it so that a re-initialised or mis-pointed repository is refused",
			"storage", storage, "repositoryID", id, "setting", "KOPIA_REPOSITORY_ID="+id)

		return nil
	case id != p.seen:
		return fmt.Errorf("%w: the repository at %s has id %s, but this process first read %s there: it was re-created, wiped or "+
			"the location now points at another repository. Every answer is unknown until the first repository is back; if the new "+
			"one is right, pin it (KOPIA_REPOSITORY_ID=%s) or restart", repo.ErrRepositoryMismatch, storage, id, p.seen, id)
	}

	return nil
}

// uniqueID reads the unique id from a kopia.repository format blob, hex.
func uniqueID(blob []byte) (string, error) {
	f, err := format.ParseKopiaRepositoryJSON(blob)
	if err != nil {
		return "", fmt.Errorf("parse repository format blob: %w", err)
	}

	if len(f.UniqueID) == 0 {
		return "", fmt.Errorf("repository format blob has no unique id")
	}

	return hex.EncodeToString(f.UniqueID), nil
}

// validRepositoryID checks a KOPIA_REPOSITORY_ID.
func validRepositoryID(id string) error {
	b, err := hex.DecodeString(strings.TrimSpace(id))
	if err != nil || len(b) != format.UniqueIDLengthBytes {
		return repo.Problemf("KOPIA_REPOSITORY_ID %q: want the %d hex digits `kopia repository status --json` prints as uniqueIDHex (or /status shows)", id, 2*format.UniqueIDLengthBytes)
	}

	return nil
}
