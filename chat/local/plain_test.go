package local

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Replies are plain text in the terminal: no ``` fences, no :emoji: codes
// (issue 14 item 6); times and names with colons are left alone.
func TestPlain(t *testing.T) {
	reply := "[shp-x] rollback checkout in prod: 1.4.2 -> 1.4.1\nwhy: OPS-1 at 09:00:00\n```\n--- a/k.yaml\n+++ b/k.yaml\n-    newTag: 1.4.2\n+    newTag: 1.4.1\n```\n" +
		":rotating_light: BREAK-GLASS: this change overrode a freeze (prod).\n[shp-y] :rotating_light: lost: check it\ngroup slack:sre-oncall: ok :unknown_code: stays"
	want := "[shp-x] rollback checkout in prod: 1.4.2 -> 1.4.1\nwhy: OPS-1 at 09:00:00\n  --- a/k.yaml\n  +++ b/k.yaml\n  -    newTag: 1.4.2\n  +    newTag: 1.4.1\n" +
		"!! BREAK-GLASS: this change overrode a freeze (prod).\n[shp-y] !! lost: check it\ngroup slack:sre-oncall: ok :unknown_code: stays"
	if got := Plain(reply, "  "); got != want {
		t.Errorf("Plain:\n%s\nwant:\n%s", got, want)
	}
	// Piped, a diff stays a diff: its lines keep their first column.
	if got := Plain("```\n-a\n+b\n```", ""); got != "-a\n+b" {
		t.Errorf("Plain piped = %q", got)
	}
	if got := Plain("done :white_check_mark: now", ""); got != "done now" {
		t.Errorf("Plain = %q", got)
	}
}

// The history keeps the lines typed, without blanks and repeats, and with a
// file it is there again in the next session.
func TestHistoryFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history")
	h, err := OpenHistory(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"status checkout", "status checkout", "", "  ", "history checkout prod", "yes"} {
		h.Add(l)
	}
	if h.Len() != 3 || h.At(0) != "yes" || h.At(2) != "status checkout" {
		t.Fatalf("history: len %d, %q %q", h.Len(), h.At(0), h.At(h.Len()-1))
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if string(b) != "status checkout\nhistory checkout prod\nyes\n" {
		t.Fatalf("file: %q", b)
	}
	h2, err := OpenHistory(path)
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close()
	if h2.Len() != 3 || h2.At(1) != "history checkout prod" {
		t.Fatalf("reopened: len %d", h2.Len())
	}
	m := NewHistory()
	for i := 0; i < maxHistory+10; i++ {
		m.Add(strings.Repeat("x", i%7+1) + string(rune('a'+i%26)))
	}
	if m.Len() != maxHistory {
		t.Errorf("len %d, want %d", m.Len(), maxHistory)
	}
}
