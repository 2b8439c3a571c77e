package pipeline

import "syscall"

// childAttrs puts a child in its own process group and has the kernel kill
// it if veil itself dies without cleaning up (kill -9), so no child outlives
// the run. Pdeathsig fires when the forking OS thread exits; Go keeps its
// threads for the process's life unless a goroutine exits while locked to
// one, which nothing in veil does.
func childAttrs() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// signalGroup signals the child's whole process group (its pid, as leader).
func signalGroup(pid int, sig syscall.Signal) { _ = syscall.Kill(-pid, sig) }
