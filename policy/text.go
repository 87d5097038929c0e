package policy

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// normalize makes hostile chat text safe to store and show on one line:
//
//   - control characters (C0, DEL, C1: CR, LF, tab, NEL...), line and
//     paragraph separators and every other Unicode space become a space;
//   - format characters (bidi overrides and isolates, zero-width spaces and
//     joiners, BOM, soft hyphen) are dropped, so the text reads as it is;
//   - invalid UTF-8 becomes U+FFFD;
//   - runs of spaces collapse to one, the ends are trimmed;
//   - the result is cut to max runes, the last one being "…".
func normalize(s string, max int) string {
	var b strings.Builder
	b.Grow(min(len(s), 4*max+8))
	n := 0         // runes written
	space := false // a space is pending
	for _, r := range s {
		switch {
		case unicode.IsControl(r) || unicode.IsSpace(r) || unicode.In(r, unicode.Zl, unicode.Zp):
			space = n > 0
			continue
		case unicode.Is(unicode.Cf, r):
			continue
		}
		if space {
			b.WriteByte(' ')
			n++
			space = false
		}
		if r == utf8.RuneError {
			r = unicode.ReplacementChar
		}
		b.WriteRune(r)
		n++
		if n > max { // enough to know it must be cut
			break
		}
	}
	out := b.String()
	if n <= max {
		return out
	}
	runes := []rune(out)[:max-1]
	return strings.TrimRight(string(runes), " ") + "…"
}
