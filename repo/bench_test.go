package repo_test

import (
	"testing"

	"github.com/backup-oracle/backup-oracle/repo"
)

func BenchmarkKopiaIdentitySource(b *testing.B) {
	id := repo.DefaultKopiaIdentity()
	pvc := repo.PVC{Namespace: "web", Name: "my.app.data-volume-claim"}

	for b.Loop() {
		_ = id.Source(pvc)
	}
}

func BenchmarkPVCValidate(b *testing.B) {
	pvc := repo.PVC{Namespace: "web", Name: "my.app.data-volume-claim"}

	for b.Loop() {
		if pvc.Validate() != nil {
			b.Fatal("valid")
		}
	}
}
