package repo

import (
	"regexp"
	"strings"
)

// PVCOf inverts Source: it returns a PVC whose backups Source would store under src, or the
// zero PVC when there is none (a path other than the identity's, a name the templates cannot
// produce, a username cut at 50 characters, whose end is lost). When only the namespace maps
// back (the hostname is the namespace but the username or path is someone else's), the PVC has
// its Namespace alone.
//
// The mover drops dots from the username, so "my.app.data" and "myappdata" store under the same
// source: PVCOf returns the name without dots, and Source(PVCOf(src)) == src always holds for a
// returned full PVC (it is checked). Safe for concurrent use; it compiles the templates on every
// call, so callers inverting many sources should cache the results.
func (k KopiaIdentity) PVCOf(src KopiaSource) PVC {
	hostNS, name := k.namespaceFromHost(src.Host)
	ns := hostNS

	if src.Path == k.Path {
		uns, uname, ok := k.fromUsername(src.UserName, hostNS)
		if ok {
			ns, name = firstNonEmpty(ns, uns), firstNonEmpty(name, uname)
		}
	}

	cand := PVC{Namespace: ns, Name: name}
	if cand.Validate() == nil && k.Source(cand) == src {
		return cand
	}

	if IsDNS1123Label(hostNS) && len(hostNS) <= MaxNamespaceLen {
		return PVC{Namespace: hostNS}
	}

	return PVC{}
}

// namespaceFromHost returns the namespace (and the PVC name, when the hostname template holds
// {pvc}) the hostname was derived from.
func (k KopiaIdentity) namespaceFromHost(host string) (string, string) {
	if k.HostName == "" {
		// The mover's default: the namespace, sanitised; a valid namespace is its own sanitised form.
		return host, ""
	}

	vals, ok := matchTemplate(k.HostName, host, false)
	if !ok {
		return "", ""
	}

	return vals["{namespace}"], vals["{pvc}"]
}

// fromUsername returns the namespace and PVC name the username was derived from; a namespace
// already known from the hostname is taken as given.
func (k KopiaIdentity) fromUsername(user, namespace string) (string, string, bool) {
	tmpl, sanitised := k.UserName, false
	if tmpl == "" {
		tmpl, sanitised = k.SourceName, true
	}

	if namespace != "" {
		tmpl = strings.ReplaceAll(tmpl, "{namespace}", namespace)
	}

	vals, ok := matchTemplate(tmpl, user, sanitised)
	if !ok {
		return "", "", false
	}

	return vals["{namespace}"], vals["{pvc}"], true
}

var placeholder = regexp.MustCompile(`\{namespace\}|\{pvc\}`)

// matchTemplate matches s against tmpl and returns the value of each placeholder (equal values
// where one appears twice). sanitised: s went through KopiaUsername, which drops every character
// but [A-Za-z0-9_-] (so a PVC name loses its dots).
func matchTemplate(tmpl, s string, sanitised bool) (map[string]string, bool) {
	var re strings.Builder

	locs := placeholder.FindAllStringIndex(tmpl, -1)
	names := make([]string, 0, len(locs))

	keep := func(lit string) string {
		if !sanitised {
			return lit
		}

		return strings.Map(func(r rune) rune {
			if isAlnum(r) || r == '_' || r == '-' {
				return r
			}

			return -1
		}, lit)
	}

	re.WriteString("^")

	last := 0
	for _, loc := range locs {
		re.WriteString(regexp.QuoteMeta(keep(tmpl[last:loc[0]])))

		name := tmpl[loc[0]:loc[1]]
		names = append(names, name)

		switch {
		case name == "{namespace}":
			re.WriteString("([a-z0-9-]+)")
		case sanitised:
			re.WriteString("([a-z0-9-]+)")
		default:
			re.WriteString("([a-z0-9.-]+)")
		}

		last = loc[1]
	}

	re.WriteString(regexp.QuoteMeta(keep(tmpl[last:])) + "$")

	m := regexp.MustCompile(re.String()).FindStringSubmatch(s)
	if m == nil {
		return nil, false
	}

	vals := map[string]string{}

	for i, name := range names {
		if prev, ok := vals[name]; ok && prev != m[i+1] {
			return nil, false
		}

		vals[name] = m[i+1]
	}

	return vals, true
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}

	return b
}
