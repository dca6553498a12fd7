//go:build !race

package integration

// raceEnabled: this test binary runs without the race detector (benchmarks, plain `go test`), so
// the real program is built without it.
const raceEnabled = false
