package restic

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestVariants: the other levels of the bucket a PVC's repository is looked for at, per
// template (prefix expanded), written by hand.
func TestVariants(t *testing.T) {
	cases := []struct {
		template string
		want     map[string]string // variant template → rule
	}{
		{"volsync/{namespace}/{pvc}", map[string]string{"volsync/{pvc}": ruleNoNamespace, "volsync/{namespace}-{pvc}": ruleJoined,
			"volsync/{any}/{namespace}/{pvc}": ruleDeeper}},
		{"{namespace}/{pvc}", map[string]string{"{pvc}": ruleNoNamespace, "{namespace}-{pvc}": ruleJoined, "{any}/{namespace}/{pvc}": ruleDeeper}},
		{"b/{namespace}/{pvc}/restic", map[string]string{"b/{pvc}/restic": ruleNoNamespace, "b/{namespace}-{pvc}/restic": ruleJoined,
			"b/{any}/{namespace}/{pvc}/restic": ruleDeeper}},
		{"volsync/{namespace}-{pvc}", map[string]string{"volsync/{pvc}": ruleNoNamespace, "volsync/{namespace}/{pvc}": ruleSplit,
			"volsync/{any}/{namespace}-{pvc}": ruleDeeper}},
		{"volsync/{pvc}/{namespace}", map[string]string{"volsync/{any}/{pvc}/{namespace}": ruleDeeper}},     // only one level deeper
		{"volsync/{namespace}/x/{pvc}", map[string]string{"volsync/{any}/{namespace}/x/{pvc}": ruleDeeper}}, // not adjacent: only deeper
	}

	for _, tc := range cases {
		got := map[string]string{}
		for _, v := range variants(tc.template) {
			got[v.layout.template] = v.rule
		}

		assert.Equal(t, tc.want, got, tc.template)
	}
}
