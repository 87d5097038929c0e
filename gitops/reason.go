package gitops

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxReasonRunes caps every free-text reason shipbot stores: a --why, a
// freeze's reason, a rejection's. Longer text is cut and ends with "…".
const MaxReasonRunes = 300

// Reason is the one normalisation of a free-text reason before it lands in
// a commit, a trailer, a record or .shipbot/freezes.yaml (see Normalize).
func Reason(s string) string { return Normalize(s, MaxReasonRunes) }

// Normalize makes hostile chat text safe to store and show on one line:
//
//   - control characters (C0, DEL, C1: CR, LF, tab, NEL...), line and
//     paragraph separators and every other Unicode space become a space;
//   - format characters (bidi overrides and isolates, zero-width spaces and
//     joiners, BOM, soft hyphen) are dropped, so the text reads as it is;
//   - invalid UTF-8 becomes U+FFFD;
//   - runs of spaces collapse to one, the ends are trimmed;
//   - the result is cut to max runes (max <= 0: no cap), the last one
//     being "…".
func Normalize(s string, max int) string {
	limit := max
	if limit <= 0 {
		limit = len(s) + 1 // never reached: a rune takes at least a byte
	}
	var b strings.Builder
	b.Grow(min(len(s), 4*min(limit, len(s)+1)+8))
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
		if n > limit { // enough to know it must be cut
			break
		}
	}
	out := b.String()
	if n <= limit {
		return out
	}
	runes := []rune(out)[:limit-1]
	return strings.TrimRight(string(runes), " ") + "…"
}
