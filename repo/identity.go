package repo

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
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
