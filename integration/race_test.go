//go:build race

package integration

// raceEnabled: this test binary runs under the race detector (`go test -race`, as `make test-go`
// does), so the real program is built with it too.
const raceEnabled = true
