package kopiamover_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/backup-oracle/backup-oracle/integration/harness/kopiamover"
)

// R1 to R3, with hand-written paths.
func TestRepositoryOfTheJob(t *testing.T) {
	nfs := []kopiamover.MoverVolume{{MountPath: "repository"}}
	pvc := []kopiamover.MoverVolume{{MountPath: "cache"}, {MountPath: "repo", PVC: true}, {MountPath: "other", PVC: true}}

	assert.Equal(t, "/mnt/repository", kopiamover.MountDir("repository"))
	assert.Equal(t, "filesystem:///repository", kopiamover.Repository(nfs, "filesystem:///repository"), "NFS: the Secret's, as it is")
	assert.Equal(t, "filesystem:///mnt/repo", kopiamover.Repository(pvc, "filesystem:///repository"), "the first PVC volume wins over the Secret")
	assert.Equal(t, "s3://bucket/prefix", kopiamover.Repository(nil, "s3://bucket/prefix"))

	for _, tc := range []struct {
		name    string
		volumes []kopiamover.MoverVolume
		secret  string
		ok      bool
	}{
		{"the policies' NFS mount and a Secret naming it", nfs, "filesystem:///mnt/repository", true},
		{"a sub-directory of the mount", nfs, "filesystem:///mnt/repository/kopia", true},
		{"the Secret of the old defaults: not on the mount", nfs, "filesystem:///repository", false},
		{"a sibling with the same prefix", nfs, "filesystem:///mnt/repository-old", false},
		{"relative", nfs, "filesystem://mnt/repository", false},
		{"no volume", nil, "filesystem:///mnt/repository", false},
		{"a PVC volume makes the Secret's path irrelevant", pvc, "filesystem:///repository", true},
		{"not a filesystem repository", nil, "s3://bucket", true},
	} {
		err := kopiamover.FindsRepository(tc.volumes, tc.secret)
		assert.Equal(t, tc.ok, err == nil, "%s: %v", tc.name, err)
	}
}

func TestMoverVolumesOf(t *testing.T) {
	obj := map[string]any{"spec": map[string]any{"kopia": map[string]any{"moverVolumes": []any{
		map[string]any{"mountPath": "repository", "volumeSource": map[string]any{"nfs": map[string]any{"server": "s", "path": "/p"}}},
		map[string]any{"mountPath": "claim", "volumeSource": map[string]any{"persistentVolumeClaim": map[string]any{"claimName": "c"}}},
	}}}}
	assert.Equal(t, []kopiamover.MoverVolume{{MountPath: "repository"}, {MountPath: "claim", PVC: true}}, kopiamover.MoverVolumesOf(obj))
	assert.Empty(t, kopiamover.MoverVolumesOf(map[string]any{}))
}
