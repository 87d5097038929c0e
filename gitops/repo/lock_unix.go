//go:build unix

package repo

import (
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// cacheLocks decide which process maintains a cache directory, and keep it
// from deleting anything while another process has the clone open: the
// maintaining process holds an exclusive lock on shipbot-maintainer.lock,
// every other process a shared lock on shipbot-readers.lock, which the
// maintainer locks exclusively (without waiting) for the moment it deletes.
// A nil *cacheLocks (no locking) owns and may delete.
type cacheLocks struct {
	mu     sync.Mutex
	dir    string
	owner  *os.File // held while this process maintains the cache
	reader *os.File // held while another process does
}

// openCacheLocks takes the maintainer's lock if maintain and no other
// process has it, else the readers' lock.
func openCacheLocks(dir string, maintain bool) *cacheLocks {
	l := &cacheLocks{dir: dir}
	// Both files exist from here on: later locking creates nothing.
	for _, name := range []string{"shipbot-maintainer.lock", "shipbot-readers.lock"} {
		if f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_RDONLY, 0o644); err == nil {
			f.Close()
		}
	}
	if maintain {
		l.own()
	} else {
		l.reader, _ = lockFile(filepath.Join(dir, "shipbot-readers.lock"), syscall.LOCK_SH)
	}
	return l
}

func lockFile(path string, how int) (*os.File, bool) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, false
	}
	for {
		err = syscall.Flock(int(f.Fd()), how)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, false
	}
	return f, true
}

// own reports whether this process maintains the cache, becoming its
// maintainer when no other process is.
func (l *cacheLocks) own() bool {
	if l == nil {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.owner != nil {
		return true
	}
	if f, ok := lockFile(filepath.Join(l.dir, "shipbot-maintainer.lock"), syscall.LOCK_EX|syscall.LOCK_NB); ok {
		l.owner = f
		if l.reader != nil {
			l.reader.Close()
			l.reader = nil
		}
		return true
	}
	if l.reader == nil {
		l.reader, _ = lockFile(filepath.Join(l.dir, "shipbot-readers.lock"), syscall.LOCK_SH)
	}
	return false
}

// exclusive locks out other processes for a deletion; ok is false when one
// has the clone open. unlock must be called after.
func (l *cacheLocks) exclusive() (unlock func(), ok bool) {
	if l == nil {
		return func() {}, true
	}
	f, ok := lockFile(filepath.Join(l.dir, "shipbot-readers.lock"), syscall.LOCK_EX|syscall.LOCK_NB)
	if !ok {
		return nil, false
	}
	return func() { f.Close() }, true
}

// release gives up both locks.
func (l *cacheLocks) release() {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, f := range []**os.File{&l.owner, &l.reader} {
		if *f != nil {
			(*f).Close()
			*f = nil
		}
	}
}
