package harness

import (
	"fmt"
	"os"
	"strconv"
	"strings"
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
