//go:build e2e

package e2e

import (
	"encoding/base64"
	"net/http"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness/kopiamover"
)

// assertFindsRepository holds a generated RS or RD (obj) and the repository Secret it names to
// the Kopia fork's rules for where its Job finds the repository (kopiamover.FindsRepository):
// the Secret's KOPIA_REPOSITORY must lie on one of the object's moverVolumes as the Job mounts
// them, or a real mover would open (and create) an empty repository and restore nothing.
func (r *run) assertFindsRepository(obj map[string]any) {
	r.t.Helper()

	secret := str(obj, "spec", "kopia", "repository")
	res := r.k.get(r.t, "/api/v1/namespaces/"+str(obj, "metadata", "namespace")+"/secrets/"+secret)
	require.Equal(r.t, http.StatusOK, res.Code, res.Raw)

	raw, err := base64.StdEncoding.DecodeString(str(res.Body, "data", "KOPIA_REPOSITORY"))
	require.NoError(r.t, err, "Secret %s: KOPIA_REPOSITORY", secret)
	assert.NoError(r.t, kopiamover.FindsRepository(kopiamover.MoverVolumesOf(obj), string(raw)),
		"%s %s with Secret %s", str(obj, "kind"), str(obj, "metadata", "name"), secret)
}
