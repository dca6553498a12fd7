// Package all is the one registry of backend kinds: every kind the program accepts, each owning
// its configuration and constructor in its adapter package. Adding a kind is one adapter
// package and one line here (plus its chart values and tests); cmd only iterates the registry,
// and tests hold the chart, --help and the conformance suite to it.
package all

import (
	"github.com/backup-oracle/backup-oracle/repo"
	"github.com/backup-oracle/backup-oracle/repo/kopia"
	"github.com/backup-oracle/backup-oracle/repo/restic"
)

// Kinds returns the registry, in the order --help documents it.
func Kinds() repo.Registry {
	return repo.Registry{
		kopia.FSKind(),
		kopia.S3Kind(),
		restic.S3Kind(),
		restic.FSKind(),
	}
}
