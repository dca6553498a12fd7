package repo

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Defaults of VolSync's Kopia mover and of the policies this project ships.
const (
	DefaultSourceNameTemplate = "{pvc}-backup"
	DefaultKopiaPath          = "/data"
	// MaxKopiaUsernameLen is where the Kopia mover cuts a derived username.
	MaxKopiaUsernameLen = 50
	// kopiaDefaultIdentity is the mover's fallback when sanitising leaves nothing.
	kopiaDefaultIdentity = "volsync-default"
)

// KopiaSource is a Kopia snapshot source, username@hostname:path.
type KopiaSource struct {
	UserName string
	Host     string
	Path     string
}

// String formats the source the way kopia prints it.
func (s KopiaSource) String() string { return s.UserName + "@" + s.Host + ":" + s.Path }

// KopiaIdentity derives the Kopia source a PVC's backups are stored under, exactly as VolSync's
// Kopia mover derives it from the ReplicationSource the policies generate for that PVC.
// Templates may use the placeholders {namespace} and {pvc}. The zero value is not usable:
// start from DefaultKopiaIdentity.
type KopiaIdentity struct {
	// SourceName is the ReplicationSource's name (the mover's default username before sanitising).
	SourceName string
	// UserName, when set, is the RS's spec.kopia.username: used verbatim, not sanitised.
	UserName string
	// HostName, when set, is the RS's spec.kopia.hostname: used verbatim, not sanitised.
	HostName string
	// Path is the snapshot path (spec.kopia.sourcePathOverride), "/data" by default.
	Path string
}

// DefaultKopiaIdentity is the identity of the shipped policies: RS "<pvc>-backup" in the PVC's
// namespace, no explicit username or hostname, path /data.
func DefaultKopiaIdentity() KopiaIdentity {
	return KopiaIdentity{SourceName: DefaultSourceNameTemplate, Path: DefaultKopiaPath}
}

// Validate reports every problem with the templates at once, each wrapping ErrInvalidConfig.
func (k KopiaIdentity) Validate() error {
	var errs []error

	if k.SourceName == "" && (k.UserName == "" || k.HostName == "") {
		errs = append(errs, fmt.Errorf("%w: kopia identity: a source name template is needed unless both username and hostname templates are set", ErrInvalidConfig))
	}

	for _, t := range []struct{ what, tmpl string }{
		{"source name", k.SourceName}, {"username", k.UserName}, {"hostname", k.HostName},
	} {
		if err := checkTemplate(t.tmpl); err != nil {
			errs = append(errs, fmt.Errorf("%w: kopia identity: %s template %q: %w", ErrInvalidConfig, t.what, t.tmpl, err))
		}
	}

	// Without {pvc}, every PVC of a namespace maps to one identity: each would restore the same
	// PVC's data (a Flux ${APP} substitution produces exactly that).
	switch {
	case k.UserName != "" && !strings.Contains(k.UserName, "{pvc}"):
		errs = append(errs, fmt.Errorf("%w: kopia identity: username template %q has no {pvc}: every PVC of a namespace would map to "+
			"one identity and restore the same data; use e.g. \"{pvc}\" (a template is expanded per PVC, not per app)", ErrInvalidConfig, k.UserName))
	case k.UserName == "" && k.SourceName != "" && !strings.Contains(k.SourceName, "{pvc}"):
		errs = append(errs, fmt.Errorf("%w: kopia identity: source name template %q has no {pvc}: every PVC of a namespace would map to "+
			"one identity and restore the same data; use e.g. \"{pvc}-backup\" or \"{pvc}\" (a template is expanded per PVC, not per app)", ErrInvalidConfig, k.SourceName))
	}

	if !strings.HasPrefix(k.Path, "/") {
		errs = append(errs, fmt.Errorf("%w: kopia identity: path %q must be absolute", ErrInvalidConfig, k.Path))
	}

	return errors.Join(errs...)
}

// Source returns the Kopia source pvc's backups are stored under. It is a pure function of its
// inputs and safe for concurrent use.
//
// A username derived from the ReplicationSource name is cut by the mover at 50 characters, so
// two PVCs whose RS names share their first 50 characters would share one identity (StatefulSet
// replicas "…-0" and "…-1" do): the mover would mix their snapshots. For those names the shipped
// policies give the RS and RD an explicit, collision-free spec.kopia.username (and hostname),
// KopiaCollisionFreeUsername, and Source returns that. Snapshots stored under the cut, possibly
// shared username (CutSource) are never restored automatically: they are a near miss.
func (k KopiaIdentity) Source(pvc PVC) KopiaSource {
	rsName := expand(k.SourceName, pvc)

	user := expand(k.UserName, pvc)
	if user == "" {
		user = KopiaUsername(rsName)
		if full := sanitizeUsername(rsName); len(full) > MaxKopiaUsernameLen {
			user = KopiaCollisionFreeUsername(pvc, full)
		}
	}

	host := expand(k.HostName, pvc)
	if host == "" {
		host = KopiaHostname(pvc.Namespace, rsName)
	}

	return KopiaSource{UserName: user, Host: host, Path: k.Path}
}

// CutSource returns the source the mover would derive for pvc by itself (no explicit username),
// and whether that username is cut at 50 characters, hence possibly shared with another PVC.
// When it is not cut, it is Source(pvc).
func (k KopiaIdentity) CutSource(pvc PVC) (KopiaSource, bool) {
	src := k.Source(pvc)
	if k.UserName != "" {
		return src, false
	}

	rsName := expand(k.SourceName, pvc)
	if len(sanitizeUsername(rsName)) <= MaxKopiaUsernameLen {
		return src, false
	}

	src.UserName = KopiaUsername(rsName)

	return src, true
}

// Lengths of a collision-free username: a stem, "-", hex digits of a hash; 41+1+8 = 50, the
// mover's limit, so the policies can set it as spec.kopia.username unchanged.
const (
	collisionFreeStemLen = 41
	collisionFreeHashLen = 8
)

// KopiaCollisionFreeUsername is the explicit username the shipped policies give the RS and RD of
// a PVC whose derived username would be cut: the first 41 characters of the sanitised RS name,
// "-", and the first 8 hex digits of sha256("<namespace>/<pvc>"). sanitizedRSName is the RS name
// after the mover's sanitising (KopiaUsername without the cut).
func KopiaCollisionFreeUsername(pvc PVC, sanitizedRSName string) string {
	sum := sha256.Sum256([]byte(pvc.Namespace + "/" + pvc.Name))
	stem := sanitizedRSName
	if len(stem) > collisionFreeStemLen {
		stem = stem[:collisionFreeStemLen]
	}

	return stem + "-" + hex.EncodeToString(sum[:])[:collisionFreeHashLen]
}

// KopiaUsername derives the username VolSync's Kopia mover uses for a ReplicationSource named
// rsName: keep [A-Za-z0-9_-], trim '-' and '_' at both ends, fall back to "volsync-default" when
// nothing is left, then cut to 50 characters.
func KopiaUsername(rsName string) string {
	s := sanitizeUsername(rsName)

	if len(s) > MaxKopiaUsernameLen {
		s = s[:MaxKopiaUsernameLen]
	}

	return s
}

// KopiaHostname derives the hostname VolSync's Kopia mover uses for a ReplicationSource in
// namespace: keep [A-Za-z0-9.-], turn '_' into '-', trim '-' and '.' at both ends; when nothing is
// left, the same applied to the object's name, then "volsync-default".
func KopiaHostname(namespace, objectName string) string {
	for _, candidate := range []string{namespace, objectName} {
		if s := sanitizeHostname(candidate); s != "" {
			return s
		}
	}

	return kopiaDefaultIdentity
}

// sanitizeUsername is the mover's username sanitising before the cut: keep [A-Za-z0-9_-], trim
// '-' and '_' at both ends, "volsync-default" when nothing is left.
func sanitizeUsername(rsName string) string {
	s := strings.Map(func(r rune) rune {
		if isAlnum(r) || r == '_' || r == '-' {
			return r
		}

		return -1
	}, rsName)

	s = strings.Trim(s, "-_")
	if s == "" {
		s = kopiaDefaultIdentity
	}

	return s
}

func sanitizeHostname(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case isAlnum(r) || r == '.' || r == '-':
			return r
		case r == '_':
			return '-'
		}

		return -1
	}, s)

	return strings.Trim(s, "-.")
}

func isAlnum(r rune) bool {
	return (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
}

func expand(tmpl string, pvc PVC) string {
	if tmpl == "" {
		return ""
	}

	return strings.ReplaceAll(strings.ReplaceAll(tmpl, "{namespace}", pvc.Namespace), "{pvc}", pvc.Name)
}

func checkTemplate(tmpl string) error {
	rest := strings.ReplaceAll(strings.ReplaceAll(tmpl, "{namespace}", ""), "{pvc}", "")
	if strings.ContainsAny(rest, "{}") {
		return errors.New("only the placeholders {namespace} and {pvc} are allowed")
	}

	return nil
}

// SourceMatcher inverts an identity: which PVC a stored source belongs to. Build it once with
// KopiaIdentity.Matcher and reuse it; it is safe for concurrent use.
type SourceMatcher struct {
	id   KopiaIdentity
	user *regexp.Regexp // groups: namespace (optional), pvc
	host *regexp.Regexp // group: namespace (optional)
}

// Matcher compiles the templates into a SourceMatcher.
func (k KopiaIdentity) Matcher() *SourceMatcher {
	userTmpl, clean := k.SourceName, sanitizePart
	if k.UserName != "" {
		userTmpl, clean = k.UserName, identityPart
	}

	host := "{namespace}" // the mover's default hostname: the (sanitised) namespace
	if k.HostName != "" {
		host = k.HostName
	}

	return &SourceMatcher{id: k, user: templateRegexp(userTmpl, clean), host: templateRegexp(host, identityPart)}
}

// templateRegexp matches what tmpl expands to: {namespace} a DNS-1123 label, {pvc} anything
// after clean removed what the mover removes from literal parts.
func templateRegexp(tmpl string, clean func(string) string) *regexp.Regexp {
	var b strings.Builder

	b.WriteString("^")

	for rest := tmpl; rest != ""; {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			b.WriteString(regexp.QuoteMeta(clean(rest)))
			break
		}

		b.WriteString(regexp.QuoteMeta(clean(rest[:i])))
		rest = rest[i:]

		switch {
		case strings.HasPrefix(rest, "{namespace}"):
			b.WriteString(`(?P<namespace>[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)`)
			rest = rest[len("{namespace}"):]
		case strings.HasPrefix(rest, "{pvc}"):
			b.WriteString(`(?P<pvc>.+)`)
			rest = rest[len("{pvc}"):]
		default:
			b.WriteString(regexp.QuoteMeta(clean(rest[:1])))
			rest = rest[1:]
		}
	}

	b.WriteString("$")

	return regexp.MustCompile(b.String())
}

// Owner returns a PVC whose identity is src. The PVC returned is one that maps to src; others
// may too (the mover drops dots: my.app and myapp share an identity). A collision-free username
// (the hashed form of a long name) cannot be inverted: ok is false.
func (m *SourceMatcher) Owner(src KopiaSource) (PVC, bool) {
	if src.Path != m.id.Path {
		return PVC{}, false
	}

	hm := m.host.FindStringSubmatch(src.Host)
	um := m.user.FindStringSubmatch(src.UserName)

	if hm == nil || um == nil {
		return PVC{}, false
	}

	pvc := PVC{Namespace: group(m.host, hm, "namespace"), Name: group(m.user, um, "pvc")}
	if ns := group(m.user, um, "namespace"); ns != "" {
		if pvc.Namespace != "" && pvc.Namespace != ns {
			return PVC{}, false
		}

		pvc.Namespace = ns
	}

	if pvc.Validate() != nil || m.id.Source(pvc) != src {
		return PVC{}, false
	}

	return pvc, true
}

func group(re *regexp.Regexp, match []string, name string) string {
	if i := re.SubexpIndex(name); i > 0 && i < len(match) {
		return match[i]
	}

	return ""
}

// Fits reports whether the templates could have produced src: Owner finds a PVC for it, or it
// has the collision-free form of a long name (a 41-character stem, "-", 8 lower-case hex
// digits) on the right path and host.
func (m *SourceMatcher) Fits(src KopiaSource) bool {
	if _, ok := m.Owner(src); ok {
		return true
	}

	u := src.UserName
	if m.id.UserName != "" || src.Path != m.id.Path || len(u) != MaxKopiaUsernameLen || u[collisionFreeStemLen] != '-' ||
		!m.host.MatchString(src.Host) {
		return false
	}

	digits := u[collisionFreeStemLen+1:]
	_, err := hex.DecodeString(digits)

	return err == nil && strings.ToLower(digits) == digits
}

// HostFits reports whether the settings give some namespace the hostname host.
func (m *SourceMatcher) HostFits(host string) bool { return m.host.MatchString(host) }

// sanitizePart keeps what the mover keeps of a derived username: [A-Za-z0-9_-].
func sanitizePart(s string) string {
	return strings.Map(func(r rune) rune {
		if isAlnum(r) || r == '_' || r == '-' {
			return r
		}

		return -1
	}, s)
}

// identityPart is an explicit template's literal part: used verbatim.
func identityPart(s string) string { return s }

// ExpandTemplate replaces {namespace} and {pvc} in tmpl with pvc's names: how the policies name a
// PVC's ReplicationSource and ReplicationDestination from the source-name template.
func ExpandTemplate(tmpl string, pvc PVC) string { return expand(tmpl, pvc) }
