// Package jobrunner runs a Kubernetes Job's pod on this machine the way a kubelet would, for the
// end-to-end tests that need VolSync's mover Jobs to really run (there is no kubelet, no
// container runtime and no image here). It was written for upstream VolSync's restic mover
// (mover-restic/entry.sh) and runs any mover script the same way, e.g. the Kopia fork's
// mover-kopia/entry.sh given its directory as an Image file.
//
// # What it does, per Run(namespace, job)
//
//   - reads the Job from the API server and refuses what it cannot honour (several containers,
//     init containers, a suspended or zero-parallelism Job, volume kinds other than below);
//   - resolves the container's environment as the kubelet does: envFrom (Secrets, ConfigMaps,
//     with prefix), then env (value with $(VAR) expansion, secretKeyRef, configMapKeyRef,
//     fieldRef metadata.name/namespace/uid); a missing Secret, ConfigMap or key fails the run
//     unless optional (the kubelet's CreateContainerConfigError), before anything runs;
//   - lays out the volumes: a persistentVolumeClaim is the directory ClaimDir(ns, claim) (the
//     claim must exist in the API; it need not be bound, there is no provisioner), an emptyDir a
//     fresh directory per run, a Secret volume its keys as files (items, defaultMode and mode
//     honoured), an nfs volume the directory Runner.NFS maps its server:path to; with an
//     fsGroup, the volumes are group-owned and group-writable as the kubelet makes them;
//   - builds the container's root: the host's /usr, /etc (read-only), /dev and /proc, the
//     Image's files (read-only), then the volumes at their mountPaths in the Job's order, parents
//     before children, in a private mount namespace (unshare) so nothing leaks to the host; a
//     readOnlyRootFilesystem makes the root read-only, as in the Job;
//   - runs command and args (with $(VAR) expansion) chrooted there as the Job's user and group
//     (runAsUser, runAsGroup, fsGroup and supplementalGroups as supplementary groups; root when
//     none is set, as the image's default user is assumed to be), with exactly the resolved
//     environment plus the Image's and HOSTNAME (the pod's name) and HOME=/ unless set;
//   - records the exit code and the combined output, and patches the Job's status as the Job
//     controller would after that one pod: succeeded (with the SuccessCriteriaMet and Complete
//     conditions) on exit 0, else one more failed pod (and the Failed condition once the
//     backoffLimit is reached). VolSync then sees the Job done.
//
// # What it does not simulate
//
// Images (the host's programs stand in for the image's; Image names the mover's own files),
// cgroups and resource limits, a network namespace (the mover shares the host's network and
// reaches servers on 127.0.0.1), capabilities and seccomp (the process runs with the
// capabilities its uid has), a pod object, logs in the API (pods/log), restarts (one Run is one
// pod), service account tokens, node affinity and scheduling, volume binding and provisioning.
//
// It needs root (mount namespaces, chroot, ownership): Available reports whether it can run.
package jobrunner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Image stands in for the container image: the files the mover needs beyond the host's
// programs, and the image's environment.
type Image struct {
	// Files maps a path in the container to a file or directory on the host, bound read-only,
	// e.g. "/mover-restic" to VolSync's mover-restic folder and "/usr/local/bin/restic" to the
	// restic binary.
	Files map[string]string
	// Env is the image's environment (NAME=value), e.g. its PATH; the container's own
	// environment overrides it.
	Env []string
}

// Runner runs Jobs' pods. Its fields are set before the first Run; Run is safe for concurrent
// use on different Jobs.
type Runner struct {
	API   API
	Image Image
	// Claims holds a directory per persistent volume claim: <Claims>/<namespace>/<claim>.
	Claims string
	// Work holds each run's root, emptyDirs, Secret volumes and log.
	Work string
	// NFS maps "server:path" of an nfs volume to the host directory that stands in for it.
	NFS map[string]string

	mu   sync.Mutex
	runs int
}

// Result is what one run of a Job's pod left.
type Result struct {
	// ExitCode is the command's exit status (-1 when it did not start).
	ExitCode int
	// Log is its standard output and error, interleaved.
	Log string
	// Succeeded is what was patched into the Job: true for succeeded, false for failed.
	Succeeded bool
}

// ClaimDir returns (and creates) the directory standing in for a claim's volume.
func (r *Runner) ClaimDir(namespace, claim string) (string, error) {
	if !filepath.IsLocal(namespace) || !filepath.IsLocal(claim) {
		return "", fmt.Errorf("jobrunner: claim %s/%s: not a name", namespace, claim)
	}

	d := filepath.Join(r.Claims, namespace, claim)
	if err := os.MkdirAll(d, 0o755); err != nil { //nolint:gosec // a volume's root, readable as in a cluster
		return "", fmt.Errorf("jobrunner: claim %s/%s: %w", namespace, claim, err)
	}

	return d, nil
}

// Available reports why the runner cannot run here (nil when it can): it needs root and a
// private mount namespace.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("jobrunner: needs root (mount namespace, chroot, volume ownership)")
	}

	out, err := exec.Command("unshare", "--mount", "--propagation", "private", "true").CombinedOutput()
	if err != nil {
		return fmt.Errorf("jobrunner: unshare --mount: %w: %s", err, out)
	}

	return nil
}

// Run runs the Job's pod once, records its status in the Job and returns what it left. An
// error means the pod could not be run (the Job is left unchanged), not that the command
// failed: that is Result.ExitCode.
func (r *Runner) Run(ctx context.Context, namespace, name string) (Result, error) {
	jobPath := "/apis/batch/v1/namespaces/" + namespace + "/jobs/" + name

	var j job
	if err := r.API.Get(ctx, jobPath, &j); err != nil {
		return Result{ExitCode: -1}, err
	}

	if err := runnable(j); err != nil {
		return Result{ExitCode: -1}, fmt.Errorf("jobrunner: job %s/%s: %w", namespace, name, err)
	}

	dir, err := r.runDir(namespace, name)
	if err != nil {
		return Result{ExitCode: -1}, err
	}

	p, err := r.prepare(ctx, namespace, j, dir)
	if err != nil {
		return Result{ExitCode: -1}, fmt.Errorf("jobrunner: job %s/%s: %w", namespace, name, err)
	}

	start := time.Now()
	res := p.run(ctx)

	if err := r.record(ctx, jobPath, j, res, start); err != nil {
		return res, err
	}

	return res, nil
}

func runnable(j job) error {
	spec := j.Spec.Template.Spec

	switch {
	case len(spec.Containers) != 1:
		return fmt.Errorf("%d containers: only a single-container pod is simulated", len(spec.Containers))
	case len(spec.InitContainers) > 0:
		return errors.New("init containers are not simulated")
	case j.Spec.Suspend != nil && *j.Spec.Suspend:
		return errors.New("suspended: no pod would start")
	case j.Spec.Parallelism != nil && *j.Spec.Parallelism == 0:
		return errors.New("parallelism 0 (paused): no pod would start")
	case j.Status.Succeeded > 0:
		return errors.New("already succeeded")
	}

	return nil
}

func (r *Runner) runDir(namespace, name string) (string, error) {
	r.mu.Lock()
	r.runs++
	n := r.runs
	r.mu.Unlock()

	dir := filepath.Join(r.Work, fmt.Sprintf("%s-%s-%d", namespace, name, n))
	if err := os.MkdirAll(dir, 0o755); err != nil { //nolint:gosec // the container's root lives here
		return "", fmt.Errorf("jobrunner: %w", err)
	}

	return dir, nil
}

// pod is one prepared run: the script that builds the root and starts the command, and its
// environment.
type pod struct {
	script string
	env    []string
	log    string
}

func (r *Runner) prepare(ctx context.Context, ns string, j job, dir string) (*pod, error) {
	spec := j.Spec.Template.Spec
	c := spec.Containers[0]
	src := newSources(r.API, ns)
	podMeta := objectMeta{Name: j.Metadata.Name + "-jobrunner", Namespace: ns, UID: j.Metadata.UID}

	env, values, err := environment(ctx, src, podMeta, c)
	if err != nil {
		return nil, err
	}

	id := identity(spec.SecurityContext, c.SecurityContext)
	if id.nonRoot && id.uid == 0 {
		return nil, errors.New("runAsNonRoot and the user is root: the kubelet refuses to start the container")
	}

	mounts, err := r.volumes(ctx, src, ns, spec, c, id.fsGroup, dir)
	if err != nil {
		return nil, err
	}

	argv := make([]string, 0, len(c.Command)+len(c.Args))
	for _, a := range append(append([]string{}, c.Command...), c.Args...) {
		argv = append(argv, expand(a, values))
	}

	if len(c.Command) == 0 {
		return nil, errors.New("no command: the image's entrypoint is not simulated")
	}

	readOnlyRoot := c.SecurityContext != nil && c.SecurityContext.ReadOnlyRootFilesystem != nil && *c.SecurityContext.ReadOnlyRootFilesystem

	return &pod{
		script: rootScript(filepath.Join(dir, "root"), r.Image.Files, mounts, readOnlyRoot, id, c.WorkingDir, argv),
		env:    containerEnv(r.Image.Env, env, podMeta.Name),
		log:    filepath.Join(dir, "log"),
	}, nil
}

// containerEnv is the image's environment overridden by the container's, with HOSTNAME and
// HOME as a runtime sets them.
func containerEnv(image, container []string, hostname string) []string {
	out := []string{"HOSTNAME=" + hostname}
	seen := map[string]bool{"HOSTNAME": true}

	add := func(kv string) {
		name, _, _ := strings.Cut(kv, "=")
		if seen[name] {
			for i, e := range out {
				if strings.HasPrefix(e, name+"=") {
					out[i] = kv
				}
			}

			return
		}

		seen[name] = true
		out = append(out, kv)
	}

	for _, kv := range image {
		add(kv)
	}

	for _, kv := range container {
		add(kv)
	}

	if !seen["HOME"] {
		out = append(out, "HOME=/")
	}

	return out
}

// run executes the pod's script in a private mount namespace; the command's output and exit
// status become the Result.
func (p *pod) run(ctx context.Context) Result {
	var out bytes.Buffer

	cmd := exec.CommandContext(ctx, "unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", p.script) //nolint:gosec // the test's own script
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = &out, &out

	err := cmd.Run()
	res := Result{ExitCode: 0, Log: out.String()}

	var exit *exec.ExitError

	switch {
	case errors.As(err, &exit):
		res.ExitCode = exit.ExitCode()
	case err != nil:
		res.ExitCode = -1
		res.Log += "\njobrunner: " + err.Error()
	}

	res.Succeeded = res.ExitCode == 0
	_ = os.WriteFile(p.log, []byte(res.Log), 0o600)

	return res
}

// ids are the user, group and supplementary groups the command runs as.
type ids struct {
	uid, gid int64
	groups   []int64
	fsGroup  *int64
	nonRoot  bool
}

// identity applies the container's securityContext over the pod's; unset, the image's default
// user is taken to be root.
func identity(p *podSecurityContext, c *securityContext) ids {
	var id ids

	if p != nil {
		if p.RunAsUser != nil {
			id.uid = *p.RunAsUser
		}

		if p.RunAsGroup != nil {
			id.gid = *p.RunAsGroup
		}

		id.nonRoot = optional(p.RunAsNonRoot)

		if p.FSGroup != nil {
			id.fsGroup = p.FSGroup
			id.groups = append(id.groups, *p.FSGroup)
		}

		id.groups = append(id.groups, p.SupplementalGroups...)
	}

	if c != nil {
		if c.RunAsUser != nil {
			id.uid = *c.RunAsUser
		}

		if c.RunAsGroup != nil {
			id.gid = *c.RunAsGroup
		}

		if c.RunAsNonRoot != nil {
			id.nonRoot = *c.RunAsNonRoot
		}
	}

	return id
}

func (id ids) groupList() string {
	s := make([]string, 0, len(id.groups)+1)
	s = append(s, strconv.FormatInt(id.gid, 10))

	for _, g := range id.groups {
		s = append(s, strconv.FormatInt(g, 10))
	}

	return strings.Join(s, ",")
}
