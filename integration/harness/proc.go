package harness

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// RSS returns a process's resident set size and its peak (VmRSS, VmHWM) in bytes.
func RSS(pid int) (rss, peak int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("read process status: %w", err)
	}

	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}

		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}

		n, _ := strconv.ParseInt(fields[0], 10, 64)

		switch k {
		case "VmRSS":
			rss = n * 1024
		case "VmHWM":
			peak = n * 1024
		}
	}

	return rss, peak, nil
}

// CPUTime returns the CPU time (user and system, every thread) the process has used so far,
// from /proc/<pid>/stat, in clock ticks of 1/100 s (the kernel's USER_HZ on Linux).
func CPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read process stat: %w", err)
	}

	// The command name (field 2) is in parentheses and may hold spaces: count from after it.
	_, rest, ok := strings.Cut(string(b), ") ")
	if !ok {
		return 0, fmt.Errorf("parse process stat %q", b)
	}

	fields := strings.Fields(rest) // fields[0] is field 3 (state); utime and stime are 14 and 15

	if len(fields) < 13 {
		return 0, fmt.Errorf("parse process stat %q", b)
	}

	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)

	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parse process stat %q", b)
	}

	const tick = 10 * time.Millisecond

	return time.Duration(utime+stime) * tick, nil
}
