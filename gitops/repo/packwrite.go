package repo

import (
	"bufio"
	"bytes"
	"cmp"
	"compress/zlib"
	"context"
	"crypto/sha1"
	"errors"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/idxfile"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"github.com/go-git/go-git/v5/utils/binary"
)

// Pack writing for maintenance. go-git's packfile.Encoder loads every object
// it packs into memory before writing the first byte (its delta selector
// needs them all), and computes every delta anew; rolling up the objects of
// thousands of requests that way costs hundreds of MB, and re-deltifying a
// pack git wrote, without the paths git orders objects by, bloats it
// (measured: git's 12 MB pack of 10,000 commits became 217 MB). packWriter
// streams instead, one object in memory at a time, and
//
//   - copies the deltas of the packs it rolls up as they are (the delta data,
//     against the same base, which it writes first), as `git repack` reuses
//     deltas: the new pack is as compact as the old ones;
//   - stores loose objects newest first, each large one as a delta of one of
//     the few written just before it when that is at most half its size: the
//     30-40 KB tree a monorepo rewrites at every commit (1,000 app
//     directories) becomes a ~100-byte delta of the previous request's, the
//     newest stays whole (the one requests read), chains stay short.
const (
	deltaMinSize = 512 // smaller loose objects are stored whole
	deltaWindow  = 4   // candidates tried per object
	deltaDepth   = 10  // longest chain of new deltas (a read resolves the chain)
)

// packObject is one object to pack. A whole one has its type, size and,
// loose, when it was written; a delta copied from a pack has its base.
type packObject struct {
	hash  plumbing.Hash
	typ   plumbing.ObjectType
	size  int64
	loose bool
	mtime time.Time
	base  plumbing.Hash // a delta to copy: the object it applies to
}

func (o packObject) delta() bool { return !o.base.IsZero() }

// packOrder orders the whole objects: those from packs first, then the loose
// ones; each by type (commits, trees, blobs, tags), the loose ones newest
// first, then by id so that the pack is reproducible.
func packOrder(objs []packObject) {
	rank := func(t plumbing.ObjectType) int {
		switch t {
		case plumbing.CommitObject:
			return 0
		case plumbing.TreeObject:
			return 1
		case plumbing.BlobObject:
			return 2
		}
		return 3
	}
	slices.SortFunc(objs, func(a, b packObject) int {
		if a.loose != b.loose {
			if a.loose {
				return 1
			}
			return -1
		}
		if c := cmp.Compare(rank(a.typ), rank(b.typ)); c != 0 {
			return c
		}
		if c := b.mtime.Compare(a.mtime); c != 0 {
			return c
		}
		return bytes.Compare(a.hash[:], b.hash[:])
	})
}

// writtenPack is a pack written to a temporary file with its index, not yet
// visible to any reader.
type writtenPack struct {
	hash     plumbing.Hash // the pack's checksum, its name
	packTmp  string
	idxTmp   string
	objects  []plumbing.Hash // what it holds
	bytes    int64
	deltas   int             // new deltas
	reused   int             // deltas copied
	skipped  []plumbing.Hash // unreadable or corrupt: left where they were
	packPath string
	idxPath  string
}

// remove deletes the temporary files (a pack that was not installed).
func (p *writtenPack) remove() {
	os.Remove(p.packTmp)
	os.Remove(p.idxTmp)
}

// install makes the pack visible: the index first, then the pack (go-git
// lists packs by their .pack file, git by .idx and checks the .pack), so no
// reader ever finds a pack without its index. Both are synced first.
func (p *writtenPack) install() error {
	if _, err := os.Stat(p.packPath); err == nil {
		// The very same pack exists already (same objects, same order).
		p.remove()
		return nil
	}
	// Read-only, as git and go-git leave their packs.
	_ = os.Chmod(p.idxTmp, 0o444)
	_ = os.Chmod(p.packTmp, 0o444)
	if err := os.Rename(p.idxTmp, p.idxPath); err != nil {
		p.remove()
		return err
	}
	if err := os.Rename(p.packTmp, p.packPath); err != nil {
		os.Remove(p.idxPath)
		p.remove()
		return err
	}
	syncDir(filepath.Dir(p.packPath))
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// windowEntry is a recent large object new deltas may be based on.
type windowEntry struct {
	content []byte
	offset  int64
	depth   int
}

// packWriter writes one pack and remembers what it wrote.
type packWriter struct {
	bw      *bufio.Writer
	sum     hash.Hash
	crc     hash.Hash32
	zw      *zlib.Writer
	offset  int64
	entries []idxEntry
	written map[plumbing.Hash]int64 // id -> offset of its entry
}

type idxEntry struct {
	hash   plumbing.Hash
	offset int64
	crc    uint32
}

func (w *packWriter) Write(b []byte) (int, error) {
	w.sum.Write(b)
	w.crc.Write(b)
	w.offset += int64(len(b))
	return w.bw.Write(b)
}

// entry writes one pack entry: a whole object (base zero) or an OFS delta
// of the entry at base.
func (w *packWriter) entry(h plumbing.Hash, typ plumbing.ObjectType, data []byte, base int64) error {
	start := w.offset
	w.crc.Reset()
	if base >= 0 {
		if _, err := w.Write(entryHeader(plumbing.OFSDeltaObject, int64(len(data)))); err != nil {
			return err
		}
		if err := binary.WriteVariableWidthInt(w, start-base); err != nil {
			return err
		}
	} else if _, err := w.Write(entryHeader(typ, int64(len(data)))); err != nil {
		return err
	}
	w.zw.Reset(w)
	if _, err := w.zw.Write(data); err != nil {
		return err
	}
	if err := w.zw.Close(); err != nil {
		return err
	}
	w.entries = append(w.entries, idxEntry{h, start, w.crc.Sum32()})
	w.written[h] = start
	return nil
}

// writePack writes objs (read from rd) as one pack with its index into
// packDir, under temporary names. Whole objects that can't be read or whose
// content does not match their id, and deltas whose base is then missing,
// are left out (reported in skipped).
func writePack(ctx context.Context, rd *filesystem.Storage, packDir string, objs []packObject) (*writtenPack, error) {
	var whole, deltas []packObject
	for _, o := range objs {
		if o.delta() {
			deltas = append(deltas, o)
		} else {
			whole = append(whole, o)
		}
	}
	packOrder(whole)
	f, err := os.CreateTemp(packDir, "tmp_pack_")
	if err != nil {
		return nil, err
	}
	out := &writtenPack{packTmp: f.Name()}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			out.remove()
		}
	}()
	w := &packWriter{
		bw:      bufio.NewWriterSize(f, 256<<10),
		sum:     sha1.New(),
		crc:     crc32.NewIEEE(),
		zw:      zlib.NewWriter(io.Discard),
		written: make(map[plumbing.Hash]int64, len(objs)),
	}
	// The header holds the count of objects; when some are left out, the
	// count is patched and the file hashed again.
	if _, err := w.Write(packHeader(uint32(len(objs)))); err != nil {
		return nil, err
	}

	// Whole objects; new deltas among the loose ones.
	var window []windowEntry
	for i, po := range whole {
		if i%64 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		if i == 0 || po.typ != whole[i-1].typ || po.loose != whole[i-1].loose {
			window = window[:0]
		}
		content, typ, err := readObject(rd, po.hash)
		if err != nil || plumbing.ComputeHash(typ, content) != po.hash {
			out.skipped = append(out.skipped, po.hash)
			continue
		}
		candidate := po.loose && len(content) >= deltaMinSize && (typ == plumbing.TreeObject || typ == plumbing.BlobObject)
		var base *windowEntry
		var delta []byte
		if candidate {
			base, delta = bestDelta(window, content)
		}
		start := w.offset
		depth := 0
		if base != nil {
			depth = base.depth + 1
			err = w.entry(po.hash, typ, delta, base.offset)
			out.deltas++
		} else {
			err = w.entry(po.hash, typ, content, -1)
		}
		if err != nil {
			return nil, err
		}
		if candidate && depth < deltaDepth {
			if len(window) == deltaWindow {
				window = append(window[:0], window[1:]...)
			}
			window = append(window, windowEntry{content: content, offset: start, depth: depth})
		}
	}

	// Deltas copied from the rolled packs, each after its base: walk down
	// from every object written.
	children := map[plumbing.Hash][]packObject{}
	for _, d := range deltas {
		children[d.base] = append(children[d.base], d)
	}
	var stack []plumbing.Hash
	for h := range w.written {
		if len(children[h]) > 0 {
			stack = append(stack, h)
		}
	}
	n := 0
	copyFrom := func(stack []plumbing.Hash) ([]plumbing.Hash, error) {
		for len(stack) > 0 {
			base := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, d := range children[base] {
				if _, done := w.written[d.hash]; done {
					continue
				}
				if n++; n%64 == 0 {
					if err := ctx.Err(); err != nil {
						return nil, err
					}
				}
				data, err := readDelta(rd, d.hash, base)
				if err != nil {
					continue // resolved and written whole below
				}
				if err := w.entry(d.hash, 0, data, w.written[base]); err != nil {
					return nil, err
				}
				out.reused++
				stack = append(stack, d.hash)
			}
			delete(children, base)
		}
		return stack, nil
	}
	if stack, err = copyFrom(stack); err != nil {
		return nil, err
	}
	// Deltas whose base never got written (not rolled up, unreadable):
	// resolved, written whole, and then their own deltas.
	for _, d := range deltas {
		if _, done := w.written[d.hash]; done {
			continue
		}
		content, typ, err := readObject(rd, d.hash)
		if err != nil || plumbing.ComputeHash(typ, content) != d.hash {
			out.skipped = append(out.skipped, d.hash)
			continue
		}
		if err := w.entry(d.hash, typ, content, -1); err != nil {
			return nil, err
		}
		if stack, err = copyFrom(append(stack, d.hash)); err != nil {
			return nil, err
		}
	}
	written := len(w.entries)
	if written == 0 {
		return nil, errNothingToPack
	}
	if err := w.bw.Flush(); err != nil {
		return nil, err
	}
	sum := w.sum
	if written != len(objs) {
		// Patch the count and hash the whole file again.
		if _, err := f.WriteAt(packHeader(uint32(written)), 0); err != nil {
			return nil, err
		}
		sum.Reset()
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		if _, err := io.Copy(sum, f); err != nil {
			return nil, err
		}
	}
	copy(out.hash[:], sum.Sum(nil))
	if _, err := f.Write(out.hash[:]); err != nil {
		return nil, err
	}
	out.bytes = w.offset + int64(len(out.hash))
	if err := f.Sync(); err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}

	idx := new(idxfile.Writer)
	if err := idx.OnHeader(uint32(written)); err != nil {
		return nil, err
	}
	for _, e := range w.entries {
		idx.Add(e.hash, uint64(e.offset), e.crc)
		out.objects = append(out.objects, e.hash)
	}
	if err := idx.OnFooter(out.hash); err != nil {
		return nil, err
	}
	mi, err := idx.Index()
	if err != nil {
		return nil, err
	}
	xf, err := os.CreateTemp(packDir, "tmp_idx_")
	if err != nil {
		return nil, err
	}
	out.idxTmp = xf.Name()
	if _, err := idxfile.NewEncoder(xf).Encode(mi); err != nil {
		xf.Close()
		return nil, err
	}
	if err := xf.Sync(); err != nil {
		xf.Close()
		return nil, err
	}
	if err := xf.Close(); err != nil {
		return nil, err
	}
	name := "pack-" + out.hash.String()
	out.packPath = filepath.Join(packDir, name+".pack")
	out.idxPath = filepath.Join(packDir, name+".idx")
	ok = true
	return out, nil
}

var errNothingToPack = errors.New("nothing to pack")

func packHeader(count uint32) []byte {
	return []byte{'P', 'A', 'C', 'K', 0, 0, 0, 2, byte(count >> 24), byte(count >> 16), byte(count >> 8), byte(count)}
}

// entryHeader is a pack entry's type and (inflated) size.
func entryHeader(t plumbing.ObjectType, size int64) []byte {
	c := byte(t)<<4 | byte(size&0x0f)
	size >>= 4
	var out []byte
	for size != 0 {
		out = append(out, c|0x80)
		c = byte(size & 0x7f)
		size >>= 7
	}
	return append(out, c)
}

// bestDelta returns the window entry content is best stored as a delta of,
// and the delta; nil when no delta is worth it (at most half the size).
func bestDelta(window []windowEntry, content []byte) (*windowEntry, []byte) {
	var best *windowEntry
	var bestDelta []byte
	limit := len(content) / 2
	// The most recently written first: the closest in time.
	for i := len(window) - 1; i >= 0; i-- {
		w := &window[i]
		if d := len(w.content) - len(content); d > limit || -d > limit {
			continue
		}
		delta := packfile.DiffDelta(w.content, content)
		if len(delta) < limit && (bestDelta == nil || len(delta) < len(bestDelta)) {
			best, bestDelta = w, delta
			if len(delta) < len(content)/16 {
				break // good enough: don't spend more CPU
			}
		}
	}
	return best, bestDelta
}

// readObject reads an object's whole content and type.
func readObject(rd *filesystem.Storage, h plumbing.Hash) ([]byte, plumbing.ObjectType, error) {
	o, err := rd.EncodedObject(plumbing.AnyObject, h)
	if err != nil {
		return nil, 0, err
	}
	return readAll(o)
}

// readDelta reads the delta data of h as stored in a pack, if it is a
// delta of base.
func readDelta(rd *filesystem.Storage, h, base plumbing.Hash) ([]byte, error) {
	o, err := rd.DeltaObject(plumbing.AnyObject, h)
	if err != nil {
		return nil, err
	}
	d, ok := o.(plumbing.DeltaObject)
	if !ok || d.BaseHash() != base {
		return nil, errors.New("not a delta of that base")
	}
	data, _, err := readAll(o)
	return data, err
}

func readAll(o plumbing.EncodedObject) ([]byte, plumbing.ObjectType, error) {
	rd, err := o.Reader()
	if err != nil {
		return nil, 0, err
	}
	defer rd.Close()
	b := bytes.NewBuffer(make([]byte, 0, max(o.Size(), 0)))
	if _, err := io.Copy(b, rd); err != nil {
		return nil, 0, err
	}
	return b.Bytes(), o.Type(), nil
}
