//go:build linux

package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal pair (Linux's /dev/ptmx): the master the
// test reads and types into, the tty the chat runs on.
func openPTY() (master, tty *os.File, err error) {
	master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	fd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil { // unlockpt
		master.Close()
		return nil, nil, err
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN) // ptsname
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	tty, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	return master, tty, nil
}

// TestChatInATerminal types into `shipbot demo` through a pseudo-terminal as
// a person would, arrow keys and Up included, and reads the screen (issue 14
// item 6): Left moves the cursor to fix a typo, Up recalls the line before,
// Backspace edits it; the replies are plain text, the logs stay out of the
// conversation, the history is kept in the demo directory, and the terminal
// is restored at the end.
func TestChatInATerminal(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is needed by the demo")
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	dir := filepath.Join(t.TempDir(), "demo")
	if code := run(context.Background(), []string{"demo", "--dir", dir}, strings.NewReader(""), io.Discard, io.Discard); code != 0 {
		t.Fatalf("demo setup exited %d", code)
	}

	master, tty, err := openPTY()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer master.Close()
	defer tty.Close()
	if err := unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 160}); err != nil {
		t.Fatal(err)
	}
	scr := newScreen(160)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			scr.write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	exited := make(chan int, 1)
	go func() { exited <- run(ctx, []string{"demo", "--dir", dir, "--as", "alice"}, tty, tty, tty) }()

	typeKeys := func(keys string) {
		t.Helper()
		if _, err := master.Write([]byte(keys)); err != nil {
			t.Fatal(err)
		}
	}
	const (
		left      = "\x1b[D"
		up        = "\x1b[A"
		backspace = "\x7f"
		enter     = "\r"
		ctrlD     = "\x04"
	)

	scr.waitFor(t, "\nalice>")
	// "chekout": four times Left puts the cursor before the k; type the c.
	typeKeys("status chekout" + strings.Repeat(left, 4) + "c" + enter)
	scr.waitFor(t, "\nalice> status checkout\ncheckout:\n")
	scr.waitFor(t, "\n  prod     1.4.2")

	// Up recalls it; Backspace edits it into another command.
	typeKeys(up)
	scr.waitForLast(t, "alice> status checkout") // the recalled line, on the prompt
	typeKeys(strings.Repeat(backspace, len("checkout")) + "payments" + enter)
	scr.waitFor(t, "\nalice> status payments\npayments:\n")

	// Up twice goes back two lines; a plan shows its diff as plain text,
	// indented, without fences.
	typeKeys(up + up)
	scr.waitForLast(t, "alice> status checkout")
	typeKeys(strings.Repeat(backspace, len("status checkout")) + "rollback checkout dev --why OPS-1" + enter)
	scr.waitFor(t, "\nalice> rollback checkout dev --why OPS-1\n[shp-", "\n  --- a/apps/checkout/overlays/dev/kustomization.yaml\n", "Reply `yes`")
	typeKeys("no" + enter)
	scr.waitFor(t, "cancelled: alice said no; nothing was written.")

	// /as changes the prompt at once.
	typeKeys("/as bob" + enter)
	scr.waitFor(t, "\nyou are now bob\n")
	scr.waitForLast(t, "bob>")

	typeKeys(ctrlD)
	select {
	case code := <-exited:
		if code != 0 {
			t.Errorf("shipbot demo exited %d\nscreen:\n%s", code, scr.text())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("shipbot demo did not end at Ctrl-D\nscreen:\n%s", scr.text())
	}

	screen := scr.text()
	if os.Getenv("SHIPBOT_TEST_SCREEN") != "" {
		t.Logf("screen:\n%s", screen)
	}
	for _, bad := range []string{"\x1b", "^[", "[A", "[D", "unknown command", "```", `"level"`, `"msg"`, "invalid app name"} {
		if strings.Contains(screen, bad) {
			t.Errorf("the screen shows %q:\n%s", bad, screen)
		}
	}
	// The terminal is back in canonical mode with echo.
	tio, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if tio.Lflag&unix.ICANON == 0 || tio.Lflag&unix.ECHO == 0 {
		t.Errorf("the terminal was left in raw mode (lflag %#x)", tio.Lflag)
	}
	// The history is kept for the next session; the logs went to the file.
	hist, err := os.ReadFile(filepath.Join(dir, "history"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "status checkout\nstatus payments\nrollback checkout dev --why OPS-1\nno\n/as bob\n"; string(hist) != want {
		t.Errorf("history file:\n%s\nwant:\n%s", hist, want)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "shipbot.log"))
	if !bytes.Contains(log, []byte(`"msg":"request cancelled"`)) {
		t.Errorf("the demo log lacks the cancellation:\n%s", log)
	}
}

// screen is a small VT100 screen: enough of one to read what x/term's line
// editor leaves on a terminal (cursor moves, erase to end of line), with
// unbounded scrollback.
type screen struct {
	mu       sync.Mutex
	width    int
	rows     [][]rune
	row, col int
	pending  []byte // an incomplete escape sequence or rune
	changed  chan struct{}
}

func newScreen(width int) *screen {
	return &screen{width: width, rows: [][]rune{nil}, changed: make(chan struct{}, 1)}
}

func (s *screen) write(b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b = append(s.pending, b...)
	s.pending = nil
	for len(b) > 0 {
		switch c := b[0]; {
		case c == '\r':
			s.col, b = 0, b[1:]
		case c == '\n':
			s.row++
			for len(s.rows) <= s.row {
				s.rows = append(s.rows, nil)
			}
			b = b[1:]
		case c == '\b':
			s.col, b = max(0, s.col-1), b[1:]
		case c == 0x1b:
			n, ok := s.escape(b)
			if !ok {
				s.pending = append([]byte(nil), b...)
				return
			}
			b = b[n:]
		case c < 0x20:
			b = b[1:]
		default:
			if !utf8.FullRune(b) {
				s.pending = append([]byte(nil), b...)
				return
			}
			r, n := utf8.DecodeRune(b)
			s.put(r)
			b = b[n:]
		}
	}
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

func (s *screen) put(r rune) {
	line := s.rows[s.row]
	for len(line) <= s.col {
		line = append(line, ' ')
	}
	line[s.col] = r
	s.rows[s.row] = line
	s.col++
}

// escape applies the CSI sequence b starts with and returns its length;
// false when b ends before the sequence does.
func (s *screen) escape(b []byte) (int, bool) {
	if len(b) < 2 {
		return 0, false
	}
	if b[1] != '[' {
		return 2, true
	}
	i := 2
	for i < len(b) && (b[i] >= '0' && b[i] <= '9' || b[i] == ';' || b[i] == '?') {
		i++
	}
	if i >= len(b) {
		return 0, false
	}
	n, err := strconv.Atoi(strings.Split(string(b[2:i]), ";")[0])
	if err != nil || n == 0 {
		n = 1
	}
	switch b[i] {
	case 'A':
		s.row = max(0, s.row-n)
	case 'B':
		s.row += n
		for len(s.rows) <= s.row {
			s.rows = append(s.rows, nil)
		}
	case 'C':
		s.col = min(s.width-1, s.col+n)
	case 'D':
		s.col = max(0, s.col-n)
	case 'K':
		if line := s.rows[s.row]; len(line) > s.col {
			s.rows[s.row] = line[:s.col]
		}
	case 'J':
		s.rows, s.row, s.col = [][]rune{nil}, 0, 0
	case 'H':
		s.row, s.col = 0, 0
	}
	return i + 1, true
}

func (s *screen) text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	lines := make([]string, len(s.rows))
	for i, l := range s.rows {
		lines[i] = strings.TrimRight(string(l), " ")
	}
	return strings.Join(lines, "\n")
}

// waitForLast waits until the line the cursor is on reads line.
func (s *screen) waitForLast(t *testing.T, line string) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		s.mu.Lock()
		cur := strings.TrimRight(string(s.rows[s.row]), " ")
		s.mu.Unlock()
		if cur == line {
			return
		}
		select {
		case <-s.changed:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatalf("the cursor's line reads %q, not %q:\n%s", cur, line, s.text())
		}
	}
}

// waitFor waits until the screen shows every one of texts.
func (s *screen) waitFor(t *testing.T, texts ...string) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		screen := s.text()
		missing := ""
		for _, want := range texts {
			if !strings.Contains(screen, want) {
				missing = want
				break
			}
		}
		if missing == "" {
			return
		}
		select {
		case <-s.changed:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatalf("the screen does not show %q:\n%s", missing, screen)
		}
	}
}
