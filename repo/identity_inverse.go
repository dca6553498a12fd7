package repo

// PVCOf maps a stored source back to the PVC whose identity it is, as far as the templates
// allow: the full PVC when the templates invert (Source(PVCOf(src)) == src is checked), the
// namespace alone when only the hostname does (a collision-free or cut username, another path,
// another naming scheme), the zero PVC otherwise. The inventory (GET /backups) lists sources
// by it.
//
// The mover drops dots from the username, so "my.app.data" and "myappdata" store under the same
// source: PVCOf returns the name without dots. It compiles the templates on every call; callers
// inverting many sources use a Matcher once.
func (k KopiaIdentity) PVCOf(src KopiaSource) PVC { return k.Matcher().PVCOf(src) }

// PVCOf is KopiaIdentity.PVCOf with the compiled templates.
func (m *SourceMatcher) PVCOf(src KopiaSource) PVC {
	if pvc, ok := m.Owner(src); ok {
		return pvc
	}

	hm := m.host.FindStringSubmatch(src.Host)
	if hm == nil {
		return PVC{}
	}

	ns := src.Host
	if m.id.HostName != "" {
		ns = group(m.host, hm, "namespace")
	}

	if IsDNS1123Label(ns) && len(ns) <= MaxNamespaceLen {
		return PVC{Namespace: ns}
	}

	return PVC{}
}
