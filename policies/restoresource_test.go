package policies_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/backup-oracle/backup-oracle/integration/harness/kopiamover"
	"github.com/backup-oracle/backup-oracle/repo"
)

// restoreSources are the sources the PVCs of the generate suites name (annotation
// backup-oracle.io/restore-source), written by hand; "own" names none and restores its own.
var restoreSources = map[string]string{ //nolint:gochecknoglobals // test table
	"data":        "data-volsync@media:/data",
	"config":      "config@media.cluster-a:/pvc/config",
	"cassandra-0": "datadir-cassandra-cluster-dc1-rack1-production-01-@media:/data",
	"plus":        "data-volsync@media:/srv/a+b",
	"own":         "own-backup@media:/data",
}

// TestRestoreSourceDestinations: every RD the generate suites expect for a PVC naming its source
// makes VolSync's Kopia mover (its rules restated in kopiamover) accept it and restore exactly
// that source, states it in the form the oracle computes (repo.KopiaDestinationOf: the policies
// and the oracle agree on what the fork can restore), and passes the CRD's patterns; the PVC
// without the annotation restores its own source.
func TestRestoreSourceDestinations(t *testing.T) {
	pvcs := decodeAll(t, "tests/fixtures/pvcs-restore-source-created.yaml")
	require.Len(t, pvcs, len(restoreSources))

	for _, pvc := range pvcs {
		name := kopiamover.DestinationOf(pvc).Name                                         // metadata.name
		annotations, _ := pvc["metadata"].(map[string]any)["annotations"].(map[string]any) //nolint:forcetypeassert // a fixture
		named, _ := annotations[repo.RestoreSourceAnnotation].(string)

		t.Run(name, func(t *testing.T) {
			want, ok := restoreSources[name]
			require.True(t, ok, "no hand-written source for PVC %s", name)

			if named != "" {
				assert.Equal(t, want, named, "the fixture's annotation")
			}

			rds := decodeAll(t, filepath.Join("tests/fixtures/generated/restore-source", "rd-"+name+".yaml"))
			require.Len(t, rds, 1)

			rd := kopiamover.DestinationOf(rds[0])
			require.NoError(t, rd.CRDValid())

			got, err := rd.Source()
			require.NoError(t, err, "the Kopia mover refuses the RD")
			assert.Equal(t, want, got, "the RD restores another source than the PVC names")

			if named == "" {
				return
			}

			src, err := repo.ParseKopiaSource(named)
			require.NoError(t, err)

			d, err := repo.KopiaDestinationOf(src)
			require.NoError(t, err)
			assert.Equal(t, repo.KopiaDestination{Username: rd.Username, Hostname: rd.Hostname, SourceName: rd.SourceName,
				SourceNamespace: rd.SourceNamespace, SourcePathOverride: rd.SourcePathOverride}, d, "the policies' form is not the oracle's")
		})
	}
}

// decodeAll decodes every YAML document of a file.
func decodeAll(t *testing.T, path string) []map[string]any {
	t.Helper()

	raw, err := os.ReadFile(path)
	require.NoError(t, err)

	var out []map[string]any

	dec := yaml.NewDecoder(bytes.NewReader(raw))

	for {
		var doc map[string]any

		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return out
		}

		require.NoError(t, err, path)

		if doc != nil {
			out = append(out, doc)
		}
	}
}
