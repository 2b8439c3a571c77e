//go:build !linux

package pipeline

import "syscall"

func childAttrs() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// signalGroup signals the child's whole process group (its pid, as leader).
func signalGroup(pid int, sig syscall.Signal) { _ = syscall.Kill(-pid, sig) }
