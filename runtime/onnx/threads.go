package onnx

import (
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// DefaultIntraOpThreads is the CPU quota of this process's cgroup (cgroup
// v2 cpu.max, else v1 cfs quota), rounded up; without a quota, the CPUs the
// process may run on. A container limited to 2 CPUs on a 64-core host must
// not start 64 spinning onnxruntime threads.
func DefaultIntraOpThreads() int {
	if n, ok := cgroupCPUQuota("/sys/fs/cgroup"); ok {
		return n
	}
	return runtime.NumCPU()
}

// cgroupCPUQuota reads the quota below root (a cgroup mount).
func cgroupCPUQuota(root string) (int, bool) {
	if b, err := os.ReadFile(filepath.Join(root, "cpu.max")); err == nil {
		f := strings.Fields(string(b))
		if len(f) == 2 && f[0] != "max" {
			return quotaCPUs(f[0], f[1])
		}
		return 0, false
	}
	q, err1 := os.ReadFile(filepath.Join(root, "cpu", "cpu.cfs_quota_us"))
	p, err2 := os.ReadFile(filepath.Join(root, "cpu", "cpu.cfs_period_us"))
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return quotaCPUs(strings.TrimSpace(string(q)), strings.TrimSpace(string(p)))
}

func quotaCPUs(quota, period string) (int, bool) {
	q, err1 := strconv.ParseFloat(quota, 64)
	p, err2 := strconv.ParseFloat(period, 64)
	if err1 != nil || err2 != nil || q <= 0 || p <= 0 {
		return 0, false
	}
	return max(1, int(math.Ceil(q/p))), true
}
