package jobrunner

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// mount is one bind mount into the container's root: host directory or file at target.
type mount struct {
	host, target string
	readOnly     bool
}

// volumes prepares the host side of every volume the container mounts and returns the mounts
// in the order a container runtime performs them: the Job's order, parents before children
// (a stable sort on the number of path elements, as containerd does).
func (r *Runner) volumes(ctx context.Context, src *sources, ns string, spec podSpec, c container, fsGroup *int64, dir string) ([]mount, error) {
	byName := map[string]volume{}
	for _, v := range spec.Volumes {
		byName[v.Name] = v
	}

	mounts := make([]mount, 0, len(c.VolumeMounts))

	for _, vm := range c.VolumeMounts {
		v, ok := byName[vm.Name]
		if !ok {
			return nil, fmt.Errorf("jobrunner: volumeMount %s: no volume of that name", vm.Name)
		}

		host, ro, err := r.volumeDir(ctx, src, ns, v, fsGroup, filepath.Join(dir, "volumes", v.Name))
		if err != nil {
			return nil, fmt.Errorf("jobrunner: volume %s: %w", v.Name, err)
		}

		if vm.SubPath != "" {
			if !filepath.IsLocal(vm.SubPath) {
				return nil, fmt.Errorf("jobrunner: volumeMount %s: subPath %q leaves the volume", vm.Name, vm.SubPath)
			}

			host = filepath.Join(host, vm.SubPath)
			if err := os.MkdirAll(host, 0o755); err != nil { //nolint:gosec // as the kubelet creates a missing subPath
				return nil, fmt.Errorf("jobrunner: volumeMount %s: %w", vm.Name, err)
			}
		}

		if !path.IsAbs(vm.MountPath) {
			return nil, fmt.Errorf("jobrunner: volumeMount %s: mountPath %q is not absolute", vm.Name, vm.MountPath)
		}

		mounts = append(mounts, mount{host: host, target: path.Clean(vm.MountPath), readOnly: ro || vm.ReadOnly})
	}

	slices.SortStableFunc(mounts, func(a, b mount) int { return depth(a.target) - depth(b.target) })

	return mounts, nil
}

func depth(p string) int { return len(strings.Split(strings.Trim(p, "/"), "/")) }

// volumeDir returns the host directory behind one volume and whether the volume is read-only.
func (r *Runner) volumeDir(ctx context.Context, src *sources, ns string, v volume, fsGroup *int64, scratch string) (string, bool, error) {
	switch {
	case v.PersistentVolumeClaim != nil:
		claim := v.PersistentVolumeClaim.ClaimName

		var pvc struct{}
		if err := src.api.Get(ctx, "/api/v1/namespaces/"+ns+"/persistentvolumeclaims/"+claim, &pvc); err != nil {
			return "", false, fmt.Errorf("claim %s: %w", claim, err)
		}

		d, err := r.ClaimDir(ns, claim)
		if err != nil {
			return "", false, err
		}

		return d, v.PersistentVolumeClaim.ReadOnly, setOwnership(d, fsGroup, v.PersistentVolumeClaim.ReadOnly)
	case v.EmptyDir != nil:
		if err := os.MkdirAll(scratch, 0o777); err != nil { //nolint:gosec // an emptyDir is world-writable
			return "", false, err
		}

		if err := os.Chmod(scratch, 0o777); err != nil { //nolint:gosec // as the kubelet makes it
			return "", false, err
		}

		return scratch, false, setOwnership(scratch, fsGroup, false)
	case v.Secret != nil:
		return scratch, true, secretVolume(ctx, src, v, fsGroup, scratch)
	case v.NFS != nil:
		d, ok := r.NFS[v.NFS.Server+":"+v.NFS.Path]
		if !ok {
			return "", false, fmt.Errorf("nfs %s:%s: no directory stands in for this export (Runner.NFS)", v.NFS.Server, v.NFS.Path)
		}

		return d, v.NFS.ReadOnly, nil
	default:
		return "", false, errors.New("only persistentVolumeClaim, emptyDir, secret and nfs volumes are simulated")
	}
}

// secretVolume writes the Secret's keys (or the items listed) as files into dir, with the
// volume's modes, group-owned by fsGroup.
func secretVolume(ctx context.Context, src *sources, v volume, fsGroup *int64, dir string) error {
	s := v.Secret

	data, err := src.secret(ctx, s.SecretName)
	if err != nil {
		return err
	}

	if err := os.MkdirAll(dir, 0o755); err != nil { //nolint:gosec // the volume's root, as the kubelet makes it
		return err
	}

	if data == nil {
		if optional(s.Optional) {
			return setOwnership(dir, fsGroup, true)
		}

		return fmt.Errorf("Secret %s not found", s.SecretName) //nolint:staticcheck // the kind's name
	}

	mode := fs.FileMode(0o644)
	if s.DefaultMode != nil {
		mode = fs.FileMode(*s.DefaultMode) //nolint:gosec // a file mode
	}

	items := s.Items
	if len(items) == 0 {
		for k := range data {
			items = append(items, keyToPath{Key: k, Path: k})
		}
	}

	for _, it := range items {
		b, ok := data[it.Key]
		if !ok {
			if optional(s.Optional) {
				continue
			}

			return fmt.Errorf("couldn't find key %s in Secret %s", it.Key, s.SecretName)
		}

		if !filepath.IsLocal(it.Path) {
			return fmt.Errorf("item path %q leaves the volume", it.Path)
		}

		m := mode
		if it.Mode != nil {
			m = fs.FileMode(*it.Mode) //nolint:gosec // a file mode
		}

		p := filepath.Join(dir, it.Path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil { //nolint:gosec // as the kubelet makes it
			return err
		}

		if err := os.WriteFile(p, b, m); err != nil {
			return err
		}

		if err := os.Chmod(p, m); err != nil { // not masked by the umask
			return err
		}
	}

	return setOwnership(dir, fsGroup, true)
}

// setOwnership does what the kubelet does to a volume for a pod with an fsGroup
// (pkg/volume/volume_linux.go, SetVolumeOwnership): every file and directory becomes owned by
// the group, readable and, unless read-only, writable by it; directories also searchable by it
// and setgid, so new files inherit the group. Without an fsGroup nothing changes.
func setOwnership(dir string, fsGroup *int64, readOnly bool) error {
	if fsGroup == nil {
		return nil
	}

	mask := fs.FileMode(0o660)
	if readOnly {
		mask = 0o440
	}

	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}

		// The volume is the test's own directory, owned by root: no one races this walk.
		if err := os.Lchown(p, -1, int(*fsGroup)); err != nil { //nolint:gosec // G122: see above
			return err
		}

		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}

		info, err := d.Info()
		if err != nil {
			return err
		}

		m := info.Mode().Perm() | mask
		if d.IsDir() {
			m |= 0o110 | fs.ModeSetgid
		}

		return os.Chmod(p, m|info.Mode()&(fs.ModeSetuid|fs.ModeSticky)) //nolint:gosec // G122: the test's own directory
	})
}
