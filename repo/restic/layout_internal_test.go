package restic

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/backup-oracle/backup-oracle/repo"
)

func TestLayoutPVCOf(t *testing.T) {
	cases := []struct {
		template, prefix, dir string
		want                  repo.PVC
	}{
		{"{prefix}/{namespace}/{pvc}", "volsync", "volsync/web/my.app.data/", repo.PVC{Namespace: "web", Name: "my.app.data"}},
		{"{prefix}/{namespace}/{pvc}", "", "web/app/", repo.PVC{Namespace: "web", Name: "app"}},
		{"{prefix}/{namespace}-{pvc}", "r", "r/web-my-app/", repo.PVC{}},                                 // web/my-app or web-my/app: ambiguous
		{"{prefix}/{namespace}-{pvc}", "r", "r/web-my.app/", repo.PVC{Namespace: "web", Name: "my.app"}}, // one dash: one split
		{"{prefix}/{namespace}_{pvc}", "r", "r/web-my_app/", repo.PVC{Namespace: "web-my", Name: "app"}},
		{"{prefix}/{pvc}.{namespace}", "r", "r/db.web/", repo.PVC{Namespace: "web", Name: "db"}},
		{"{prefix}/{namespace}/{pvc}", "volsync", "other/web/app/", repo.PVC{}},
		{"{prefix}/{namespace}/{pvc}", "volsync", "volsync/web/Bad_Name/", repo.PVC{}},
	}

	for _, tc := range cases {
		l := newLayout(Options{RepositoryTemplate: tc.template, Prefix: tc.prefix})
		got := l.pvcOf(tc.dir)
		assert.Equal(t, tc.want, got, "%s %s", tc.template, tc.dir)

		if got.Name != "" {
			assert.Equal(t, tc.dir, l.dir(got), "maps forward to the same directory")
		}
	}
}
