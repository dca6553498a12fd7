package restic

import (
	"regexp"
	"strings"

	"github.com/backup-oracle/backup-oracle/repo"
)

// layout maps PVCs to repository directories and knows which directories to list to discover
// every repository. It is immutable and safe for concurrent use.
type layout struct {
	shared bool
	// template has {prefix} expanded and empty path segments removed.
	template string
	// segments of template; a segment holding a placeholder matches the regexp at that index.
	segments []string
	patterns []*regexp.Regexp
}

// nameChars matches what a namespace or PVC name can expand to (DNS-1123), kept loose on purpose:
// a directory it lets through only costs one extra list of its snapshots/.
const nameChars = `[a-z0-9][a-z0-9.-]*`

// anyChars matches the placeholder {any} of a near-miss variant (nearmiss.go): any directory name.
const anyChars = `[^/]+`

func newLayout(o Options) layout {
	return templateLayout(strings.ReplaceAll(o.RepositoryTemplate, "{prefix}", o.Prefix), o.Layout == LayoutShared)
}

// templateLayout is the layout of template t, {prefix} expanded.
func templateLayout(t string, shared bool) layout {
	segs := splitPath(t)

	l := layout{shared: shared, template: strings.Join(segs, "/"), segments: segs,
		patterns: make([]*regexp.Regexp, len(segs))}

	for i, s := range segs {
		if !strings.Contains(s, "{") {
			continue
		}

		re := regexp.QuoteMeta(s)
		re = strings.NewReplacer(`\{namespace\}`, nameChars, `\{pvc\}`, nameChars, `\{any\}`, anyChars).Replace(re)
		l.patterns[i] = regexp.MustCompile("^" + re + "$")
	}

	return l
}

func splitPath(p string) []string {
	var out []string

	for _, s := range strings.Split(p, "/") {
		if s != "" {
			out = append(out, s)
		}
	}

	return out
}

// dir returns the storage directory (ending with "/", or "" for the root) of pvc's repository.
func (l layout) dir(pvc repo.PVC) string {
	t := strings.NewReplacer("{namespace}", pvc.Namespace, "{pvc}", pvc.Name).Replace(l.template)
	if t == "" {
		return ""
	}

	return t + "/"
}

// matches reports whether the directory name child (without slash) fits segment i.
func (l layout) matches(i int, child string) bool {
	return l.patterns[i] == nil || l.patterns[i].MatchString(child)
}

// tag is the snapshot tag that names pvc in the shared layout.
func tag(pvc repo.PVC) string { return pvc.Namespace + "/" + pvc.Name }

// namespacePattern matches the directories (ending with "/") of every repository the template
// places in namespace.
func (l layout) namespacePattern(namespace string) *regexp.Regexp {
	re := regexp.QuoteMeta(l.template + "/")
	re = strings.NewReplacer(`\{namespace\}`, regexp.QuoteMeta(namespace), `\{pvc\}`, nameChars).Replace(re)

	return regexp.MustCompile("^" + re + "$")
}

// dirPattern matches the directories (ending with "/") the template places pvc's repository at:
// one, unless the template holds {any} (a near-miss variant), which matches any directory name.
func (l layout) dirPattern(pvc repo.PVC) *regexp.Regexp {
	re := regexp.QuoteMeta(l.template + "/")
	re = strings.NewReplacer(`\{namespace\}`, regexp.QuoteMeta(pvc.Namespace), `\{pvc\}`, regexp.QuoteMeta(pvc.Name), `\{any\}`, anyChars).Replace(re)

	return regexp.MustCompile("^" + re + "$")
}
