package harness_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness"
)

// recorder is a testing.TB that records Errorf instead of failing.
type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

// TestStopReportsDataRaces: a program built with the race detector that races makes Stop fail
// the test, with the detector's report.
func TestStopReportsDataRaces(t *testing.T) {
	bin, err := harness.BuildRace(t.TempDir(), "./integration/harness/testdata/racy")
	require.NoError(t, err)

	o := harness.StartOracle(t, harness.OracleOptions{Bin: bin})
	rec := &recorder{TB: t}
	o.Stop(rec)

	require.Len(t, rec.errors, 1, "one race, reported once; log:\n%s", o.Stderr())
	assert.True(t, strings.HasPrefix(rec.errors[0], "the race detector reported a data race in backup-oracle:\nWARNING: DATA RACE"), rec.errors[0])

	o.Stop(rec)
	assert.Len(t, rec.errors, 1, "a second Stop does not report it again")
}
