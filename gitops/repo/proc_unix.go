//go:build unix

package repo

import (
	"os/exec"
	"syscall"
)

// ownProcessGroup makes a cancelled git child take its own children with
// it (git clone runs index-pack and the remote helper): none of them goes
// on writing into a clone that is being removed.
func ownProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
