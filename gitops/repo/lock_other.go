//go:build !unix

package repo

// cacheLocks without flock: the process maintains its cache alone.
type cacheLocks struct{}

func openCacheLocks(string, bool) *cacheLocks { return nil }

func (l *cacheLocks) own() bool { return true }

func (l *cacheLocks) exclusive() (func(), bool) { return func() {}, true }

func (l *cacheLocks) release() {}
