package servers

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Memory is a process's resident memory, from /proc/<pid>/status.
type Memory struct {
	RSS  int64 // VmRSS: resident set now, in bytes
	Peak int64 // VmHWM: highest resident set so far, in bytes
}

// MiB returns b in mebibytes, for reports.
func MiB(b int64) float64 { return float64(b) / (1 << 20) }

// ProcessMemory reads the resident memory of process pid; pid 0 means the
// calling process. Benchmarks and load tests report it.
func ProcessMemory(pid int) (Memory, error) {
	path := "/proc/self/status"
	if pid != 0 {
		path = "/proc/" + strconv.Itoa(pid) + "/status"
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Memory{}, fmt.Errorf("read memory of process %d: %w", pid, err)
	}
	return parseMemory(string(data))
}

func parseMemory(status string) (Memory, error) {
	var m Memory
	found := 0
	for _, line := range strings.Split(status, "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return Memory{}, fmt.Errorf("parse %s: unexpected %q", name, rest)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return Memory{}, fmt.Errorf("parse %s: %w", name, err)
		}
		if name == "VmRSS" {
			m.RSS = kb << 10
		} else {
			m.Peak = kb << 10
		}
		found++
	}
	if found != 2 {
		return Memory{}, fmt.Errorf("no VmRSS and VmHWM in process status")
	}
	return m, nil
}
