package test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// demoLongPVC is the 60-character PVC the oracle's --demo repository holds a backup of.
const demoLongPVC = "analytics-warehouse-clickhouse-data-volume-claim-replica-0001"

const livePVCs = `apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: my.app.data, namespace: shop, uid: 55555555-0000-0000-0000-000000000001, labels: {backup: hourly}}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: ` + demoLongPVC + `, namespace: analytics, uid: 55555555-0000-0000-0000-000000000002, labels: {backup: daily}}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: fresh-app, namespace: shop, uid: 55555555-0000-0000-0000-000000000003, labels: {backup: daily}}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: Bad_Name, namespace: shop, uid: 55555555-0000-0000-0000-000000000004, labels: {backup: daily}}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
`

// liveSets are the chart templates applied per policy engine.
var liveSets = map[string][]string{
	"clusterpolicy": {"--set", "policies.engine=clusterpolicy", "--show-only", "templates/policies/clusterpolicy-admission.yaml"},
	"cel":           {"--set", "policies.engine=cel", "--show-only", "templates/policies/cel-validate.yaml", "--show-only", "templates/policies/cel-mutate.yaml"},
}

// TestLiveOracle applies the admission policies with the real Kyverno CLI against a running
// backup-oracle serving the real Kopia repository of its --demo mode: dotted and long names are
// restored, a fresh PVC is left alone, a 400 (invalid name) is denied, and once the oracle is
// stopped every labelled PVC is denied.
func TestLiveOracle(t *testing.T) {
	oracleBin, kyverno := toolBin(t, "BACKUP_ORACLE_BIN"), toolBin(t, "KYVERNO_BIN")
	dir := t.TempDir()

	pvcs := filepath.Join(dir, "pvcs.yaml")
	if err := os.WriteFile(pvcs, []byte(livePVCs), 0o600); err != nil {
		t.Fatal(err)
	}

	url, stop := startOracle(t, oracleBin)

	for engine, args := range liveSets {
		policy := filepath.Join(dir, engine+".yaml")
		// The demo serves plain HTTP to everyone: the policies as rendered for that (TLS and
		// authentication are exercised end to end, make e2e).
		rendered := mustRender(t, append([]string{"-f", "../testdata/values/default.yaml", "--set", "policies.oracleURL=" + url,
			"--set", "tls.enabled=false", "--set", "auth.enabled=false"}, args...)...)
		if err := os.WriteFile(policy, []byte(rendered), 0o600); err != nil {
			t.Fatal(err)
		}

		t.Run(engine+"/oracle-up", func(t *testing.T) {
			out := filepath.Join(dir, engine+"-out.yaml")
			stdout, _ := kyvernoApply(t, kyverno, policy, pvcs, "-o", out)

			patched := map[string]string{}
			for _, doc := range readDocs(t, out) {
				spec, _ := doc["spec"].(map[string]any)
				ref, _ := spec["dataSourceRef"].(map[string]any)
				name, _ := ref["name"].(string)
				patched[nameOf(doc)] = name
			}

			for pvc, want := range map[string]string{
				"my.app.data": "my.app.data-backup", demoLongPVC: demoLongPVC + "-backup", "fresh-app": "",
			} {
				if got, ok := patched[pvc]; !ok || got != want {
					t.Errorf("%s: dataSourceRef name %q (in output: %v), want %q", pvc, got, ok, want)
				}
			}

			if !strings.Contains(stdout, "PersistentVolumeClaim/Bad_Name failed") || strings.Count(stdout, "failed:") != 1 {
				t.Errorf("want exactly Bad_Name denied (the oracle answers 400):\n%s", stdout)
			}
		})
	}

	stop()

	for engine := range liveSets {
		t.Run(engine+"/oracle-down", func(t *testing.T) {
			stdout, err := kyvernoApply(t, kyverno, filepath.Join(dir, engine+".yaml"), pvcs)
			if err == nil {
				t.Error("kyverno apply succeeded with the oracle down")
			}

			// ClusterPolicy: the apiCall defaults deny ("failed"). CEL has no default: http.Get
			// errors, which the policies' failurePolicy Fail turns into a denial in a cluster.
			for _, pvc := range []string{"my.app.data", demoLongPVC, "fresh-app", "Bad_Name"} {
				denied := regexp.MustCompile(`PersistentVolumeClaim/` + regexp.QuoteMeta(pvc) + ` failed:|error while applying .*/PersistentVolumeClaim/` + regexp.QuoteMeta(pvc) + ` `)
				if !denied.MatchString(stdout) {
					t.Errorf("%s was not denied with the oracle down:\n%s", pvc, stdout)
				}
			}
		})
	}
}

func toolBin(t *testing.T, env string) string {
	t.Helper()

	bin := os.Getenv(env)
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set (run through `make test-chart`)", env)
		}

		t.Skipf("%s is not set; run through `make test-chart`", env)
	}

	return bin
}

// kyvernoApply runs kyverno apply with loopback calls allowed (Kyverno blocks 127.0.0.0/8 by default).
func kyvernoApply(t *testing.T, kyverno, policy, resources string, args ...string) (string, error) {
	t.Helper()

	cmd := exec.Command(kyverno, append([]string{"apply", policy, "--resource", resources, "--remove-color"}, args...)...)
	cmd.Env = append(os.Environ(), "FLAG_HTTP_BLOCKLIST=169.254.169.254/32")

	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()

	return out.String(), err
}

// startOracle runs backup-oracle --demo on a free loopback port until it is ready; stop ends it.
func startOracle(t *testing.T, bin string, env ...string) (url string, stop func()) {
	t.Helper()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}

	addr := l.Addr().String()
	_ = l.Close()

	var logs bytes.Buffer

	cmd := exec.Command(bin, "--demo")
	cmd.Env = append(append(os.Environ(), "LISTEN_ADDRESS="+addr, "STATE_DIR="+t.TempDir()), env...)
	cmd.Stdout, cmd.Stderr = &logs, &logs

	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()

	// Safe to call twice (the test and its cleanup): the second Kill fails, done is closed.
	stop = func() {
		_ = cmd.Process.Kill()
		<-done
	}
	t.Cleanup(stop)

	url = "http://" + addr
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	for {
		if ready(ctx, url) {
			return url, stop
		}

		select {
		case <-done:
			t.Fatalf("backup-oracle exited:\n%s", logs.String())
		case <-ctx.Done():
			t.Fatalf("backup-oracle not ready after 2 minutes:\n%s", logs.String())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func ready(ctx context.Context, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/readyz", nil)
	if err != nil {
		return false
	}

	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}

	_ = resp.Body.Close()

	return resp.StatusCode == http.StatusOK
}
