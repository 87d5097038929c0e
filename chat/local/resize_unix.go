//go:build unix

package local

import (
	"os"
	"os/signal"
	"syscall"
)

// watchResize calls resize when the terminal's window changes size, until
// stop is closed.
func watchResize(resize func(), stop <-chan struct{}) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGWINCH)
	go func() {
		defer signal.Stop(ch)
		for {
			select {
			case <-ch:
				resize()
			case <-stop:
				return
			}
		}
	}()
}
