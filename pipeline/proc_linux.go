package pipeline

import "syscall"

// childAttrs puts a child in its own process group and has the kernel kill
// it if veil itself dies without cleaning up (kill -9), so no child outlives
// the run.
func childAttrs() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func killGroup(pid int) { _ = syscall.Kill(-pid, syscall.SIGKILL) }
