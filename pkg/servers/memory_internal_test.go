package servers

import (
	"os"
	"testing"
)

func TestParseMemory(t *testing.T) {
	m, err := parseMemory("Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\nThreads:\t3\n")
	if err != nil || m.RSS != 1<<20 || m.Peak != 2<<20 {
		t.Fatalf("got %+v, %v; want RSS 1 MiB, peak 2 MiB", m, err)
	}
	for _, bad := range []string{"", "VmRSS:\t1024 kB\n", "VmRSS:\tx kB\nVmHWM:\t1 kB\n", "VmRSS:\t1 MB\nVmHWM:\t1 kB\n"} {
		if _, err := parseMemory(bad); err == nil {
			t.Errorf("parseMemory(%q): no error", bad)
		}
	}
}

func TestProcessMemory(t *testing.T) {
	self, err := ProcessMemory(0)
	if err != nil {
		t.Fatal(err)
	}
	byPid, err := ProcessMemory(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if self.RSS <= 0 || self.Peak < self.RSS || byPid.RSS <= 0 {
		t.Fatalf("self %+v, by pid %+v: want positive RSS at or below the peak", self, byPid)
	}
	if _, err := ProcessMemory(-1); err == nil {
		t.Error("no error for a process that does not exist")
	}
}
