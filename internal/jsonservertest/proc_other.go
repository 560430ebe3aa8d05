//go:build !unix

package jsonservertest

import "os/exec"

// setProcessGroup does nothing where there are no process groups.
func setProcessGroup(cmd *exec.Cmd) {}

// terminateGroup kills the server: without signals there is no polite way.
func terminateGroup(cmd *exec.Cmd) { _ = cmd.Process.Kill() }

// killGroup kills the server.
func killGroup(cmd *exec.Cmd) { _ = cmd.Process.Kill() }
