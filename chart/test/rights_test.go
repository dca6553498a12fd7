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
					Args []string `yaml:"args"`
					Env  []struct{ Name, Value string }
				}
			}
		}
	}
}

// parseObjects splits a render into the objects the rights comparison reads.
func parseObjects(t *testing.T, out string) []k8sObject {
	t.Helper()

	var objs []k8sObject

	for _, doc := range strings.Split(out, "\n---\n") {
		var o k8sObject
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatal(err)
		}

		objs = append(objs, o)
	}

	return objs
}

// renderedRights returns the rights the render grants the Deployment's service account (through
// every RoleBinding and ClusterRoleBinding naming it), whether its token is mounted, and the
// Deployment's environment.
func renderedRights(t *testing.T, out string) (granted []string, automount bool, env []string) {
	t.Helper()

	objs := parseObjects(t, out)
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

	return grantedTo(objs, sa), automount, env
}

// grantedTo is what the render grants service account sa (of the release's namespace), flattened.
func grantedTo(objs []k8sObject, sa string) []string {
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

	return flatten(rules)
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

// TestCutoverJobRightsMatchTheBinary: each cutover Job the chart renders runs as its own service
// account, granted exactly what the binary says that invocation needs (`backup-oracle <the Job's
// arguments> --rights` with the Job's environment); which Job a release gets follows its side of
// the cutover: the colour being left runs the final backups, a new colour none, a blue/green
// release without a cutover the undo (unless turned off), a single-backend release none.
func TestCutoverJobRightsMatchTheBinary(t *testing.T) {
	bin := toolBin(t, "BACKUP_ORACLE_BIN")

	renders := map[string][]string{
		"leaving, waiting for the GitOps engine": {"-f", "../testdata/values/blue-green-cutover-leaving.yaml", "--set", "cutover.job.scaleWorkloads=false"},
		"undo, scaling back":                     {"-f", "../testdata/values/blue-green.yaml", "--set", "cutover.job.scaleWorkloads=true"},
		"undo off":                               {"-f", "../testdata/values/blue-green.yaml", "--set", "cutover.undoJob=false"},
	}
	for _, values := range valueSets(t) {
		renders[filepath.Base(values)] = []string{"-f", values}
	}

	wantArgs := map[string][]string{
		"blue-green-cutover-leaving.yaml":        {"cutover", "run", "--scale-workloads"},
		"leaving, waiting for the GitOps engine": {"cutover", "run", "--timeout=2h"},
		"blue-green.yaml":                        {"cutover", "undo", "--termination-log=/dev/termination-log"},
		"restic-blue-green.yaml":                 {"cutover", "undo", "--termination-log=/dev/termination-log"}, // the trigger is the movers' common spec
		"undo, scaling back":                     {"cutover", "undo", "--scale-workloads"},
	}

	for name, args := range renders {
		t.Run(name, func(t *testing.T) {
			objs := parseObjects(t, mustRender(t, args...))
			jobs := 0

			for _, job := range objs {
				if job.Kind != "Job" {
					continue
				}

				jobs++
				pod := job.Spec.Template.Spec
				c := pod.Containers[0]

				if want := wantArgs[name]; !slices.Equal(c.Args[:len(want)], want) {
					t.Errorf("Job %s runs %v; want it to start with %v", job.Metadata.Name, c.Args, want)
				}

				cmd := exec.Command(bin, append(slices.Clone(c.Args), "--rights")...)
				cmd.Env = []string{"PATH=" + os.Getenv("PATH")}

				for _, e := range c.Env {
					cmd.Env = append(cmd.Env, e.Name+"="+e.Value)
				}

				raw, err := cmd.Output()
				if err != nil {
					t.Fatalf("backup-oracle %v --rights: %v", c.Args, err)
				}

				var needed []rule
				if err := json.Unmarshal(raw, &needed); err != nil {
					t.Fatalf("decode %s: %v", raw, err)
				}

				granted := grantedTo(objs, pod.ServiceAccountName)
				if want := flatten(needed); len(want) == 0 || !slices.Equal(granted, want) {
					t.Errorf("the chart grants the cutover Job\n  %v\nthe binary needs\n  %v", granted, want)
				}

				oracle, _, _ := renderedRights(t, mustRender(t, args...))
				if pod.ServiceAccountName == "" || slices.ContainsFunc(granted, func(r string) bool { return slices.Contains(oracle, r) && strings.Contains(r, "replicationsources") }) {
					t.Errorf("the Job runs as %q and the oracle shares its rights %v", pod.ServiceAccountName, oracle)
				}
			}

			if want := len(wantArgs[name]) > 0; (jobs == 1) != want || jobs > 1 {
				t.Errorf("%d cutover Jobs rendered; want %v", jobs, want)
			}
		})
	}
}
