package repo

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/format/idxfile"
	"github.com/go-git/go-git/v5/plumbing/format/objfile"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// Maintenance keeps the warm clone young. Every request leaves its new
// objects (blob, trees, commit) loose and every fetch leaves a pack; left
// alone, a clone that served 8,000 requests holds ~50,000 loose objects and
// thousands of packs, each pack an open file and one more index to search
// for every object read. Maintenance rolls them up into one pack, the way
// `git repack -d --geometric=2` does, in the background:
//
//   - when the clone holds LooseObjects loose objects or more than Packs
//     packs (counted at start, then from the writes), and every Interval;
//   - it packs the loose objects and the small packs (those that do not
//     form a geometric progression with the larger ones, so the clone's
//     big pack is left alone and each object is rewritten O(log n) times),
//     streaming, with deltas between the large trees a monorepo rewrites on
//     every commit;
//   - the new pack and its index are written under temporary names, synced
//     and renamed into place, then the storage is replaced under the
//     storage's lock (and the fetch lock, so no fetch adds a pack the new
//     storage would miss); only then are the packed loose objects deleted,
//     and the packs it replaces are deleted after Grace, once no read that
//     started on them can still be running. A read never waits for more
//     than the swap of a pointer; a fetch, for the new storage to read the
//     pack indexes (tens of milliseconds).
//
// Only one process maintains a cache directory (a lock file decides), and
// it deletes nothing while another process (e.g. `shipbot audit`) has the
// clone open.
type Maintenance struct {
	Disabled     bool          // never maintain (measuring the aging itself)
	LooseObjects int           // default 1500 (about 250 requests)
	Packs        int           // default 12, at least 2
	Interval     time.Duration // default 1h
	Grace        time.Duration // default 1m
	// Observe, if set, is called after each background run (metrics, tests).
	Observe func(MaintenanceStats, error)
}

func (m Maintenance) withDefaults() Maintenance {
	if m.LooseObjects <= 0 {
		m.LooseObjects = 1500
	}
	if m.Packs <= 0 {
		m.Packs = 12
	}
	m.Packs = max(m.Packs, 2) // fewer can't be kept: a run leaves the largest and its own
	if m.Interval <= 0 {
		m.Interval = time.Hour
	}
	if m.Grace <= 0 {
		m.Grace = time.Minute
	}
	return m
}

// MaintenanceStats says what one maintenance run found and did.
type MaintenanceStats struct {
	LooseBefore, PacksBefore int // found
	Packed                   int // objects written to the new pack
	Deltas                   int // of them stored as new deltas
	ReusedDeltas             int // of them stored as the deltas they were
	PackBytes                int64
	RolledPacks              int // small packs replaced by the new pack
	LooseDeleted             int
	PacksDeleted             int // replaced packs deleted (after Grace)
	LooseAfter, PacksAfter   int
	Duration                 time.Duration
	Skipped                  string // why nothing was done, if so
}

// Clutter is what the clone's object store holds: loose objects, packs in
// use (not those replaced and waiting for their deletion) and their bytes.
type Clutter struct {
	Loose, Packs int
	Bytes        int64
}

// Clutter counts what the clone holds now.
func (r *Repo) Clutter() (Clutter, error) {
	l, err := listLoose(r.dir)
	if err != nil {
		return Clutter{}, err
	}
	p, err := r.maint.listPacks()
	if err != nil {
		return Clutter{}, err
	}
	c := Clutter{Loose: len(l), Packs: len(p)}
	for _, h := range l {
		if fi, err := os.Stat(loosePath(r.dir, h)); err == nil {
			c.Bytes += fi.Size()
		}
	}
	for _, pk := range p {
		base := filepath.Join(r.dir, "objects", "pack", "pack-"+pk.hash.String())
		for _, ext := range []string{".pack", ".idx"} {
			if fi, err := os.Stat(base + ext); err == nil {
				c.Bytes += fi.Size()
			}
		}
	}
	return c, nil
}

// ClutterStats is how many loose objects and packs the clone holds now.
func (r *Repo) ClutterStats() (loose, packs int, err error) {
	c, err := r.Clutter()
	return c.Loose, c.Packs, err
}

// Maintain runs a full maintenance now and waits for it: every loose object
// and every pack but the largest are rolled into one pack, whatever the
// thresholds. Replaced packs are still deleted only after Grace, by the
// background loop or the next run.
func (r *Repo) Maintain(ctx context.Context) (MaintenanceStats, error) {
	return r.maint.run(ctx, runFull)
}

// How a run decides what to roll up.
type runMode int

const (
	runIfDue  runMode = iota // only past a threshold, geometrically
	runAlways                // geometrically (the schedule)
	runFull                  // everything but the largest pack (Maintain)
)

type maintainer struct {
	r   *Repo
	o   Maintenance
	log *slog.Logger

	kick chan struct{}
	stop chan struct{}
	done chan struct{}

	runMu     sync.Mutex // one run at a time
	closeOnce sync.Once

	// Counts found by the last inventory; the storage counts what was
	// written since. Their sum against the thresholds triggers a run.
	looseBase atomic.Int64
	packsBase atomic.Int64

	mu      sync.Mutex
	retired map[plumbing.Hash]time.Time // replaced packs, hidden from the storage, deleted after Grace
	locks   *cacheLocks
}

func newMaintainer(r *Repo, o Maintenance, log *slog.Logger) *maintainer {
	return &maintainer{r: r, o: o.withDefaults(), log: log, kick: make(chan struct{}, 1), retired: map[plumbing.Hash]time.Time{}}
}

// start counts what an earlier process left (a listing of the object
// directories: milliseconds, ~20 ms at 50,000 loose objects) and starts the
// background loop, at once at work if that is over a threshold.
func (m *maintainer) start() {
	m.locks = openCacheLocks(m.r.dir, !m.o.Disabled)
	if m.o.Disabled {
		return
	}
	if loose, err := listLoose(m.r.dir); err == nil {
		m.looseBase.Store(int64(len(loose)))
	}
	if packs, err := m.listPacks(); err == nil {
		m.packsBase.Store(int64(len(packs)))
	}
	m.stop = make(chan struct{})
	m.done = make(chan struct{})
	m.r.locked.wrote = m.wrote
	m.wrote()
	if m.pendingRetired() {
		m.wake()
	}
	go m.loop()
}

// close stops the loop, waiting for a run in progress to stop.
func (m *maintainer) close() {
	m.closeOnce.Do(func() {
		if m.stop != nil {
			close(m.stop)
			<-m.done
		}
		m.locks.release()
	})
}

// wrote is called after every object or pack written: it only compares
// counters, and wakes the loop when a threshold is crossed.
func (m *maintainer) wrote() {
	l := m.r.locked
	if m.looseBase.Load()+l.loose.Load() >= int64(m.o.LooseObjects) || m.packsBase.Load()+l.packs.Load() > int64(m.o.Packs) {
		m.wake()
	}
}

func (m *maintainer) wake() {
	select {
	case m.kick <- struct{}{}:
	default: // a run is due already
	}
}

// minGap spaces runs started by writes: a clone that stays over a
// threshold (say, loose objects that can't be read) costs one listing of
// the object directories a second, not one per write.
const minGap = time.Second

func (m *maintainer) loop() {
	defer close(m.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-m.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	tick := time.NewTicker(m.o.Interval)
	defer tick.Stop()
	var grace <-chan time.Time
	var last time.Time
	for {
		mode := runIfDue
		select {
		case <-m.stop:
			return
		case <-m.kick:
			if wait := minGap - time.Since(last); wait > 0 {
				select {
				case <-m.stop:
					return
				case <-time.After(wait):
				}
			}
		case <-tick.C:
			mode = runAlways
		case <-grace:
			grace = nil
			m.runMu.Lock()
			m.deleteRetired()
			m.runMu.Unlock()
			if m.pendingRetired() {
				grace = time.After(m.o.Grace)
			}
			continue
		}
		st, err := m.run(ctx, mode)
		last = time.Now()
		if m.o.Observe != nil && ctx.Err() == nil {
			m.o.Observe(st, err)
		}
		switch {
		case err != nil && ctx.Err() == nil:
			m.logf(slog.LevelWarn, "cache maintenance failed", "err", err)
		case err == nil && st.Skipped == "":
			m.logf(slog.LevelInfo, "cache maintenance", "loose_before", st.LooseBefore, "packs_before", st.PacksBefore,
				"packed", st.Packed, "deltas", st.Deltas, "reused_deltas", st.ReusedDeltas, "pack_bytes", st.PackBytes, "loose_after", st.LooseAfter,
				"packs_after", st.PacksAfter, "duration", st.Duration)
		}
		if m.pendingRetired() && grace == nil {
			grace = time.After(m.o.Grace)
		}
	}
}

func (m *maintainer) logf(level slog.Level, msg string, args ...any) {
	if m.log != nil {
		m.log.Log(context.Background(), level, msg, append([]any{"cache", m.r.dir}, args...)...)
	}
}

// packInfo is one pack of the clone.
type packInfo struct {
	hash  plumbing.Hash
	count int
}

// listPacks lists the clone's packs with their object counts (read from the
// index's fan-out table), leaving out replaced ones and those git was told
// to keep.
func (m *maintainer) listPacks() ([]packInfo, error) {
	dir := filepath.Join(m.r.dir, "objects", "pack")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	keep := map[string]bool{}
	for _, e := range ents {
		if n, ok := strings.CutSuffix(e.Name(), ".keep"); ok {
			keep[n] = true
		}
	}
	var out []packInfo
	for _, e := range ents {
		base, ok := strings.CutSuffix(e.Name(), ".pack")
		if !ok || !strings.HasPrefix(base, "pack-") || keep[base] {
			continue
		}
		h, ok := parseHash(strings.TrimPrefix(base, "pack-"))
		if !ok {
			continue
		}
		if _, gone := m.retired[h]; gone {
			continue
		}
		n, err := idxCount(filepath.Join(dir, base+".idx"))
		if err != nil {
			continue // no index yet (being written): not ours to touch
		}
		out = append(out, packInfo{hash: h, count: n})
	}
	return out, nil
}

// idxCount reads the number of objects of a version 2 pack index.
func idxCount(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var b [4]byte
	if _, err := f.ReadAt(b[:], 8+255*4); err != nil {
		return 0, err
	}
	return int(binary.BigEndian.Uint32(b[:])), nil
}

func parseHash(s string) (plumbing.Hash, bool) {
	if len(s) != 40 {
		return plumbing.ZeroHash, false
	}
	h := plumbing.NewHash(s)
	return h, !h.IsZero() && h.String() == s
}

// listLoose lists the loose objects of the clone at dir.
func listLoose(dir string) ([]plumbing.Hash, error) {
	objects := filepath.Join(dir, "objects")
	ents, err := os.ReadDir(objects)
	if err != nil {
		return nil, err
	}
	var out []plumbing.Hash
	for _, e := range ents {
		if !e.IsDir() || len(e.Name()) != 2 {
			continue
		}
		if _, err := strconv.ParseUint(e.Name(), 16, 8); err != nil {
			continue
		}
		files, err := os.ReadDir(filepath.Join(objects, e.Name()))
		if err != nil {
			continue
		}
		for _, f := range files {
			if h, ok := parseHash(e.Name() + f.Name()); ok {
				out = append(out, h)
			}
		}
	}
	return out, nil
}

func loosePath(dir string, h plumbing.Hash) string {
	s := h.String()
	return filepath.Join(dir, "objects", s[:2], s[2:])
}

// geometricRoll picks the packs to roll up with loose loose objects, as
// `git repack --geometric=2` does: the largest packs that each hold at
// least twice the objects of all smaller ones together stay, the rest is
// rolled into one.
func geometricRoll(packs []packInfo, loose int) []packInfo {
	packs = slices.Clone(packs)
	slices.SortFunc(packs, func(a, b packInfo) int { return a.count - b.count })
	n := len(packs)
	i := n - 1
	for ; i > 0; i-- {
		if packs[i].count < 2*packs[i-1].count {
			break
		}
	}
	split := 0
	if i > 0 {
		split = i + 1
	}
	total := loose
	for _, p := range packs[:split] {
		total += p.count
	}
	for split < n && total > 0 && packs[split].count < 2*total {
		total += packs[split].count
		split++
	}
	return packs[:split]
}

// run is one maintenance run.
func (m *maintainer) run(ctx context.Context, mode runMode) (st MaintenanceStats, err error) {
	m.runMu.Lock()
	defer m.runMu.Unlock()
	start := time.Now()
	defer func() { st.Duration = time.Since(start) }()
	r := m.r
	if r.locked.isClosed() {
		st.Skipped = "the repo is closed"
		return st, nil
	}
	if m.locks != nil && !m.locks.own() {
		st.Skipped = "another process maintains this cache"
		return st, nil
	}
	st.PacksDeleted = m.deleteRetired()

	// What writes from now on add counts toward the next run.
	wroteLoose, wrotePacks := r.locked.loose.Load(), r.locked.packs.Load()
	loose, err := listLoose(r.dir)
	if err != nil {
		return st, fmt.Errorf("maintenance: %w", err)
	}
	packs, err := m.listPacks()
	if err != nil {
		return st, fmt.Errorf("maintenance: %w", err)
	}
	r.locked.loose.Add(-wroteLoose)
	r.locked.packs.Add(-wrotePacks)
	st.LooseBefore, st.PacksBefore = len(loose), len(packs)
	st.LooseAfter, st.PacksAfter = len(loose), len(packs)
	m.looseBase.Store(int64(len(loose)))
	m.packsBase.Store(int64(len(packs)))
	if mode == runIfDue && len(loose) < m.o.LooseObjects && len(packs) <= m.o.Packs {
		st.Skipped = "below the thresholds"
		return st, nil
	}
	roll := geometricRoll(packs, len(loose))
	if (mode == runFull || len(packs)-len(roll)+1 > m.o.Packs) && len(packs) > 1 {
		// Everything (or still too many packs, of similar sizes): keep
		// only the largest.
		roll = slices.Clone(packs)
		slices.SortFunc(roll, func(a, b packInfo) int { return a.count - b.count })
		roll = roll[:len(roll)-1]
	}
	if len(loose) == 0 && len(roll) < 2 {
		st.Skipped = "nothing to roll up"
		return st, nil
	}
	m.cleanTemporary()

	// Read through a storage of our own: the requests' object cache stays
	// theirs, and reads run beside requests without their lock. It sees
	// only the loose objects and the packs rolled up (not the large packs
	// that stay, whose indexes would cost megabytes to load).
	kept := keptPacks(packs, roll)
	rd := filesystem.NewStorageWithOptions(m.fsHiding(kept), cache.NewObjectLRU(2*cache.MiByte), filesystem.Options{KeepDescriptors: true})
	defer rd.Close()
	objs, looseSet, err := m.inventory(rd, loose, roll, kept)
	if err != nil {
		return st, fmt.Errorf("maintenance: %w", err)
	}
	if len(objs) == 0 {
		st.Skipped = "nothing to roll up"
		return st, nil
	}
	packDir := filepath.Join(r.dir, "objects", "pack")
	wp, err := writePack(ctx, rd, packDir, objs)
	if errors.Is(err, errNothingToPack) {
		st.Skipped = "nothing readable to roll up"
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("maintenance: write pack: %w", err)
	}
	if err := ctx.Err(); err != nil {
		wp.remove()
		return st, err
	}
	if err := wp.install(); err != nil {
		return st, fmt.Errorf("maintenance: install pack: %w", err)
	}
	st.Packed, st.Deltas, st.ReusedDeltas, st.PackBytes = len(wp.objects), wp.deltas, wp.reused, wp.bytes

	// Replace the storage: from here on every read finds the new pack and
	// none looks at the rolled ones. The fetch lock keeps a fetch from
	// adding a pack only the old storage would learn of.
	skipped := map[plumbing.Hash]bool{}
	for _, h := range wp.skipped {
		skipped[h] = true
	}
	var retire []packInfo
	for _, p := range roll {
		if p.hash != wp.hash && !m.packHasSkipped(p.hash, skipped) {
			retire = append(retire, p)
		}
	}
	m.mu.Lock()
	delete(m.retired, wp.hash) // the very same pack, written again: it stays
	m.mu.Unlock()
	r.fetchMu.Lock()
	fresh, err := m.openStorage(retire)
	if err != nil {
		r.fetchMu.Unlock()
		// The new pack stays, beside what it copies: the next run tries again.
		return st, fmt.Errorf("maintenance: open the storage: %w", err)
	}
	now := time.Now()
	m.mu.Lock()
	for _, p := range retire {
		m.retired[p.hash] = now
	}
	m.mu.Unlock()
	m.saveRetired()
	old := r.locked.swap(fresh)
	r.fetchMu.Unlock()
	_ = old.Close()
	st.RolledPacks = len(retire)

	// The packed loose objects can go: reads find them in the new pack.
	if unlock, ok := m.locks.exclusive(); ok {
		defer unlock()
		for h := range looseSet {
			if skipped[h] {
				continue
			}
			if err := os.Remove(loosePath(r.dir, h)); err == nil {
				st.LooseDeleted++
			}
		}
	}
	st.LooseAfter = len(loose) - st.LooseDeleted
	st.PacksAfter = len(packs) - len(retire) + 1
	m.looseBase.Store(int64(st.LooseAfter))
	m.packsBase.Store(int64(st.PacksAfter))
	return st, nil
}

// openStorage opens the storage that replaces the current one, hiding the
// packs to retire, and reads the pack indexes now (not in the first request
// after the swap, under the lock every other request then waits on).
func (m *maintainer) openStorage(retire []packInfo) (*filesystem.Storage, error) {
	var err error
	for range 3 {
		st := filesystem.NewStorageWithOptions(m.fsHiding(retire), m.r.objCache, filesystem.Options{KeepDescriptors: true})
		err = st.HasEncodedObject(plumbing.ZeroHash)
		if errors.Is(err, plumbing.ErrObjectNotFound) {
			return st, nil
		}
		st.Close()
	}
	return nil, err
}

// packHasSkipped reports whether pack p holds an object that could not be
// repacked: then the pack stays.
func (m *maintainer) packHasSkipped(p plumbing.Hash, skipped map[plumbing.Hash]bool) bool {
	if len(skipped) == 0 {
		return false
	}
	idx, err := readIdx(m.packPath(p, ".idx"))
	if err != nil {
		return true
	}
	for h := range skipped {
		if ok, _ := idx.Contains(h); ok {
			return true
		}
	}
	return false
}

// inventory lists the objects to pack (the loose ones and those of the
// rolled packs, each once) with their types and sizes. What a pack that
// stays holds already is not packed again (a loose object there is only
// deleted).
func (m *maintainer) inventory(rd *filesystem.Storage, loose []plumbing.Hash, roll, kept []packInfo) ([]packObject, map[plumbing.Hash]bool, error) {
	seen := make(map[plumbing.Hash]bool, len(loose))
	var objs []packObject
	looseSet := make(map[plumbing.Hash]bool, len(loose))
	var stay []*idxReader
	for _, p := range kept {
		if x, err := openIdx(m.packPath(p.hash, ".idx")); err == nil {
			defer x.Close()
			stay = append(stay, x)
		}
	}
	inStay := func(h plumbing.Hash) bool {
		for _, x := range stay {
			if x.contains(h) {
				return true
			}
		}
		return false
	}
	for _, p := range roll {
		idx, err := readIdx(m.packPath(p.hash, ".idx"))
		if err != nil {
			return nil, nil, err
		}
		it, err := idx.Entries()
		if err != nil {
			return nil, nil, err
		}
		for {
			e, err := it.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				it.Close()
				return nil, nil, err
			}
			if seen[e.Hash] {
				continue
			}
			seen[e.Hash] = true
			if inStay(e.Hash) {
				continue
			}
			o, err := rd.DeltaObject(plumbing.AnyObject, e.Hash)
			if err != nil {
				it.Close()
				return nil, nil, fmt.Errorf("pack %s: %s: %w", p.hash, e.Hash, err)
			}
			if d, ok := o.(plumbing.DeltaObject); ok {
				objs = append(objs, packObject{hash: e.Hash, base: d.BaseHash()})
			} else {
				objs = append(objs, packObject{hash: e.Hash, typ: o.Type(), size: o.Size()})
			}
		}
		it.Close()
	}
	for _, h := range loose {
		looseSet[h] = true
		if seen[h] {
			continue
		}
		seen[h] = true
		if inStay(h) {
			continue // already packed: only delete it
		}
		t, size, mtime, err := looseHeader(loosePath(m.r.dir, h))
		if err != nil {
			delete(looseSet, h) // unreadable: leave it
			continue
		}
		objs = append(objs, packObject{hash: h, typ: t, size: size, loose: true, mtime: mtime})
	}
	return objs, looseSet, nil
}

// keptPacks are the packs that are not rolled up.
func keptPacks(packs, roll []packInfo) []packInfo {
	rolled := map[plumbing.Hash]bool{}
	for _, p := range roll {
		rolled[p.hash] = true
	}
	var out []packInfo
	for _, p := range packs {
		if !rolled[p.hash] {
			out = append(out, p)
		}
	}
	return out
}

func (m *maintainer) packPath(h plumbing.Hash, ext string) string {
	return filepath.Join(m.r.dir, "objects", "pack", "pack-"+h.String()+ext)
}

// idxReader looks ids up in a version 2 pack index on disk without loading
// it: a binary search in the range its fan-out table gives.
type idxReader struct {
	f      *os.File
	fanout [256]uint32
}

func openIdx(path string) (*idxReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	var head [8 + 256*4]byte
	if _, err := f.ReadAt(head[:], 0); err != nil {
		f.Close()
		return nil, err
	}
	if string(head[:4]) != "\xfftOc" || binary.BigEndian.Uint32(head[4:8]) != 2 {
		f.Close()
		return nil, fmt.Errorf("%s: not a version 2 pack index", filepath.Base(path))
	}
	x := &idxReader{f: f}
	for i := range x.fanout {
		x.fanout[i] = binary.BigEndian.Uint32(head[8+4*i:])
	}
	return x, nil
}

func (x *idxReader) Close() error { return x.f.Close() }

func (x *idxReader) contains(h plumbing.Hash) bool {
	lo := uint32(0)
	if h[0] > 0 {
		lo = x.fanout[h[0]-1]
	}
	hi := x.fanout[h[0]]
	var buf [20]byte
	for lo < hi {
		mid := lo + (hi-lo)/2
		if _, err := x.f.ReadAt(buf[:], int64(8+256*4+20*mid)); err != nil {
			return false
		}
		switch c := bytes.Compare(buf[:], h[:]); {
		case c == 0:
			return true
		case c < 0:
			lo = mid + 1
		default:
			hi = mid
		}
	}
	return false
}

func readIdx(path string) (*idxfile.MemoryIndex, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	idx := idxfile.NewMemoryIndex()
	if err := idxfile.NewDecoder(bufio.NewReader(f)).Decode(idx); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return idx, nil
}

// looseHeader reads a loose object's type and size without inflating it
// all, and when it was written.
func looseHeader(path string) (plumbing.ObjectType, int64, time.Time, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, time.Time{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, time.Time{}, err
	}
	rd, err := objfile.NewReader(f)
	if err != nil {
		return 0, 0, time.Time{}, err
	}
	defer rd.Close()
	t, size, err := rd.Header()
	return t, size, fi.ModTime(), err
}

// cleanTemporary removes what interrupted writes left in objects/pack
// (go-git's tmp_pack_/tmp_obj_ files, ours) an hour or more ago.
func (m *maintainer) cleanTemporary() {
	dir := filepath.Join(m.r.dir, "objects", "pack")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "tmp_") {
			continue
		}
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > time.Hour {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// retiredFile lists the packs maintenance replaced and has not deleted yet,
// with when, so that a restart hides and deletes them too.
const retiredFile = "shipbot-retired-packs"

func (m *maintainer) loadRetired() {
	data, err := os.ReadFile(filepath.Join(m.r.dir, retiredFile))
	if err != nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, line := range strings.Split(string(data), "\n") {
		hs, ts, _ := strings.Cut(line, " ")
		h, ok := parseHash(hs)
		if !ok {
			continue
		}
		sec, _ := strconv.ParseInt(ts, 10, 64)
		m.retired[h] = time.Unix(sec, 0)
	}
}

func (m *maintainer) saveRetired() {
	m.mu.Lock()
	var b strings.Builder
	for h, t := range m.retired {
		fmt.Fprintf(&b, "%s %d\n", h, t.Unix())
	}
	m.mu.Unlock()
	path := filepath.Join(m.r.dir, retiredFile)
	if b.Len() == 0 {
		os.Remove(path)
		return
	}
	_ = writeFileAtomic(path, []byte(b.String()))
}

func (m *maintainer) pendingRetired() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.retired) > 0
}

// deleteRetired deletes the replaced packs older than Grace (and all of
// them that an earlier process replaced), when no other process has the
// clone open. It returns how many it deleted.
func (m *maintainer) deleteRetired() int {
	if !m.pendingRetired() {
		return 0
	}
	unlock, ok := m.locks.exclusive()
	if !ok {
		return 0
	}
	defer unlock()
	dir := filepath.Join(m.r.dir, "objects", "pack")
	m.mu.Lock()
	n := 0
	for h, t := range m.retired {
		if time.Since(t) < m.o.Grace && !t.Before(m.r.opened) {
			continue
		}
		base := filepath.Join(dir, "pack-"+h.String())
		// The pack first: without it no reader looks for the index.
		err := os.Remove(base + ".pack")
		if err == nil || errors.Is(err, os.ErrNotExist) {
			for _, ext := range []string{".idx", ".rev", ".bitmap"} {
				os.Remove(base + ext)
			}
			delete(m.retired, h)
			n++
		}
	}
	m.mu.Unlock()
	if n > 0 {
		m.saveRetired()
	}
	return n
}

// fs is the clone's filesystem as storages see it: replaced packs are not
// listed (reads that already found an object in one still open it by name
// until it is deleted).
func (m *maintainer) fs() billy.Filesystem {
	return m.fsHiding(nil)
}

// fsHiding is fs, also hiding the packs more.
func (m *maintainer) fsHiding(more []packInfo) billy.Filesystem {
	m.mu.Lock()
	hidden := make(map[string]bool, len(m.retired)+len(more))
	for h := range m.retired {
		hidden["pack-"+h.String()] = true
	}
	m.mu.Unlock()
	for _, p := range more {
		hidden["pack-"+p.hash.String()] = true
	}
	return &packDirFS{Filesystem: osfs.New(m.r.dir), dir: filepath.Join(m.r.dir, "objects", "pack"), hidden: hidden}
}

// packDirFS lists objects/pack for go-git: only packs and their indexes,
// without the hidden ones. go-git's own listing (billy's ReadDir) fails as a
// whole when a file vanishes between reading the directory and its stat —
// which the temporary files of every loose object written do, all the time
// — and go-git keeps the pack indexes it loaded before that failure as if
// they were all: a storage that misses packs for good. Here a vanished file
// is just not listed.
type packDirFS struct {
	billy.Filesystem
	dir    string
	hidden map[string]bool
}

func (p *packDirFS) ReadDir(path string) ([]os.FileInfo, error) {
	if filepath.ToSlash(filepath.Clean(path)) != "objects/pack" {
		return p.Filesystem.ReadDir(path)
	}
	ents, err := os.ReadDir(p.dir)
	if err != nil {
		return nil, err
	}
	out := make([]os.FileInfo, 0, len(ents))
	for _, e := range ents {
		name := e.Name()
		i := strings.LastIndexByte(name, '.')
		if !strings.HasPrefix(name, "pack-") || i < 0 || p.hidden[name[:i]] {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, fi)
	}
	return out, nil
}

// Chmod keeps go-git's read-only pack files read-only.
func (p *packDirFS) Chmod(name string, mode os.FileMode) error {
	if c, ok := p.Filesystem.(billy.Chmod); ok {
		return c.Chmod(name, mode)
	}
	return nil
}

// writeFileAtomic writes data to path through a synced temporary file
// renamed into place: readers see the old content or the new, never part.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
