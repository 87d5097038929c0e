package policy

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// maxPolicyBytes bounds what shipbot reads of a model or a policy file.
const maxPolicyBytes = 8 << 20

// DefaultWatchInterval is how often Watch polls when given no interval.
const DefaultWatchInterval = 2 * time.Second

// fileStat is what the watcher reports about a file it read.
type fileStat struct {
	path  string
	size  int64
	mtime time.Time
}

func readAllLimited(r io.Reader, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("larger than %d bytes", max)
	}
	return b, nil
}

// Reload re-reads the model and the policy files given to NewEnforcer and
// puts them in force as a whole. A file that cannot be read, an invalid
// model or an invalid policy line is refused with the same errors as
// NewEnforcer (file:line), and the previous policy stays in force.
// Decisions in progress finish with the policy they started with.
func (e *Enforcer) Reload() error {
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	f, err := e.readFiles()
	if err != nil {
		return fmt.Errorf("reload refused, the previous policy stays in force: %w", err)
	}
	return e.install(f)
}

// install builds and swaps in the state for f; reloadMu must be held.
func (e *Enforcer) install(f *policyFiles) error {
	st, err := buildState(f)
	if err != nil {
		return fmt.Errorf("reload refused, the previous policy stays in force: %w", err)
	}
	e.cur.Store(st)
	return nil
}

// Watch polls the model and policy files every interval (DefaultWatchInterval
// when interval <= 0) until ctx ends, and reloads them when their content
// changes. Each poll reads the files (their size, modification time and
// SHA-256); the content hash decides, so an edit within the same second is
// seen and a touch alone reloads nothing. A change is applied once the files
// have read the same on two polls in a row, and an empty policy file is
// never loaded (it warns instead), so a file caught halfway through a write
// is not put in force; writing a new file and renaming it over the old one
// is still the cleanest way to edit a policy in place.
//
// A reload is logged at Info; a refused one (unreadable file, invalid model
// or policy) at Error with the file:line of the problem, once per content,
// and the previous policy stays in force. A nil log discards the messages.
func (e *Enforcer) Watch(ctx context.Context, interval time.Duration, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if interval <= 0 {
		interval = DefaultWatchInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	var (
		pending, refused         [32]byte
		havePending, haveRefused bool
		warnedEmpty              bool
		lastReadErr              string
	)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		f, err := e.readFiles()
		if err != nil {
			if msg := err.Error(); msg != lastReadErr {
				log.Error("policy reload refused: the previous policy stays in force", "err", err)
				lastReadErr = msg
			}
			havePending = false
			continue
		}
		lastReadErr = ""
		if len(bytes.TrimSpace(f.policy)) == 0 {
			// Most likely caught between the truncation and the write of
			// an in-place edit; a policy meant to deny everything can say
			// so with a comment line.
			if !warnedEmpty {
				log.Warn("policy file is empty: not loading it; the previous policy stays in force (write a comment line to load a policy that denies everything)", "file", f.policyFile)
				warnedEmpty = true
			}
			havePending = false
			continue
		}
		warnedEmpty = false
		sum := f.sum()
		switch {
		case sum == e.cur.Load().sum:
			havePending = false
			continue
		case haveRefused && sum == refused:
			continue
		case !havePending || sum != pending:
			pending, havePending = sum, true // let the change settle for one interval
			continue
		}
		havePending = false

		e.reloadMu.Lock()
		err = e.install(f)
		e.reloadMu.Unlock()
		attrs := []any{"sha256", hex.EncodeToString(sum[:8])}
		for _, s := range f.stats {
			attrs = append(attrs, slog.Group("file", "path", s.path, "size", s.size, "mtime", s.mtime))
		}
		if err != nil {
			refused, haveRefused = sum, true
			log.Error("policy reload refused: the previous policy stays in force", append(attrs, "err", err)...)
			continue
		}
		pol := e.cur.Load().pol
		log.Info("policy reloaded", append(attrs,
			"rules", len(pol.perms), "groups", len(pol.roles), "reviews", len(pol.reviews), "justifies", len(pol.justifies))...)
	}
}
