package test

import (
	"strings"
	"testing"
)

// TestResticBaseIsTheOraclesLocation: the restic movers' RESTIC_REPOSITORY and the oracle's S3
// settings come from one place. Derived from backend.s3 when resticRepositoryBase is empty; a
// stated base may name another host (the movers may reach S3 by another name) but must have the
// oracle's bucket and prefix as its path (the refusals are chart/testdata/refused/restic-base-*).
// The expected prefixes are written out, both policy sets.
func TestResticBaseIsTheOraclesLocation(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string // the RESTIC_REPOSITORY before <namespace>/<pvc>
	}{
		{"derived", nil, "s3:https://s3.example.internal/volsync/"},
		{"derived with a prefix", []string{"--set", "backend.s3.prefix=/clusterA/"}, "s3:https://s3.example.internal/volsync/clusterA/"},
		{"derived, host:port without TLS", []string{"--set", "backend.s3.endpoint=minio.storage:9000", "--set", "backend.s3.secure=false"},
			"s3:http://minio.storage:9000/volsync/"},
		{"stated, another host, same path", []string{"--set", "policies.resticRepositoryBase=https://s3.internal.lan/volsync/"},
			"s3:https://s3.internal.lan/volsync/"},
		{"stated without a scheme, with the prefix", []string{"--set", "backend.s3.prefix=clusterA", "--set",
			"policies.resticRepositoryBase=s3.amazonaws.com/volsync/clusterA"}, "s3:s3.amazonaws.com/volsync/clusterA/"},
	}

	for _, engine := range []string{"clusterpolicy", "cel"} {
		for _, c := range cases {
			t.Run(engine+"/"+c.name, func(t *testing.T) {
				out := mustRender(t, append([]string{"-f", "../testdata/values/restic.yaml", "--set", "policies.engine=" + engine}, c.args...)...)

				n := strings.Count(out, c.want)
				if n != 1 {
					t.Errorf("want exactly one RESTIC_REPOSITORY starting %q, found %d:\n%s", c.want, n, grepLines(out, "RESTIC_REPOSITORY"))
				}
			})
		}
	}
}

func grepLines(s, substr string) string {
	var out []string

	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}

	return strings.Join(out, "\n")
}
