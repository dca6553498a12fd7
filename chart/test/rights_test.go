package test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// rule is an RBAC rule, as `backup-oracle rights -o json` prints it and as a Role holds it.
type rule struct {
	Namespace string   `json:"namespace" yaml:"-"`
	APIGroups []string `json:"apiGroups" yaml:"apiGroups"`
	Resources []string `json:"resources" yaml:"resources"`
	Verbs     []string `json:"verbs" yaml:"verbs"`
}

func flatten(rules []rule) []string {
	var out []string

	for _, r := range rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					out = append(out, r.Namespace+" "+g+"/"+res+" "+v)
				}
			}
		}
	}

	slices.Sort(out)

	return slices.Compact(out)
}

// k8sObject is the part of a rendered object the rights comparison reads.
type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name      string `yaml:"name"`
		Namespace string `yaml:"namespace"`
	} `yaml:"metadata"`
	Rules    []rule                      `yaml:"rules"`
	RoleRef  struct{ Kind, Name string } `yaml:"roleRef"`
	Subjects []struct{ Kind, Name, Namespace string }
	Spec     struct {
		Template struct {
			Spec struct {
				ServiceAccountName           string `yaml:"serviceAccountName"`
				AutomountServiceAccountToken *bool  `yaml:"automountServiceAccountToken"`
				Containers                   []struct {
					Env []struct{ Name, Value string }
				}
			}
		}
	}
}

// renderedRights returns the rights the render grants the Deployment's service account (through
// every RoleBinding and ClusterRoleBinding naming it), whether its token is mounted, and the
// Deployment's environment.
func renderedRights(t *testing.T, out string) (granted []string, automount bool, env []string) {
	t.Helper()

	var objs []k8sObject

	for _, doc := range strings.Split(out, "\n---\n") {
		var o k8sObject
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatal(err)
		}

		objs = append(objs, o)
	}

	sa := ""

	for _, o := range objs {
		if o.Kind == "Deployment" {
			sa = o.Spec.Template.Spec.ServiceAccountName
			automount = o.Spec.Template.Spec.AutomountServiceAccountToken != nil && *o.Spec.Template.Spec.AutomountServiceAccountToken

			for _, e := range o.Spec.Template.Spec.Containers[0].Env {
				env = append(env, e.Name+"="+e.Value)
			}
		}
	}

	if sa == "" {
		t.Fatal("no Deployment with a serviceAccountName in the render")
	}

	var rules []rule

	for _, b := range objs {
		if b.Kind != "RoleBinding" && b.Kind != "ClusterRoleBinding" {
			continue
		}

		bound := slices.ContainsFunc(b.Subjects, func(s struct{ Kind, Name, Namespace string }) bool {
			return s.Kind == "ServiceAccount" && s.Name == sa && s.Namespace == namespace
		})
		if !bound {
			continue
		}

		for _, r := range objs {
			if r.Kind != b.RoleRef.Kind || r.Metadata.Name != b.RoleRef.Name || (r.Kind == "Role" && r.Metadata.Namespace != b.Metadata.Namespace) {
				continue
			}

			for _, rl := range r.Rules {
				rl.Namespace = b.Metadata.Namespace // a ClusterRoleBinding has none: cluster-wide
				rules = append(rules, rl)
			}
		}
	}

	return flatten(rules), automount, env
}

// TestRightsMatchTheBinary: the rights the chart grants the oracle's service account are exactly
// those the binary says its configuration needs (`backup-oracle rights -o json`, stated next to
// each Kubernetes API call in repo/kube), for every value set and with the self-test and
// authentication off; the token is mounted only when some right is granted.
func TestRightsMatchTheBinary(t *testing.T) {
	bin := toolBin(t, "BACKUP_ORACLE_BIN")

	renders := map[string][]string{"gate and auth off": {"-f", "../testdata/values/default.yaml", "--set", "gate.enabled=false", "--set", "auth.enabled=false"}}
	for _, values := range valueSets(t) {
		renders[filepath.Base(values)] = []string{"-f", values}
	}

	for name, args := range renders {
		t.Run(name, func(t *testing.T) {
			granted, automount, env := renderedRights(t, mustRender(t, args...))

			cmd := exec.Command(bin, "rights", "-o", "json")
			cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)

			raw, err := cmd.Output()
			if err != nil {
				t.Fatalf("backup-oracle rights: %v", err)
			}

			var needed []rule
			if err := json.Unmarshal(raw, &needed); err != nil {
				t.Fatalf("decode %s: %v", raw, err)
			}

			if want := flatten(needed); !slices.Equal(granted, want) {
				t.Errorf("the chart grants the oracle\n  %v\nthe binary needs\n  %v", granted, want)
			}

			if automount != (len(granted) > 0) {
				t.Errorf("automountServiceAccountToken %v with %d rights granted", automount, len(granted))
			}

			if name == "gate and auth off" && len(granted) > 0 {
				t.Errorf("with the self-test and authentication off the oracle needs no right, got %v", granted)
			}

			// The reviews of callers (README, "Who may ask") and the self-test's dry runs.
			if want := []string{" authentication.k8s.io/tokenreviews create", " authorization.k8s.io/subjectaccessreviews create",
				"backup-oracle-canary /persistentvolumeclaims create"}; name == "default.yaml" && !slices.Equal(granted, want) {
				t.Errorf("the default render grants %v; want %v", granted, want)
			}
		})
	}
}
