package server_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/repo"
	"github.com/backup-oracle/backup-oracle/server"
)

// TestIdentityNames: /identity reports the RS name the source template gives and the RD name the
// destination template gives (the ${APP} layout: RS gitea, RD gitea-dst); without a destination
// template the RD is named as the RS.
func TestIdentityNames(t *testing.T) {
	rs := func(p repo.PVC) string { return p.Name }
	dst := func(p repo.PVC) string { return p.Name + "-dst" }

	for _, tc := range []struct {
		name        string
		destination func(repo.PVC) string
		wantRD      string
	}{
		{"destination template", dst, "gitea-dst"},
		{"none: the RS's name", nil, "gitea"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			h, err := server.New(server.Options{Oracle: oracle(), Registerer: reg, Gatherer: reg, ReplicationName: rs, DestinationName: tc.destination})
			require.NoError(t, err)

			rec := get(h, http.MethodGet, "/identity/dev/gitea")
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())

			var body struct{ ReplicationSource, ReplicationDestination string }
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
			assert.Equal(t, "gitea", body.ReplicationSource)
			assert.Equal(t, tc.wantRD, body.ReplicationDestination)
		})
	}
}
