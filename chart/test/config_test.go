package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestRenderedConfigIsAccepted runs `backup-oracle --check-config` with the environment the
// chart's Deployment sets, so a renamed or mistyped variable fails here rather than in a cluster.
// Every backend flavour the chart can deploy is covered.
func TestRenderedConfigIsAccepted(t *testing.T) {
	bin := toolBin(t, "BACKUP_ORACLE_BIN")

	for _, values := range []string{"default.yaml", "existing-claim-nfs-movers.yaml", "kopia-s3-monitoring.yaml", "restic.yaml"} {
		t.Run(values, func(t *testing.T) {
			docs := splitBySource(mustRender(t, "-f", filepath.Join("../testdata/values", values)))

			var deployment struct {
				Spec struct {
					Template struct {
						Spec struct {
							Containers []struct {
								Env []struct{ Name, Value string }
							}
						}
					}
				}
			}
			if err := yaml.Unmarshal([]byte(docs["templates/deployment.yaml"]), &deployment); err != nil {
				t.Fatal(err)
			}

			env := []string{"PATH=" + os.Getenv("PATH")}
			for _, e := range deployment.Spec.Template.Spec.Containers[0].Env {
				if e.Name == "STATE_DIR" {
					e.Value = t.TempDir()
				}

				env = append(env, e.Name+"="+e.Value)
			}

			cmd := exec.Command(bin, "--check-config")
			cmd.Env = env

			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "configuration ok") {
				t.Errorf("--check-config with the chart's environment: %v\n%s\nenv: %v", err, out, env)
			}
		})
	}
}
