package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/integration/harness"
)

// chromium returns Debian's chromium (CHROMIUM_BIN, else PATH); missing, the test skips locally
// and fails in CI (`make chromium` installs it, `make test-go` runs it first).
func chromium(t *testing.T) string {
	t.Helper()

	if p := os.Getenv("CHROMIUM_BIN"); p != "" {
		return p
	}

	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}

	harness.Require(t, "chromium (make chromium installs Debian's)")

	return ""
}

// browser starts headless Chromium for the test, offline: a fresh profile, nothing fetched in
// the background, no sandbox when running as root (Chromium refuses to start otherwise).
func browser(t *testing.T) context.Context {
	t.Helper()

	// The profile is not a t.TempDir: Chromium's helper processes may still write into it for a
	// moment after the browser is stopped, and TempDir's removal then fails the test. Removed
	// after the browser's cleanup below (cleanups run last first), retried until it is done.
	profile, err := os.MkdirTemp("", "backup-oracle-console-")
	require.NoError(t, err)
	t.Cleanup(func() {
		for range 100 {
			if os.RemoveAll(profile) == nil {
				return
			}

			time.Sleep(100 * time.Millisecond)
		}

		t.Logf("browser profile %s not removed", profile)
	})

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.UserDataDir(profile),
		chromedp.Flag("headless", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 1000),
	}

	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}

	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)

	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })

	return ctx
}

// TestConsoleInBrowser loads the console of the real binary on the demo repository in Chromium,
// checks the inventory and the backends, searches PVCs through the form (typing and submitting
// as a person would) and asserts on the rendered DOM; it keeps screenshots in
// CONSOLE_SCREENSHOT_DIR (make test-go: bin/console/, git-ignored).
func TestConsoleInBrowser(t *testing.T) {
	ctx := browser(t)

	// The gate self-test on, its API server unreachable (no cluster here: the e2e test shows the
	// other states), and the demo's namespace monitoring excluded by the policies.
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600))

	o := harness.StartOracle(t, harness.OracleOptions{Bin: oracleBin, Args: []string{"--demo", "--state-dir", t.TempDir()}, Env: []string{
		"GATE_CANARY_NAMESPACE=backup-oracle-canary", "GATE_CHECK_INTERVAL=1s", "KUBECONFIG=" + kubeconfig,
		"POLICIES_EXCLUDED_NAMESPACES=kube-system,monitoring",
	}})
	o.WaitReady(t, 2*time.Minute)

	var (
		title, inventory, backends, counts string
		gateState, gateReason, uncovered   string
		rows                               int
		version                            string
	)

	require.NoError(t, chromedp.Run(ctx,
		chromedp.Navigate(o.URL+"/"),
		chromedp.WaitVisible("#inventory", chromedp.ByID),
		chromedp.Title(&title),
		chromedp.Text("#inventory", &inventory, chromedp.ByID),
		chromedp.Text("#backends", &backends, chromedp.ByID),
		chromedp.Text(".summary", &counts, chromedp.ByQuery),
		chromedp.Text("#gate-state", &gateState, chromedp.ByID),
		chromedp.Text("#gate-reason", &gateReason, chromedp.ByID),
		chromedp.Text(".uncovered", &uncovered, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll("#inventory tr.state-ok").length`, &rows),
		chromedp.Evaluate(`navigator.userAgent`, &version),
	))
	t.Logf("browser: %s", version)

	assert.Equal(t, "unchecked", gateState, "the gate self-test's state comes first")
	assert.True(t, strings.Contains(gateReason, "connection refused") || strings.Contains(gateReason, "no check yet"), gateReason)
	assert.Contains(t, uncovered, "backups exist for namespace monitoring, but its PVCs are never checked")

	assert.Equal(t, "backup-oracle", title)
	assert.Contains(t, inventory, "postgres-backup@shop:/data")
	assert.Contains(t, inventory, "redis-backup@shop:/var/lib/redis")
	assert.Contains(t, inventory, "analytics-warehouse-clickhouse-data-volum-5be1bac6@analytics:/data", "a long name's collision-free username")
	assert.Equal(t, 6, rows, "the demo's six sources, all recent")
	assert.Contains(t, counts, "6 backups")
	assert.Contains(t, counts, "0 older than 26h0m0s")
	assert.Contains(t, backends, "kopia-fs")
	assert.Contains(t, backends, "ready")
	screenshot(t, ctx, "inventory")

	search := func(query string) (decision, pvc, page string) {
		t.Helper()

		require.NoError(t, chromedp.Run(ctx,
			chromedp.Navigate(o.URL+"/"),
			chromedp.WaitVisible("#pvc", chromedp.ByID),
			chromedp.SendKeys("#pvc", query, chromedp.ByID),
			chromedp.Click("#go", chromedp.ByID),
			chromedp.WaitVisible("#decision", chromedp.ByID),
			chromedp.Text("#decision", &decision, chromedp.ByID),
			chromedp.Text("#result-pvc", &pvc, chromedp.ByID),
			chromedp.Text("#result", &page, chromedp.ByID),
		))

		return decision, pvc, page
	}

	decision, pvc, page := search("shop/my.app.data")
	assert.Equal(t, "restore", decision)
	assert.Equal(t, "shop/my.app.data", pvc)
	assert.Contains(t, page, "myappdata-backup@shop:/data", "the identity looked up")
	assert.Contains(t, page, "A restore gets snapshot")
	screenshot(t, ctx, "search-restore")

	decision, _, page = search("shop/redis")
	assert.Equal(t, "unknown", decision, "a near miss is refused")
	assert.Contains(t, page, "redis-backup@shop:/var/lib/redis", "the explanation shows the near miss")
	assert.Contains(t, page, "near miss")
	screenshot(t, ctx, "search-near-miss")

	decision, _, page = search("shop/cache")
	assert.Equal(t, "fresh", decision)
	assert.Contains(t, page, "No snapshot under this identity.")
	screenshot(t, ctx, "search-fresh")

	var classes string

	require.NoError(t, chromedp.Run(ctx,
		chromedp.Navigate(o.URL+"/"),
		chromedp.WaitVisible("#pvc", chromedp.ByID),
		chromedp.SendKeys("#pvc", "shop/postgres", chromedp.ByID),
		chromedp.SendKeys("#previous", "5", chromedp.ByID),
		chromedp.Submit("#search", chromedp.ByID),
		chromedp.WaitVisible("#reason", chromedp.ByID),
		chromedp.AttributeValue("#decision", "class", &classes, nil, chromedp.ByID),
		chromedp.Text("#reason", &page, chromedp.ByID),
	))
	assert.Contains(t, classes, "decision-unknown", "previous beyond the snapshots: VolSync would restore nothing")
	assert.Contains(t, page, "VolSync would restore nothing")

	var qerr string

	require.NoError(t, chromedp.Run(ctx,
		chromedp.Navigate(o.URL+"/"),
		chromedp.WaitVisible("#pvc", chromedp.ByID),
		chromedp.SendKeys("#pvc", `shop/<script>alert(1)</script>`, chromedp.ByID),
		chromedp.Click("#go", chromedp.ByID),
		chromedp.WaitVisible("#query-error", chromedp.ByID),
		chromedp.Text("#query-error", &qerr, chromedp.ByID),
		chromedp.Evaluate(`document.querySelectorAll("script").length`, &rows),
	))
	assert.Contains(t, qerr, "must be a DNS-1123 subdomain")
	assert.Zero(t, rows, "what was typed is shown as text, never run")
}

// screenshot saves a PNG of the page in CONSOLE_SCREENSHOT_DIR, when set.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()

	dir := os.Getenv("CONSOLE_SCREENSHOT_DIR")
	if dir == "" {
		return
	}

	var png []byte
	require.NoError(t, chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)))
	require.NoError(t, os.MkdirAll(dir, 0o755))

	path := filepath.Join(dir, strings.ReplaceAll(name, "/", "-")+".png")
	require.NoError(t, os.WriteFile(path, png, 0o644)) //nolint:gosec // a test artifact
	t.Logf("screenshot %s", path)
}
