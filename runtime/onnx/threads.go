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
	n := runtime.NumCPU()
	self, _ := os.ReadFile("/proc/self/cgroup")
	if q, ok := cgroupCPUQuota("/sys/fs/cgroup", string(self)); ok && q < n {
		return q
	}
	return n
}

// cgroupCPUQuota reads the tightest quota on the way from this process's
// cgroup (from /proc/self/cgroup; inside a container with its own cgroup
// namespace that is the mount's root) up to root, a cgroup mount.
func cgroupCPUQuota(root, procSelfCgroup string) (int, bool) {
	best, found := 0, false
	for _, dir := range cgroupDirs(root, procSelfCgroup) {
		b, err := os.ReadFile(filepath.Join(dir, "cpu.max"))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) != 2 || f[0] == "max" {
			continue
		}
		if n, ok := quotaCPUs(f[0], f[1]); ok && (!found || n < best) {
			best, found = n, true
		}
	}
	if found {
		return best, true
	}
	q, err1 := os.ReadFile(filepath.Join(root, "cpu", "cpu.cfs_quota_us"))
	p, err2 := os.ReadFile(filepath.Join(root, "cpu", "cpu.cfs_period_us"))
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return quotaCPUs(strings.TrimSpace(string(q)), strings.TrimSpace(string(p)))
}

// cgroupDirs lists the cgroup v2 directories from the process's own up
// to root.
func cgroupDirs(root, procSelfCgroup string) []string {
	dirs := []string{root}
	for _, line := range strings.Split(procSelfCgroup, "\n") {
		path, ok := strings.CutPrefix(line, "0::")
		if !ok {
			continue
		}
		path = filepath.Clean("/" + path)
		for path != "/" && path != "." {
			dirs = append(dirs, filepath.Join(root, path))
			path = filepath.Dir(path)
		}
	}
	return dirs
}

func quotaCPUs(quota, period string) (int, bool) {
	q, err1 := strconv.ParseFloat(quota, 64)
	p, err2 := strconv.ParseFloat(period, 64)
	if err1 != nil || err2 != nil || q <= 0 || p <= 0 {
		return 0, false
	}
	return max(1, int(math.Ceil(q/p))), true
}
