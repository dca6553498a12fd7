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
		{"volsync/{namespace}/{pvc}", map[string]string{"volsync/{pvc}": ruleNoNamespace, "volsync/{namespace}-{pvc}": ruleJoined}},
		{"{namespace}/{pvc}", map[string]string{"{pvc}": ruleNoNamespace, "{namespace}-{pvc}": ruleJoined}},
		{"b/{namespace}/{pvc}/restic", map[string]string{"b/{pvc}/restic": ruleNoNamespace, "b/{namespace}-{pvc}/restic": ruleJoined}},
		{"volsync/{namespace}-{pvc}", map[string]string{"volsync/{pvc}": ruleNoNamespace, "volsync/{namespace}/{pvc}": ruleSplit}},
		{"volsync/{pvc}/{namespace}", map[string]string{}},   // no known variant of this order
		{"volsync/{namespace}/x/{pvc}", map[string]string{}}, // not adjacent
	}

	for _, tc := range cases {
		got := map[string]string{}
		for _, v := range variants(tc.template) {
			got[v.layout.template] = v.rule
		}

		assert.Equal(t, tc.want, got, tc.template)
	}
}
