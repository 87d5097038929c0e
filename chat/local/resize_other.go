//go:build !unix

package local

// watchResize does nothing where there is no SIGWINCH: the size read at
// the start stays.
func watchResize(func(), <-chan struct{}) {}
