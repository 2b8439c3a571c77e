package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times; 100 on every
// Linux architecture Go supports.
const clockTicks = 100

// procCPU meters another process (user + system time of all its threads).
func procCPU(pid int) cpuMeter {
	return func() (time.Duration, error) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0, fmt.Errorf("read CPU time of process %d: %w", pid, err)
		}
		// The command name (field 2) may hold spaces; fields after its
		// closing parenthesis are fixed.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			return 0, fmt.Errorf("process %d: malformed stat", pid)
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 13 {
			return 0, fmt.Errorf("process %d: short stat", pid)
		}
		// utime and stime are fields 14 and 15; f[0] is field 3.
		utime, err1 := strconv.ParseInt(f[11], 10, 64)
		stime, err2 := strconv.ParseInt(f[12], 10, 64)
		if err1 != nil || err2 != nil {
			return 0, fmt.Errorf("process %d: malformed CPU times", pid)
		}
		return time.Duration(utime+stime) * time.Second / clockTicks, nil
	}
}

// selfCPU meters this process, for the in-process rows.
func selfCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}
