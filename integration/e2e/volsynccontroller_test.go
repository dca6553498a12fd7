//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/backup-oracle/backup-oracle/integration/harness"
)

// volsyncTool is upstream VolSync as make e2e builds it (VOLSYNC_BIN: its manager): the
// controller, mover-restic/ (the restic mover's script) and crds/ beside it.
type volsyncTool struct {
	manager, dir string
}

func findVolSync(t *testing.T) volsyncTool {
	t.Helper()

	m := harness.Tool(t, "volsync")

	return volsyncTool{manager: m, dir: filepath.Dir(m)}
}

// startVolSync applies upstream VolSync's VolumeSnapshot CRDs (its controller watches
// VolumeSnapshots), checks that the ReplicationSource/Destination CRDs the stack installed (the
// Kopia fork's, a superset) describe restic exactly as upstream's do, and starts the controller
// (runVolSyncManager).
func (s *stack) startVolSync(t *testing.T, v volsyncTool) {
	t.Helper()

	for _, crd := range []string{"volumesnapshotclasses", "volumesnapshotcontents", "volumesnapshots"} {
		out, err := s.kube.kubectlRun("", "apply", "--server-side", "--field-manager", "e2e", "-f",
			filepath.Join(v.dir, "crds", "snapshot.storage.k8s.io_"+crd+".yaml"))
		require.NoError(t, err, out)
	}

	for _, kind := range []string{"replicationsources", "replicationdestinations"} {
		up := resticSchema(t, filepath.Join(v.dir, "crds", "volsync.backube_"+kind+".yaml"))
		fork := resticSchema(t, filepath.Join(volsyncCRDs(), "volsync.backube_"+kind+".yaml"))
		require.Equal(t, up, fork, "%s: the installed CRD's spec.restic differs from upstream VolSync's", kind)
	}

	s.runVolSyncManager(t, "volsync", v.manager)
}

// runVolSyncManager starts a VolSync controller (manager) out of cluster with the admin
// kubeconfig, as its Deployment would run it: no leader election, metrics and probes on
// 127.0.0.1. It returns once the controller reports ready.
func (s *stack) runVolSyncManager(t *testing.T, name, manager string) *proc {
	t.Helper()

	metrics, probes := freePort(t), freePort(t)
	p := startProc(t, s.dir, name, manager, nil, "--kubeconfig="+s.kube.kubeconfig, "--leader-elect=false",
		"--metrics-bind-address="+hostPort(metrics), "--metrics-secure=false", "--health-probe-bind-address="+hostPort(probes),
		"--zap-devel=false", "--zap-log-level=info")
	s.controllers = append(s.controllers, p)
	s.all = append(s.all, p.pid())

	took, ok := eventually(60*time.Second, 100*time.Millisecond, func() bool {
		require.False(t, p.exited(), "%s exited:\n%s", name, p.tail(30))

		r, err := http.Get(fmt.Sprintf("http://%s/readyz", hostPort(probes))) //nolint:noctx // short poll
		if err != nil {
			return false
		}
		r.Body.Close()

		return r.StatusCode == http.StatusOK
	})
	require.True(t, ok, "%s not ready:\n%s", name, p.tail(30))
	t.Logf("%s controller ready in %s", name, took.Round(time.Millisecond))

	return p
}

// resticSchema is the v1alpha1 openAPIV3Schema of spec.restic in a VolSync CRD file.
func resticSchema(t *testing.T, file string) any {
	t.Helper()

	b, err := os.ReadFile(file) //nolint:gosec // test data
	require.NoError(t, err)

	var crd map[string]any
	require.NoError(t, yaml.Unmarshal(b, &crd), file)

	versions, _ := nested(crd, "spec", "versions").([]any)
	for _, v := range versions {
		m, _ := v.(map[string]any)
		if m["name"] == "v1alpha1" {
			return nested(m, "schema", "openAPIV3Schema", "properties", "spec", "properties", "restic")
		}
	}

	t.Fatalf("%s: no v1alpha1", file)

	return nil
}
