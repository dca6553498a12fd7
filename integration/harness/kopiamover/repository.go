package kopiamover

import (
	"fmt"
	"path"
	"strings"
)

// Where the fork's mover Job finds a filesystem repository, restated from perfectra1n/volsync at
// v0.17.11 (commit 0b08a4874576188255523833c9569c5f252064d0):
//
//   - R1, mounts (internal/controller/utils/utils.go, UpdatePodTemplateSpecWithMoverVolumes):
//     every entry of spec.kopia.moverVolumes is mounted in the Job at "/mnt/" + its mountPath.
//   - R2, the repository (internal/controller/mover/kopia/mover.go,
//     buildRepositoryEnvironmentVariables): when a moverVolume is a PVC, KOPIA_REPOSITORY is set
//     to filesystem:// followed by the first such volume's mount; otherwise (an NFS volume, or
//     none) KOPIA_REPOSITORY is taken from the repository Secret as it is.
//   - R3, the URL (mover-kopia/entry.sh, the filesystem branches of connect_repository and
//     create_repository): a filesystem:// URL names the directory after the scheme, which must
//     be absolute ("filesystem:///path").
//
// So with the NFS export the policies mount (moverVolumes mountPath "repository"), the Secret
// must say filesystem:///mnt/repository: filesystem:///repository names a directory of the
// Job's own filesystem, where the mover finds (and creates) an empty repository.

// MoverVolume is an entry of spec.kopia.moverVolumes: its mountPath and whether it is a PVC.
type MoverVolume struct {
	MountPath string
	PVC       bool
}

// MountDir is R1: where a moverVolume is mounted in the Job.
func MountDir(mountPath string) string { return "/mnt/" + mountPath }

// Repository is R2: the KOPIA_REPOSITORY the Job gets, from the moverVolumes and the Secret's
// KOPIA_REPOSITORY.
func Repository(volumes []MoverVolume, secretRepository string) string {
	for _, v := range volumes {
		if v.PVC {
			return "filesystem://" + MountDir(v.MountPath)
		}
	}

	return secretRepository
}

// FindsRepository reports whether a filesystem repository the Job is given (R2) lies on one of
// its moverVolumes (R1, R3): nil when it does, or when the repository is not a filesystem one.
func FindsRepository(volumes []MoverVolume, secretRepository string) error {
	repo := Repository(volumes, secretRepository)

	dir, ok := strings.CutPrefix(repo, "filesystem://")
	if !ok {
		return nil
	}

	if !strings.HasPrefix(dir, "/") {
		return fmt.Errorf("KOPIA_REPOSITORY %q: the mover wants filesystem:///<absolute path>", repo)
	}

	dir = path.Clean(dir)

	var mounts []string

	for _, v := range volumes {
		m := path.Clean(MountDir(v.MountPath))
		if dir == m || strings.HasPrefix(dir, m+"/") {
			return nil
		}

		mounts = append(mounts, m)
	}

	return fmt.Errorf("KOPIA_REPOSITORY %q is not on a moverVolume (mounted at %v): the mover would open, or create, a repository in its own filesystem",
		repo, mounts)
}

// MoverVolumesOf reads spec.kopia.moverVolumes of a ReplicationSource or ReplicationDestination
// object (decoded JSON or YAML).
func MoverVolumesOf(obj map[string]any) []MoverVolume {
	list, _ := lookup(obj, "spec", "kopia")["moverVolumes"].([]any)
	out := make([]MoverVolume, 0, len(list))

	for _, item := range list {
		v, _ := item.(map[string]any)
		_, pvc := lookup(v, "volumeSource")["persistentVolumeClaim"]
		out = append(out, MoverVolume{MountPath: text(v, "mountPath"), PVC: pvc})
	}

	return out
}
