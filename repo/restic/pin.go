package restic

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/backup-oracle/backup-oracle/repo"
)

// settingRepositoryID pins the shared repository.
const settingRepositoryID = "RESTIC_REPOSITORY_ID"

// newPin returns the pin of a shared restic repository: its id is the "id" of the decrypted
// config (restic doc/design.rst, "Repository Format"; 64 hex digits, random at `restic init`).
func newPin(pinned string) *repo.Pin {
	return repo.NewPin("restic repository", settingRepositoryID, pinned)
}

// pinProblems checks a RESTIC_REPOSITORY_ID: 64 hex digits, the shared layout, a password.
func (o Options) pinProblems() []error {
	var errs []error

	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("restic: %w: "+format, append([]any{repo.ErrInvalidConfig}, args...)...))
	}

	if id := strings.TrimSpace(o.RepositoryID); len(id) != 64 || !isStorageID(strings.ToLower(id)) {
		add("%s %q: want the 64 hex digits of the shared repository's config id (`restic cat config` prints it as \"id\"; /status shows it)", settingRepositoryID, o.RepositoryID)
	}

	if o.Layout != LayoutShared {
		add("%s pins the shared repository (RESTIC_LAYOUT=%s); with the %s layout every PVC has a repository of its own, and no id to pin", settingRepositoryID, LayoutShared, o.Layout)
	}

	if o.Password == "" {
		add("%s needs the restic password (RESTIC_PASSWORD or RESTIC_PASSWORD_FILE): the repository's id is in its encrypted config", settingRepositoryID)
	}

	return errs
}

// checkPin reads the shared repository's id and checks it against the pin (the shared layout
// only, which always has a password): one get of the config, decrypted with the cached master
// key (derived once). A missing config is "no repository here": refused when pinned or when a
// repository was seen before. It returns the id ("" for none) or an error wrapping
// repo.ErrUnavailable (and repo.ErrRepositoryMismatch for another repository).
func (r *Repo) checkPin(ctx context.Context) (string, error) {
	dir := r.layout.dir(repo.PVC{})
	location := r.store.Location(strings.TrimSuffix(dir, "/"))

	_, id, err := r.verifier.masterKey(ctx, dir)

	switch {
	case errors.Is(err, ErrObjectNotFound):
		id = ""
	case err != nil:
		return "", fmt.Errorf("restic: read the id of repository %q: %w: %w", location, repo.ErrUnavailable, err)
	}

	if err := r.opts.Pin.Check(id, r.opts.Logger, location); err != nil {
		return "", fmt.Errorf("restic: load %q: %w: %w", location, repo.ErrUnavailable, err)
	}

	return id, nil
}
