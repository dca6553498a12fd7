package kopia

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/kopia/kopia/repo/format"

	"github.com/backup-oracle/backup-oracle/repo"
)

// Pin is repo.Pin for a Kopia repository: its id is the unique id every Kopia repository gets
// at creation (kopia.repository's uniqueID; `kopia repository status --json` prints it as
// uniqueIDHex).
type Pin = repo.Pin

// NewPin returns a Pin for the hex id pinned (KOPIA_REPOSITORY_ID), or an unpinned one for "".
func NewPin(pinned string) *Pin {
	return repo.NewPin("kopia repository", "KOPIA_REPOSITORY_ID", pinned)
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
