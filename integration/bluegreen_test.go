package integration

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness"
)

// TestBlueGreenNewestWins: two Kopia repositories written by the real kopia CLI, listed
// [green, blue]: a PVC backed up in both restores from the one holding the newest snapshot,
// whatever the list order, and names the other; a PVC backed up in one only restores from that
// one; one repository unreadable makes every answer unknown.
func TestBlueGreenNewestWins(t *testing.T) {
	c := newKopiaColours(t)
	data, green, blue := c.data, c.green, c.blue

	green.Snapshot(data, "app-backup@shop:/data") // the previous cycle's
	green.Snapshot(data, "own-only-backup@shop:/data")
	time.Sleep(1100 * time.Millisecond)          // kopia's snapshot times have second resolution
	blue.Snapshot(data, "app-backup@shop:/data") // the cluster being replaced: newer
	blue.Snapshot(data, "blue-only-backup@shop:/data")

	o := harness.StartOracle(t, harness.OracleOptions{Bin: oracleBin, Env: []string{
		"BACKENDS_FILE=" + c.backends, "REFRESH_INTERVAL=300ms", "MAX_INDEX_AGE=10s",
	}})
	o.WaitReady(t, 30*time.Second)

	r := o.Get(t, "/exists/shop/app")
	assert.Equal(t, "restore", r.Body["decision"])
	assert.Equal(t, "blue", r.Body["backend"], "the newest snapshot's backend, not the first listed")

	elsewhere, ok := r.Body["elsewhere"].([]any)
	require.True(t, ok, "%v", r.Body)
	require.Len(t, elsewhere, 1)
	assert.Equal(t, "green", elsewhere[0].(map[string]any)["backend"])

	for path, backend := range map[string]string{"/exists/shop/own-only": "green", "/exists/shop/blue-only": "blue"} {
		r := o.Get(t, path)
		assert.Equal(t, "restore", r.Body["decision"], path)
		assert.Equal(t, backend, r.Body["backend"], path)
	}

	assert.Equal(t, "fresh", decision(t, o, "/exists/shop/neither"))

	require.NoError(t, os.Rename(blue.Path, blue.Path+".away"))
	eventually(t, o, "/exists/shop/own-only", "unknown", 20*time.Second)

	r = o.Get(t, "/exists/shop/own-only")
	assert.Equal(t, http.StatusServiceUnavailable, r.Code)
	assert.Contains(t, r.Body["error"], "green hold(s) snapshots, but an unknown backend could hold a newer one")
}

// TestBlueGreenResticPair: the same rule for two restic buckets written by the real restic CLI.
func TestBlueGreenResticPair(t *testing.T) {
	s3 := harness.StartS3(t)
	green, blue := s3.CreateBucket("green"), s3.CreateBucket("blue")
	cli := harness.NewResticCLI(t, s3)

	for _, b := range []string{green, blue} {
		url := "s3:" + s3.URL + "/" + b + "/shop/app"
		cli.Init(url, resticPassword, "2")
		cli.Backup(url, resticPassword)
		time.Sleep(1100 * time.Millisecond)
	}

	dir, _ := secretFiles(t, s3, resticPassword)
	file := filepath.Join(t.TempDir(), "backends.yaml")
	entry := func(name string) string {
		return `  - name: ` + name + `
    type: restic-s3
    s3: {endpoint: "http://` + s3.Endpoint + `", bucket: ` + name + `, accessKeyFile: ` + dir + `/access, secretKeyFile: ` + dir + `/secret}
    restic: {passwordFile: ` + dir + `/password}
`
	}
	require.NoError(t, os.WriteFile(file, []byte("backends:\n"+entry(green)+entry(blue)), 0o600))

	o := harness.StartOracle(t, harness.OracleOptions{Bin: oracleBin, Env: []string{
		"BACKENDS_FILE=" + file, "REFRESH_INTERVAL=300ms", "MAX_INDEX_AGE=10s",
	}})
	o.WaitReady(t, 60*time.Second)
	eventually(t, o, "/exists/shop/app", "restore", 60*time.Second) // verification runs in the background

	r := o.Get(t, "/exists/shop/app")
	assert.Equal(t, blue, r.Body["backend"], "the bucket written last holds the newest snapshot")
}

// TestCutoverWaitsForTheFinalBackup: a cutover declared at an instant after blue's scheduled
// backup: the new colour's PVC is unknown (naming the cutover, the snapshot and its age) while
// blue holds only the older snapshot, never restored from it; once blue's final backup (taken
// after the instant, by the real kopia CLI) is indexed, restore from blue. A PVC without any
// snapshot in blue is decided as always. /status, the console and the metrics show the wait.
func TestCutoverWaitsForTheFinalBackup(t *testing.T) {
	c := newKopiaColours(t)
	data, green, blue := c.data, c.green, c.blue

	blue.Snapshot(data, "app-backup@shop:/data") // the last scheduled backup of the old colour
	green.Snapshot(data, "own-only-backup@shop:/data")
	time.Sleep(1100 * time.Millisecond) // kopia's snapshot times have second resolution

	at := time.Now().UTC().Truncate(time.Second)

	o := harness.StartOracle(t, harness.OracleOptions{Bin: oracleBin, Env: []string{
		"BACKENDS_FILE=" + c.backends, "REFRESH_INTERVAL=300ms", "MAX_INDEX_AGE=10s",
		"CUTOVER_AT=" + at.Format(time.RFC3339), "CUTOVER_FROM=blue",
	}})
	o.WaitReady(t, 30*time.Second)

	r := o.Get(t, "/exists/shop/app")
	assert.Equal(t, http.StatusServiceUnavailable, r.Code)
	assert.Equal(t, "unknown", r.Body["decision"], "never the older scheduled snapshot: %v", r.Body)
	assert.Contains(t, r.Body["error"], "waiting for the final backup of the cutover at "+at.Format(time.RFC3339)+" from backend blue")
	assert.Equal(t, "restore", decision(t, o, "/exists/shop/own-only"), "no snapshot in blue: decided as always")
	assert.Equal(t, "fresh", decision(t, o, "/exists/shop/neither"))

	st := getObject(t, o.URL+"/status")
	co, ok := st["cutover"].(map[string]any)
	require.True(t, ok, "%v", st)
	assert.Equal(t, "blue", co["from"])
	assert.InDelta(t, 1, co["waiting"], 0)
	assert.Equal(t, "app", co["pvcs"].([]any)[0].(map[string]any)["pvc"])

	_, metrics := get(t, o.URL+"/metrics")
	assert.Contains(t, metrics, "backup_oracle_cutover_waiting_pvcs 1")
	assert.Contains(t, metrics, `backup_oracle_cutover_timestamp_seconds{from="blue"}`)

	_, page := get(t, o.URL+"/")
	assert.Contains(t, page, `<span id="cutover-waiting">1 waiting</span>`)

	blue.Snapshot(data, "app-backup@shop:/data") // the final backup, after the instant

	eventually(t, o, "/exists/shop/app", "restore", 20*time.Second)

	r = o.Get(t, "/exists/shop/app")
	assert.Equal(t, "blue", r.Body["backend"])

	latest, ok := r.Body["latestSnapshot"].(map[string]any)
	require.True(t, ok)
	started, err := time.Parse(time.RFC3339Nano, latest["time"].(string))
	require.NoError(t, err)
	assert.False(t, started.Before(at), "the final backup, not the scheduled one")

	_, metrics = get(t, o.URL+"/metrics")
	assert.Contains(t, metrics, "backup_oracle_cutover_waiting_pvcs 0")
}

// kopiaColours is two empty Kopia repositories made by the real kopia CLI, green and blue, a
// directory holding one file to snapshot into them, and a backends file listing them in that
// order (the password in a file beside it).
type kopiaColours struct {
	data, backends string
	green, blue    *harness.KopiaCLI
}

func newKopiaColours(t *testing.T) kopiaColours {
	t.Helper()

	base := t.TempDir()
	c := kopiaColours{data: filepath.Join(base, "data"), backends: filepath.Join(base, "backends.yaml")}
	require.NoError(t, os.MkdirAll(c.data, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(c.data, "f"), []byte("x"), 0o644))

	c.green = harness.NewKopiaRepository(t, filepath.Join(base, "green"), kopiaPassword)
	c.blue = harness.NewKopiaRepository(t, filepath.Join(base, "blue"), kopiaPassword)

	pw := filepath.Join(base, "pw")
	require.NoError(t, os.WriteFile(pw, []byte(kopiaPassword), 0o600))
	require.NoError(t, os.WriteFile(c.backends, []byte(`backends:
  - name: green
    type: kopia-fs
    kopia: {repositoryPath: `+c.green.Path+`, passwordFile: `+pw+`}
  - name: blue
    type: kopia-fs
    kopia: {repositoryPath: `+c.blue.Path+`, passwordFile: `+pw+`}
`), 0o600))

	return c
}

// getObject gets url and decodes its JSON object.
func getObject(t *testing.T, url string) map[string]any {
	t.Helper()

	_, body := get(t, url)

	var out map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &out), body)

	return out
}
