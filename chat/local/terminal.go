package local

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"golang.org/x/term"
)

// Terminal is the line editor of a chat typed at a terminal: the terminal
// in raw mode, read and written through golang.org/x/term's Terminal, which
// edits the line (arrow keys, Home/End, Ctrl-A/E/K/U/W, Alt-arrows by
// word), recalls history with Up and Down, and redraws the line being typed
// when a reply or late news is written meanwhile. Everything the chat
// writes must go through it while it is open: raw mode turns off the
// terminal's own line editing and its newline translation.
type Terminal struct {
	t       *term.Terminal
	fd      int
	state   *term.State
	stopped chan struct{}
	once    sync.Once
}

// IsTerminal reports whether f is a terminal.
func IsTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// OpenTerminal puts the terminal in (a terminal, e.g. os.Stdin) into raw
// mode and returns its line editor, writing to out (the same terminal).
// history keeps the lines typed; nil keeps the last 100 in memory. Close
// restores the terminal.
func OpenTerminal(in, out *os.File, history term.History) (*Terminal, error) {
	fd := int(in.Fd())
	state, err := term.MakeRaw(fd)
	if err != nil {
		return nil, fmt.Errorf("terminal: %w", err)
	}
	t := &Terminal{
		t: term.NewTerminal(struct {
			io.Reader
			io.Writer
		}{in, out}, ""),
		fd:      fd,
		state:   state,
		stopped: make(chan struct{}),
	}
	if history != nil {
		t.t.History = history
	}
	t.resize()
	watchResize(t.resize, t.stopped)
	return t, nil
}

// resize tells the line editor the terminal's size, so that long lines
// wrap where the terminal wraps them.
func (t *Terminal) resize() {
	if w, h, err := term.GetSize(t.fd); err == nil && w > 0 && h > 0 {
		_ = t.t.SetSize(w, h)
	}
}

// ReadLine reads one edited line; io.EOF at Ctrl-D on an empty line, or
// Ctrl-C.
func (t *Terminal) ReadLine() (string, error) { return t.t.ReadLine() }

// Write writes text above the line being typed (newlines become CRLF).
func (t *Terminal) Write(p []byte) (int, error) { return t.t.Write(p) }

// SetPrompt sets the prompt, e.g. after /as.
func (t *Terminal) SetPrompt(p string) { t.t.SetPrompt(p) }

// Close restores the terminal's mode.
func (t *Terminal) Close() error {
	var err error
	t.once.Do(func() {
		close(t.stopped)
		err = term.Restore(t.fd, t.state)
	})
	return err
}

// History is the chat's line history for Up and Down: the last lines typed
// (blank lines and repeats of the line before are not kept), in memory and,
// when it has a file, appended to it and read back by the next session.
type History struct {
	mu    sync.Mutex
	lines []string // oldest first
	max   int
	file  *os.File
}

var _ term.History = (*History)(nil)

// maxHistory is how many lines a History keeps.
const maxHistory = 500

// NewHistory returns a history kept in memory only.
func NewHistory() *History { return &History{max: maxHistory} }

// OpenHistory returns a history kept in the file at path too: its last
// lines are read now, and each new line is appended. Close closes the file.
func OpenHistory(path string) (*History, error) {
	h := NewHistory()
	if b, err := os.ReadFile(path); err == nil {
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		sc.Buffer(make([]byte, 64*1024), 64*1024)
		for sc.Scan() {
			h.add(sc.Text())
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	h.file = f
	return h, nil
}

// Add records a line typed (term.History).
func (h *History) Add(line string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.add(line) && h.file != nil {
		_, _ = h.file.WriteString(line + "\n")
	}
}

func (h *History) add(line string) bool {
	if strings.TrimSpace(line) == "" || strings.ContainsAny(line, "\r\n") ||
		len(h.lines) > 0 && h.lines[len(h.lines)-1] == line {
		return false
	}
	h.lines = append(h.lines, line)
	if len(h.lines) > h.max {
		h.lines = append(h.lines[:0:0], h.lines[len(h.lines)-h.max:]...)
	}
	return true
}

// Len is the number of lines kept (term.History).
func (h *History) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.lines)
}

// At returns a line: 0 is the most recent (term.History).
func (h *History) At(i int) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lines[len(h.lines)-1-i]
}

// Close closes the history's file.
func (h *History) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.file == nil {
		return nil
	}
	err := h.file.Close()
	h.file = nil
	return err
}
