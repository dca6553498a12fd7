package repo_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backup-oracle/backup-oracle/repo"
)

func users(host string, names ...string) []repo.HostUser {
	out := make([]repo.HostUser, 0, len(names))
	for _, n := range names {
		out = append(out, repo.HostUser{Host: host, User: n})
	}

	return out
}

func templates(s repo.Schemes) []string {
	out := []string{}
	for _, l := range s.Learned {
		out = append(out, fmt.Sprintf("%s:%d", l.Template(), l.Usernames))
	}

	return out
}

// TestLearnNamingSchemes: which affixes a repository's usernames show as a scheme. Expected
// templates are hand-written.
func TestLearnNamingSchemes(t *testing.T) {
	byPVC := repo.KopiaIdentity{SourceName: "{pvc}", Path: "/data"}
	many := func(host, suffix string, n int) []repo.HostUser {
		var out []repo.HostUser
		for i := range n {
			out = append(out, repo.HostUser{Host: host, User: fmt.Sprintf("app%02d%s", i, suffix)})
		}

		return out
	}

	cases := []struct {
		name  string
		users []repo.HostUser
		id    repo.KopiaIdentity
		want  []string
	}{
		{"every username ends in -volsync", users("media", "data-volsync", "jellyfin-config-volsync", "sonarr-volsync", "radarr-volsync"), byPVC,
			[]string{"{pvc}-volsync:4"}},
		{"a word of PVC names, a minority", append(users("media", "jellyfin-config", "sonarr", "radarr", "lidarr", "bazarr", "prowlarr", "readarr", "overseerr"),
			users("home", "hass", "zigbee", "mqtt", "node-red")...), byPVC, []string{}},
		{"one username is no scheme", users("media", "data-volsync", "sonarr", "radarr"), byPVC, []string{}},
		{"two of three is a quarter of the repository", users("media", "data-volsync", "sonarr-volsync", "radarr"), byPVC, []string{"{pvc}-volsync:2"}},
		{"a quarter exactly, spread over namespaces", append(append(users("a", "x-volsync", "p", "q", "r"), users("b", "y-volsync", "s")...), users("c", "t", "u")...),
			byPVC, []string{"{pvc}-volsync:2"}},
		{"less than a quarter", append(append(users("a", "x-volsync", "p", "q", "r"), users("b", "y-volsync", "s")...), users("c", "t", "u", "v")...),
			byPVC, []string{}},
		{"the settings' own word is never another scheme", users("web", "a-backup", "b-backup", "c-backup"), repo.DefaultKopiaIdentity(), []string{}},
		{"nor the outer word of a longer own suffix", users("web", "a-volsync-src", "b-volsync-src", "c-volsync-src"),
			repo.KopiaIdentity{SourceName: "{pvc}-volsync-src", Path: "/data"}, []string{}},
		{"a prefix scheme", users("web", "snap-a", "snap-b", "snap-c"), byPVC, []string{"snap-{pvc}:3"}},
		{"a minority scheme that rules its namespaces", append(many("legacy", "-bk", 4), many("other", "", 30)...), byPVC, []string{"{pvc}-bk:4"}},
		{"underscores separate words too", users("web", "a_bk", "b_bk"), byPVC, []string{"{pvc}_bk:2"}},
		{"a trailing separator is not a word", users("web", "a-", "b-", "c-"), byPVC, []string{}},
		{"separators at the ends are no words: the prefix is still one", users("web", "snap-a-", "snap-b-", "snap-c-"), byPVC, []string{"snap-{pvc}:3"}},
		{"separators at the ends are no words: the suffix is still one", users("web", "_a-snap", "_b-snap", "-c-snap"), byPVC, []string{"{pvc}-snap:3"}},
		{"a StatefulSet ordinal, even 9, is a name", users("web", "a-9", "b-9", "c-9"), byPVC, []string{}},
		{"most carried first, then by template", users("web", "a-volsync", "b-volsync", "c-volsync", "snap-a", "snap-b"), byPVC,
			[]string{"{pvc}-volsync:3", "snap-{pvc}:2"}},
		{"three carriers rule a namespace of three", append(many("legacy", "-bk", 3), many("other", "", 30)...), byPVC, []string{"{pvc}-bk:3"}},
		{"two thirds of a namespace exactly", append(append(many("legacy", "-bk", 4), users("legacy", "x", "y")...), many("other", "", 30)...), byPVC,
			[]string{"{pvc}-bk:4"}},
		{"less than two thirds of a namespace, and of the repository", append(append(many("legacy", "-bk", 3), many("legacy", "", 7)...), many("other", "", 30)...), byPVC,
			[]string{}},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := repo.LearnNamingSchemes(tc.users, nil, tc.id, nil)
			assert.Equal(t, tc.want, templates(got))
		})
	}
}

func TestPathParents(t *testing.T) {
	s := repo.LearnNamingSchemes(nil, []string{"/data", "/data", "/backups/a", "/backups/b", "/backups/c", "/var/lib/postgresql/data", "/config"},
		repo.DefaultKopiaIdentity(), nil)

	cases := []struct {
		path string
		pvc  string
		want bool
	}{
		{"/pvc/jellyfin", "jellyfin", true}, // kopiur, known
		{"/backups/a", "a", true},           // learned: three PVCs under one directory
		{"/data", "data", false},            // the movers' default path is a mount point, not a name
		{"/config", "config", false},        // a top-level directory neither
		{"/var/lib/postgresql/data", "data", false},
		{"/pvc/jellyfin", "sonarr", false},
	}

	for _, tc := range cases {
		assert.Equal(t, tc.want, s.NamesPVC(tc.path, repo.PVC{Namespace: "ns", Name: tc.pvc}), "%s for %s", tc.path, tc.pvc)
	}
}

// TestSchemeUsernames: the usernames a PVC's name takes under the schemes, as the mover derives
// them (sanitised, cut at 50: hand-written).
func TestSchemeUsernames(t *testing.T) {
	s := repo.LearnNamingSchemes(users("media", "a-volsync", "b-volsync", "snap-a", "snap-b"), nil, repo.KopiaIdentity{SourceName: "{pvc}", Path: "/data"}, nil)
	long := strings.Repeat("l", 48) + ".x-y"
	got := s.Usernames(repo.PVC{Namespace: "media", Name: "my.app"}, "myapp")
	longGot := s.Usernames(repo.PVC{Namespace: "media", Name: long}, "")

	for _, c := range []struct {
		user      string
		overrides bool
	}{
		{"myapp", false}, {"myapp-backup", false}, {"myapp-dst", false}, {"myapp-volsync", true}, {"snap-myapp", true},
		{"snap-myapp-volsync", true}, {"snap-myapp-dst", true},
	} {
		m, ok := got[c.user]
		require.True(t, ok, c.user)
		assert.Equal(t, c.overrides, m.Overrides, c.user)
	}

	assert.NotContains(t, got, "my.app-volsync", "dots are dropped as the mover drops them")
	assert.Contains(t, longGot, strings.Repeat("l", 48)+"x-", "cut at 50 characters, after sanitising: a cut may end in a dash")
	assert.Contains(t, longGot, "snap-"+strings.Repeat("l", 45))
	assert.Contains(t, got["myapp-volsync"].Describe(), "KOPIA_SOURCE_NAME_TEMPLATE={pvc}-volsync")
	assert.Contains(t, got["myapp-volsync"].Describe(), `"-volsync" is carried by 2 usernames of the repository`)
	assert.Contains(t, got["myapp-dst"].Describe(), "(a known naming scheme;", "a scheme on the known list only")
	assert.NotContains(t, longGot, "volsync", "no settings' username: no empty stem")
	assert.NotContains(t, longGot, "snap")

	// A settings' username other than the sanitised name is a second stem.
	custom := s.Usernames(repo.PVC{Namespace: "media", Name: "db"}, "db-custom")
	require.Contains(t, custom, "db-custom-volsync")
	assert.True(t, custom["db-custom-volsync"].OfSettings)
	assert.False(t, custom["db-volsync"].OfSettings)
}

func TestParseSchemes(t *testing.T) {
	got, err := repo.ParseSchemes(" {pvc}-volsync, snap-{pvc},{pvc} ")
	require.NoError(t, err)

	tmpl := []string{}
	for _, s := range got {
		assert.Equal(t, repo.SchemeDeclared, s.Origin)
		tmpl = append(tmpl, s.Template())
	}

	assert.Equal(t, []string{"{pvc}-volsync", "snap-{pvc}", "{pvc}"}, tmpl)

	for in, msg := range map[string]string{
		"volsync":           "want one {pvc}",
		"{pvc}-{pvc}":       "want one {pvc}",
		"a-{pvc}-b":         "not both",
		"{pvc}.volsync":     "only letters, digits",
		"{namespace}-{pvc}": "only letters, digits",
	} {
		_, err := repo.ParseSchemes(in)
		require.ErrorIs(t, err, repo.ErrInvalidConfig, in)
		assert.Contains(t, err.Error(), msg, in)
		assert.Contains(t, err.Error(), "KOPIA_OTHER_SCHEMES", in)
	}
}

func TestLayoutFitWarning(t *testing.T) {
	assert.Empty(t, repo.LayoutFit{Considered: 4, Expected: 2}.Warning(), "half is not a minority")
	assert.Empty(t, repo.LayoutFit{}.Warning())
	assert.NotEmpty(t, repo.LayoutFit{Considered: 3, Expected: 1}.Warning(), "less than half is")

	w0 := repo.LayoutFit{Considered: 3}.Warning()
	assert.Contains(t, w0, "fit 0 of the 3 sources", "no other scheme named")
	assert.NotContains(t, w0, "KOPIA_SOURCE_NAME_TEMPLATE")

	w := repo.LayoutFit{Considered: 5, Expected: 1, Others: []repo.SchemeCount{{Scheme: "{pvc}-volsync", Sources: 4}}}.Warning()
	assert.Contains(t, w, "fit 1 of the 5 sources")
	assert.Contains(t, w, "{pvc}-volsync (4)")
	assert.Contains(t, w, "set KOPIA_SOURCE_NAME_TEMPLATE={pvc}-volsync")
	assert.Contains(t, w, "KOPIA_OTHER_SCHEMES")

	w = repo.LayoutFit{Considered: 3, Expected: 0, Others: []repo.SchemeCount{{Scheme: "path /pvc/{pvc}", Sources: 3}}}.Warning()
	assert.NotContains(t, w, "KOPIA_SOURCE_NAME_TEMPLATE", "a path scheme is not a source-name template")
}

func TestOwnAffixes(t *testing.T) {
	for tmpl, want := range map[string][]string{
		"{pvc}-backup":      {"{pvc}-backup"},
		"{pvc}":             {},
		"bk-{pvc}.x":        {"bk-{pvc}", "{pvc}x"},
		"{namespace}-{pvc}": {},
	} {
		got := []string{}
		for _, a := range (repo.KopiaIdentity{SourceName: tmpl, Path: "/data"}).OwnAffixes() {
			got = append(got, a.Template())
		}

		slices.Sort(got)
		slices.Sort(want)
		assert.Equal(t, want, got, tmpl)
	}
}

// TestNameWordsAreNoScheme: the words PVC names share are not learned as layouts.
func TestNameWordsAreNoScheme(t *testing.T) {
	byPVC := repo.KopiaIdentity{SourceName: "{pvc}", Path: "/data"}

	for name, u := range map[string][]repo.HostUser{
		"kinds of volume":        users("media", "jellyfin-config", "sonarr-config", "radarr-config", "lidarr-data", "bazarr-data", "plex-data"),
		"StatefulSet ordinals":   users("db", "data-postgres-0", "data-postgres-1", "data-mysql-0"),
		"the app's namespace":    users("jellyfin", "jellyfin-server", "jellyfin-transcode", "jellyfin-metadata"),
		"the app's namespace, _": users("home_lab", "home-assistant", "home-zigbee", "home-mqtt"),
	} {
		assert.Empty(t, templates(repo.LearnNamingSchemes(u, nil, byPVC, nil)), name)
	}

	assert.Equal(t, []string{"{pvc}-volsync:3"}, templates(repo.LearnNamingSchemes(users("jellyfin", "jellyfin-config-volsync", "jellyfin-cache-volsync", "jellyfin-volsync"), nil, byPVC, nil)),
		"the app's namespace does not hide a suffix scheme")
}
