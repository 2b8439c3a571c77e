package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// machine describes where the numbers were measured; without it a table of
// rows/s means nothing.
type machine struct {
	CPUModel   string
	NumCPU     int
	GOMAXPROCS int
	CgroupCPUs string // the container's CPU quota, "none" when unlimited
	GoVersion  string
	Kernel     string
	LoadBefore string // /proc/loadavg when the run started: other load skews everything
	LoadAfter  string
}

func describeMachine() machine {
	return machine{
		CPUModel:   cpuModel(),
		NumCPU:     runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		CgroupCPUs: cgroupCPUs(),
		GoVersion:  runtime.Version(),
		Kernel:     firstLine("/proc/sys/kernel/osrelease"),
		LoadBefore: loadAvg(),
	}
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if k, v, ok := strings.Cut(s.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// cgroupCPUs reads cgroup v2's cpu.max ("quota period" or "max period").
func cgroupCPUs() string {
	fields := strings.Fields(firstLine("/sys/fs/cgroup/cpu.max"))
	if len(fields) != 2 || fields[0] == "max" {
		return "none"
	}
	quota, err1 := strconv.ParseFloat(fields[0], 64)
	period, err2 := strconv.ParseFloat(fields[1], 64)
	if err1 != nil || err2 != nil || period == 0 {
		return "unknown"
	}
	return strconv.FormatFloat(quota/period, 'f', 2, 64)
}

func loadAvg() string {
	f := strings.Fields(firstLine("/proc/loadavg"))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func firstLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSpace(line)
}

func (m machine) String() string {
	return fmt.Sprintf("CPU %s, %d logical CPUs, GOMAXPROCS %d, cgroup CPU quota %s, %s, Linux %s, load average before %s, after %s",
		m.CPUModel, m.NumCPU, m.GOMAXPROCS, m.CgroupCPUs, m.GoVersion, m.Kernel, m.LoadBefore, m.LoadAfter)
}
