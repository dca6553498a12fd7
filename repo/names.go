package repo

import (
	"fmt"
	"strings"
)

// CheckNameTemplate validates a template naming one Kubernetes object per PVC (the policies'
// ReplicationDestination name, for one): only the placeholders {namespace} and {pvc}, and {pvc}
// present, or every PVC of a namespace would get the same object. setting names the setting in
// the error, which wraps ErrInvalidConfig.
func CheckNameTemplate(setting, tmpl string) error {
	if err := checkTemplate(tmpl); err != nil {
		return fmt.Errorf("%w: %s %q: %w", ErrInvalidConfig, setting, tmpl, err)
	}

	if !strings.Contains(tmpl, "{pvc}") {
		return fmt.Errorf("%w: %s %q has no {pvc}: every PVC of a namespace would get the same object; use e.g. \"{pvc}-dst\"",
			ErrInvalidConfig, setting, tmpl)
	}

	return nil
}
