package onnx

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFindLibrary(t *testing.T) {
	dir := t.TempDir()
	lib := filepath.Join(dir, "custom.so")
	require.NoError(t, os.WriteFile(lib, []byte("x"), 0o600))
	binDir := t.TempDir()
	exe := filepath.Join(binDir, "veil-runtime")
	require.NoError(t, os.WriteFile(exe, []byte("x"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(binDir, LibraryName), []byte("x"), 0o600))
	noExe := func() (string, error) { return "", errors.New("no executable") }
	besideExe := func() (string, error) { return exe, nil }

	tests := []struct {
		name, explicit, env string
		exe                 func() (string, error)
		want, err           string
	}{
		{"flag wins", lib, "/nope", besideExe, lib, ""},
		{"env", "", lib, besideExe, lib, ""},
		{"beside executable", "", "", besideExe, filepath.Join(binDir, LibraryName), ""},
		{"missing flag path", "/nope/lib.so", "", besideExe, "", "--ort_library"},
		{"missing env path", "", "/nope/lib.so", besideExe, "", LibraryEnv},
		{"directory", dir, "", besideExe, "", "is a directory"},
		{"nothing", "", "", noExe, "", "make ort"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := findLibrary(tc.explicit, tc.env, tc.exe)
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestCgroupCPUQuota(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		self  string
		want  int
		ok    bool
	}{
		{"v2 nested cgroup", map[string]string{"kubepods/pod1/cpu.max": "300000 100000\n", "kubepods/cpu.max": "max 100000\n"}, "0::/kubepods/pod1\n", 3, true},
		{"v2 tightest ancestor", map[string]string{"a/b/cpu.max": "800000 100000\n", "a/cpu.max": "200000 100000\n"}, "0::/a/b\n", 2, true},
		{"v2 two cpus", map[string]string{"cpu.max": "200000 100000\n"}, "0::/\n", 2, true},
		{"v2 fraction rounds up", map[string]string{"cpu.max": "150000 100000\n"}, "", 2, true},
		{"v2 small", map[string]string{"cpu.max": "10000 100000\n"}, "", 1, true},
		{"v2 unlimited", map[string]string{"cpu.max": "max 100000\n"}, "", 0, false},
		{"v1 quota", map[string]string{"cpu/cpu.cfs_quota_us": "400000\n", "cpu/cpu.cfs_period_us": "100000\n"}, "", 4, true},
		{"v1 unlimited", map[string]string{"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, "", 0, false},
		{"none", nil, "", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for name, content := range tc.files {
				require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(root, name)), 0o700))
				require.NoError(t, os.WriteFile(filepath.Join(root, name), []byte(content), 0o600))
			}
			got, ok := cgroupCPUQuota(root, tc.self)
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.want, got)
		})
	}
	assert.GreaterOrEqual(t, DefaultIntraOpThreads(), 1)
}
