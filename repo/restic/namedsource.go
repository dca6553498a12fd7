package restic

import (
	"context"
	"fmt"

	"github.com/backup-oracle/backup-oracle/repo"
)

// FindSource implements repo.Index: restic has no named sources. VolSync's restic mover restores
// the repository its Secret's RESTIC_REPOSITORY names (one per PVC, or a shared one read by
// host and path), so a PVC naming a Kopia source cannot be restored by it: the answer is Unknown,
// never Fresh, with a reason that says so.
func (*Index) FindSource(_ context.Context, pvc repo.PVC, src repo.KopiaSource) (repo.Finding, error) {
	return repo.Finding{Source: src.String()}, fmt.Errorf("restic: %w: %s is a Kopia source, and VolSync's restic mover restores the repository "+
		"its Secret names (RESTIC_REPOSITORY); remove the annotation %s from %s", repo.ErrNamedSourceUnsupported, src,
		repo.RestoreSourceAnnotation, pvc)
}
