package repo

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
)

// Pin is what a backend knows of its repository's identity: the unique id a repository gets
// at creation (Kopia's uniqueID, a restic repository's config id). A wiped and re-created
// repository, or a location pointed at another one, has another id, and would answer "fresh"
// for every PVC it does not hold.
//
// Pinned (the setting, e.g. KOPIA_REPOSITORY_ID), any other id fails Check with
// ErrRepositoryMismatch. Unpinned, the first id seen is remembered and a later change fails
// the same way until the process restarts or the id is pinned; the first sighting logs how to
// pin. Safe for concurrent use; share one Pin between the backends that replace each other
// (Reloading) so a change is noticed across reconnects.
type Pin struct {
	what    string // "kopia repository", for the log line
	setting string // "KOPIA_REPOSITORY_ID"

	mu     sync.Mutex
	pinned string
	seen   string
}

// NewPin returns a Pin of the repository kind what ("restic repository"), pinned by setting to
// the hex id pinned (any case), or unpinned for "".
func NewPin(what, setting, pinned string) *Pin {
	return &Pin{what: what, setting: setting, pinned: strings.ToLower(strings.TrimSpace(pinned))}
}

// Check compares id, read from the repository at location, with the pin. An empty id means no
// repository is there: an error when pinned or when one was seen before, else nothing is
// remembered. The error wraps ErrRepositoryMismatch and names both ids; the backend wraps it in
// its load error (with ErrUnavailable: not ready, every answer unknown).
func (p *Pin) Check(id string, logger *slog.Logger, location string) error {
	p.mu.Lock()
	defer p.mu.Unlock()

	found := "the repository at " + location + " has id " + id
	if id == "" {
		found = "there is no repository at " + location
	}

	switch {
	case p.pinned != "" && id != p.pinned:
		return fmt.Errorf("%w: %s, but %s pins %s: it was re-initialised, wiped or the "+
			"location points at another repository. Every answer is unknown until the pinned repository is back, or the pin is "+
			"changed by someone who checked", ErrRepositoryMismatch, found, p.setting, p.pinned)
	case p.pinned != "" || id == p.seen:
		return nil
	case p.seen == "":
		p.seen = id
		logger.Info(p.what+" id; pin it so that a re-initialised or mis-pointed repository is refused",
			"storage", location, "repositoryID", id, "setting", p.setting+"="+id)

		return nil
	default:
		hint := "; if the new one is right, pin it (" + p.setting + "=" + id + ") or restart"
		if id == "" {
			hint = ""
		}

		return fmt.Errorf("%w: %s, but this process first read %s there: it was re-created, wiped or "+
			"the location now points at another repository. Every answer is unknown until the first repository is back%s",
			ErrRepositoryMismatch, found, p.seen, hint)
	}
}
