package jobrunner

import (
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// hostDirs are the host's directories bound read-only into every root: the programs the image
// would hold (bash, coreutils, grep, awk...) and their libraries, and /etc (resolver, CA
// certificates). The top-level symbolic links of a merged /usr (bin -> usr/bin) are copied.
var hostDirs = []string{"/usr/bin", "/usr/sbin", "/usr/lib", "/usr/lib64", "/usr/libexec", "/usr/share", "/etc"} //nolint:gochecknoglobals // a constant list

// rootScript is the shell script, run as root in a private mount namespace, that builds the
// container's root at root and then runs argv there as id with the environment it was given.
// Every path is quoted; the script stops at the first failing step.
func rootScript(root string, files map[string]string, mounts []mount, readOnlyRoot bool, id ids, workDir string, argv []string) string {
	var b strings.Builder

	line := func(args ...string) {
		q := make([]string, len(args))
		for i, a := range args {
			q[i] = quote(a)
		}

		b.WriteString(strings.Join(q, " ") + "\n")
	}
	bind := func(host, target string, readOnly bool) {
		line("/usr/bin/mount", "--bind", host, target)

		if readOnly {
			line("/usr/bin/mount", "-o", "remount,bind,ro", target)
		}
	}
	mountPoint := func(host, target string) {
		if st, err := os.Stat(host); err == nil && !st.IsDir() {
			line("/usr/bin/mkdir", "-p", filepath.Dir(target))
			line("/usr/bin/touch", target)

			return
		}

		line("/usr/bin/mkdir", "-p", target)
	}

	b.WriteString("set -e\n")
	line("/usr/bin/mkdir", "-p", root)
	line("/usr/bin/mount", "--bind", root, root)

	for _, top := range []string{"/bin", "/sbin", "/lib", "/lib64"} {
		if dst, err := os.Readlink(top); err == nil {
			line("/usr/bin/ln", "-sfn", dst, root+top)
		}
	}

	for _, d := range hostDirs {
		if _, err := os.Stat(d); err != nil {
			continue
		}

		line("/usr/bin/mkdir", "-p", root+d)
		bind(d, root+d, true)
	}

	for _, special := range []string{"/dev", "/proc"} {
		line("/usr/bin/mkdir", "-p", root+special)
		line("/usr/bin/mount", "--rbind", special, root+special)
	}

	targets := make([]string, 0, len(files))
	for t := range files {
		targets = append(targets, t)
	}

	slices.SortFunc(targets, func(a, b string) int { return depth(a) - depth(b) })

	for _, t := range targets {
		mountPoint(files[t], root+path.Clean(t))
		bind(files[t], root+path.Clean(t), true)
	}

	for _, m := range mounts {
		mountPoint(m.host, root+m.target)
		bind(m.host, root+m.target, m.readOnly)
	}

	if readOnlyRoot {
		line("/usr/bin/mount", "-o", "remount,bind,ro", root)
	}

	if workDir == "" {
		workDir = "/"
	}

	cmd := make([]string, 0, 10+len(argv))
	cmd = append(cmd, "exec", "/usr/sbin/chroot", "--userspec="+strconv.FormatInt(id.uid, 10)+":"+strconv.FormatInt(id.gid, 10),
		"--groups="+id.groupList(), root, "/usr/bin/env", "-u", "PWD", "--chdir="+workDir, "--")
	line(append(cmd, argv...)...)

	return b.String()
}

// quote makes s one shell word.
func quote(s string) string {
	plain := func(r rune) bool {
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/-_.,:=+@", r)
	}

	if s != "" && strings.IndexFunc(s, func(r rune) bool { return !plain(r) }) < 0 {
		return s
	}

	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
