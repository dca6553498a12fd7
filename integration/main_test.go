// Package integration runs the real backup-oracle program against repositories written by the
// real kopia and restic CLIs and a real S3 server on 127.0.0.1.
package integration

import (
	"fmt"
	"os"
	"testing"

	"github.com/backup-oracle/backup-oracle/integration/harness"
)

// oracleBin is the program under test, built once by TestMain: with the race detector when the
// tests run with it (`make test-go`), so every run of the real program below is also a race
// check (harness.Oracle fails the test on a race report); without it for benchmarks.
var oracleBin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "backup-oracle-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)

	// Another user must be able to run it (the unreadable-repository case).
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	build := harness.BuildOracle
	if raceEnabled {
		build = harness.BuildOracleRace
	}

	if oracleBin, err = build(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	return m.Run()
}
