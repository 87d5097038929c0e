package repo

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"

	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/index"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/storage"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// lockedStorage serializes every access to go-git's filesystem storage. That
// storage is not safe for concurrent use (with exclusive access it fills its
// object and pack caches lazily, without locks), while shipbot reads
// snapshots from many requests at once and fetches and commits beside them.
// Each call holds the lock only for one object or reference; decoding and
// the work on the result happen outside it.
//
// The same lock lets maintenance replace the storage (swap) once it has
// packed objects: a call runs entirely on the old storage or entirely on the
// new one. It also counts what the clone accumulates (loose objects written,
// packs fetched) for maintenance's thresholds, and tells it after each write.
type lockedStorage struct {
	mu     sync.Mutex
	s      *filesystem.Storage
	closed bool // writes are refused once the repo is closed

	loose atomic.Int64 // loose objects written since the last maintenance
	packs atomic.Int64 // packs written by fetches since the last maintenance
	wrote func()       // called after a write, outside the lock; may be nil
}

// swap makes s the storage every later call uses and returns the previous one.
func (l *lockedStorage) swap(s *filesystem.Storage) *filesystem.Storage {
	l.mu.Lock()
	defer l.mu.Unlock()
	old := l.s
	l.s = s
	return old
}

// close closes the current storage (its open pack files); from then on it
// writes nothing (a fetch or a request that outlives Close gets an error,
// and the cache directory is left as Close left it).
func (l *lockedStorage) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	return l.s.Close()
}

func (l *lockedStorage) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// errClosed is what writes get after Close.
var errClosed = errors.New("repo: closed")

func (l *lockedStorage) notify() {
	if l.wrote != nil {
		l.wrote()
	}
}

var (
	_ storage.Storer         = (*lockedStorage)(nil)
	_ storer.PackfileWriter  = (*lockedStorage)(nil)
	_ storer.ReferenceStorer = (*lockedStorage)(nil)
)

func (l *lockedStorage) NewEncodedObject() plumbing.EncodedObject {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.NewEncodedObject()
}

func (l *lockedStorage) SetEncodedObject(o plumbing.EncodedObject) (plumbing.Hash, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return plumbing.ZeroHash, errClosed
	}
	h, err := l.s.SetEncodedObject(o)
	l.mu.Unlock()
	if err == nil {
		l.loose.Add(1)
		l.notify()
	}
	return h, err
}

func (l *lockedStorage) EncodedObject(t plumbing.ObjectType, h plumbing.Hash) (plumbing.EncodedObject, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.EncodedObject(t, h)
}

func (l *lockedStorage) IterEncodedObjects(t plumbing.ObjectType) (storer.EncodedObjectIter, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.IterEncodedObjects(t)
}

func (l *lockedStorage) HasEncodedObject(h plumbing.Hash) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.HasEncodedObject(h)
}

func (l *lockedStorage) EncodedObjectSize(h plumbing.Hash) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.EncodedObjectSize(h)
}

func (l *lockedStorage) AddAlternate(remote string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errClosed
	}
	return l.s.AddAlternate(remote)
}

// PackfileWriter lets a fetch write the received pack as one file (instead
// of exploding it into loose objects); the storage learns about the new pack
// when the writer closes, under the lock.
func (l *lockedStorage) PackfileWriter() (io.WriteCloser, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, errClosed
	}
	w, err := l.s.PackfileWriter()
	l.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return &lockedCloser{WriteCloser: w, l: l}, nil
}

type lockedCloser struct {
	io.WriteCloser
	l *lockedStorage
}

func (c *lockedCloser) Close() error {
	c.l.mu.Lock()
	err := c.WriteCloser.Close()
	c.l.mu.Unlock()
	if err == nil {
		c.l.packs.Add(1)
		c.l.notify()
	}
	return err
}

func (l *lockedStorage) SetReference(r *plumbing.Reference) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errClosed
	}
	return l.s.SetReference(r)
}

func (l *lockedStorage) CheckAndSetReference(n, old *plumbing.Reference) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errClosed
	}
	return l.s.CheckAndSetReference(n, old)
}

func (l *lockedStorage) Reference(n plumbing.ReferenceName) (*plumbing.Reference, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.Reference(n)
}

func (l *lockedStorage) IterReferences() (storer.ReferenceIter, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.IterReferences()
}

func (l *lockedStorage) RemoveReference(n plumbing.ReferenceName) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errClosed
	}
	return l.s.RemoveReference(n)
}

func (l *lockedStorage) CountLooseRefs() (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.CountLooseRefs()
}

func (l *lockedStorage) PackRefs() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errClosed
	}
	return l.s.PackRefs()
}

func (l *lockedStorage) SetShallow(h []plumbing.Hash) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errClosed
	}
	return l.s.SetShallow(h)
}

func (l *lockedStorage) Shallow() ([]plumbing.Hash, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.Shallow()
}

func (l *lockedStorage) SetIndex(i *index.Index) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errClosed
	}
	return l.s.SetIndex(i)
}

func (l *lockedStorage) Index() (*index.Index, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.Index()
}

func (l *lockedStorage) Config() (*config.Config, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.Config()
}

func (l *lockedStorage) SetConfig(c *config.Config) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errClosed
	}
	return l.s.SetConfig(c)
}

func (l *lockedStorage) Module(name string) (storage.Storer, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.Module(name)
}
