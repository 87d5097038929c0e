package command

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/shipbot/shipbot/gitops"
)

// token is one word of a chat line, outside the --why reason.
type token struct {
	text string
	// flag is set when the word starts with an unquoted "--" or '-' and a
	// letter: "--force", "-x". A quoted "-x" is a plain word, and so are "-"
	// and "-1". "—until" (a typed "--" turned into a dash by smart
	// punctuation) is the flag "--until" for the flags shipbot knows.
	flag bool
	// afterWhy is set for the words after the reason: the reason ended at
	// a --flag, or was quoted.
	afterWhy bool
}

// lexed is a chat line split into words and the --why reason.
type lexed struct {
	words  []token
	hasWhy bool
	// why is the reason as typed (untrimmed): without its quotes when
	// whyQuoted, else the text from after --why up to the next --flag or
	// the end of the line.
	why       string
	whyQuoted bool
	// whyWords are the white-space separated words of an unquoted reason,
	// at offsets whyAt in why.
	whyWords []string
	whyAt    []int
	// whyEnd is the --flag that ended an unquoted reason, "" at the end
	// of the line.
	whyEnd string
}

// lex splits s shell-like, without any expansion: words are separated by
// white space (any Unicode space, newlines included); single or double quotes
// (also the curly ones smart punctuation types) group characters, including
// spaces, into a word and are removed; adjacent quoted and unquoted pieces
// join ("a"'b'c is abc); backslashes are literal.
//
// The first unquoted word that starts with --why (any case; see whyFlag)
// followed by the end, a space or '=' starts the reason, which is either
//   - quoted: "...", '...', “...” or ‘...’ whose first closing quote is
//     followed by the end of the line, or by white space and a --flag or a
//     clause keyword (to, until); words after it are lexed as usual; or
//   - the text up to the next word that is a --flag (--break-glass,
//     --until ...), or the end of the line, kept as typed (quotes,
//     apostrophes, backslashes and all).
func lex(s string) (lexed, error) {
	var out lexed
	i := 0
	for {
		i += spaceLen(s[i:])
		if i >= len(s) {
			return out, nil
		}
		if rest, ok := whyFlag(s[i:]); ok {
			if out.hasWhy {
				return out, gitops.Userf("--why is given twice: give one reason (quote it when it contains --why: --why \"...\")")
			}
			out.hasWhy = true
			i = out.reason(s, len(s)-len(rest))
			continue
		}
		start := i
		var b strings.Builder
		for i < len(s) {
			r, n := utf8.DecodeRuneInString(s[i:])
			if unicode.IsSpace(r) {
				break
			}
			if closers := quoteClosers(r); closers != "" {
				end := strings.IndexAny(s[i+n:], closers)
				if end < 0 {
					return out, &gitops.UserError{Message: out.unterminated(r)}
				}
				b.WriteString(s[i+n : i+n+end])
				_, cn := utf8.DecodeRuneInString(s[i+n+end:])
				i += n + end + cn
				continue
			}
			b.WriteString(s[i : i+n])
			i += n
		}
		w := b.String()
		tok := token{text: w, flag: s[start] == '-' && isFlag(w), afterWhy: out.hasWhy}
		if f, ok := smartFlag(s[start:i]); ok {
			tok.text, tok.flag = f, true
		}
		out.words = append(out.words, tok)
	}
}

// reason reads the --why reason that starts at s[k:] (after "--why " or
// "--why=") and returns where lexing goes on.
func (out *lexed) reason(s string, k int) int {
	k += spaceLen(s[k:])
	if k >= len(s) {
		return k
	}
	// Quoted: when the first closing quote is where the reason can end.
	// Otherwise ('it's down', "a" and "b") the quotes are part of the text.
	if r, n := utf8.DecodeRuneInString(s[k:]); quoteClosers(r) != "" {
		if j := strings.IndexAny(s[k+n:], quoteClosers(r)); j >= 0 {
			j += k + n
			_, cn := utf8.DecodeRuneInString(s[j:])
			if endsReason(s[j+cn:]) {
				out.why, out.whyQuoted = s[k+n:j], true
				return j + cn
			}
		}
	}
	// Unquoted: up to the next --flag.
	end := k
	for j := k; ; {
		j += spaceLen(s[j:])
		if j >= len(s) {
			break
		}
		w := s[j : j+wordLen(s[j:])]
		if isOption(w) {
			out.whyEnd = w
			break
		}
		out.whyWords = append(out.whyWords, w)
		out.whyAt = append(out.whyAt, j-k)
		j += len(w)
		end = j
	}
	out.why = s[k:end]
	return end
}

// endsReason reports whether a quoted reason may end right before rest:
// at the end of the line, or before white space and then a --flag, a
// clause keyword or the end.
func endsReason(rest string) bool {
	if rest == "" {
		return true
	}
	if r, _ := utf8.DecodeRuneInString(rest); !unicode.IsSpace(r) {
		return false
	}
	rest = rest[spaceLen(rest):]
	w := rest[:wordLen(rest)]
	return w == "" || isOption(w) || keyword(w, "to") || keyword(w, "until")
}

// wordLen is the length in bytes of the word s starts with (up to white
// space; quotes are not special).
func wordLen(s string) int {
	if i := strings.IndexFunc(s, unicode.IsSpace); i >= 0 {
		return i
	}
	return len(s)
}

// quoteClosers returns the runes that close a quote opened with r, or ""
// when r opens none. Curly quotes close with their partner or the straight
// quote, as phones and chat clients mix them.
func quoteClosers(r rune) string {
	switch r {
	case '"':
		return `"`
	case '\'':
		return "'"
	case '\u201c', '\u201e': // “ „
		return "\u201d\u201c\""
	case '\u2018': // ‘
		return "\u2019'"
	}
	return ""
}

// knownFlags are the flags Parse knows, without their dashes.
var knownFlags = []string{"why", "help", "break-glass", "until"}

// isOption reports whether the raw word w is a --flag that ends an unquoted
// reason: "--" and a letter, or a flag shipbot knows typed with a dash.
func isOption(w string) bool {
	if len(w) > 2 && w[0] == '-' && w[1] == '-' && (w[2] >= 'a' && w[2] <= 'z' || w[2] >= 'A' && w[2] <= 'Z') {
		return true
	}
	_, ok := smartFlag(w)
	return ok
}

// smartFlag turns "—until" or "–break-glass" (smart punctuation's dashes
// for a typed "--") into the flag it stands for, when shipbot knows it.
func smartFlag(w string) (string, bool) {
	for _, d := range []string{"\u2014", "\u2013"} {
		rest, ok := strings.CutPrefix(w, d)
		if !ok {
			continue
		}
		name, _, _ := strings.Cut(rest, "=")
		for _, f := range knownFlags {
			if keyword(name, f) {
				return "--" + rest, true
			}
		}
	}
	return "", false
}

func (out *lexed) unterminated(q rune) string {
	if out.hasWhy && out.whyEnd != "" {
		return "unterminated " + string(q) + " quote after " + out.whyEnd + ": " + reasonEnds(out.whyEnd)
	}
	other := '"'
	if q == '"' {
		other = '\''
	}
	return "unterminated " + string(q) + " quote: close it, or quote the word with " + string(other) +
		" instead. Only names and tags may be quoted; the text after --why needs no quotes"
}

// reasonEnds explains where an unquoted reason ended, for the words read
// as arguments after it.
func reasonEnds(flag string) string {
	return "the reason after --why ends at " + flag + ", and what follows is read as arguments. " +
		"To keep it in the reason, quote the reason (--why \"...\"), or put " + flag + " before --why"
}

func isFlag(w string) bool {
	return len(w) > 1 && w[0] == '-' && (w[1] == '-' || w[1] >= 'a' && w[1] <= 'z' || w[1] >= 'A' && w[1] <= 'Z')
}

// whyFlag reports whether s starts with the --why flag and returns the text
// after it. "—why" and "–why" count too: chat clients with "smart
// punctuation" turn a typed "--" into an em or en dash.
func whyFlag(s string) (string, bool) {
	var dashes string
	for _, d := range []string{"--", "\u2014", "\u2013"} {
		if strings.HasPrefix(s, d) {
			dashes = d
			break
		}
	}
	const why = "why"
	if dashes == "" || len(s) < len(dashes)+len(why) || asciiLower(s[len(dashes):len(dashes)+len(why)]) != why {
		return "", false
	}
	rest := s[len(dashes)+len(why):]
	if rest == "" {
		return "", true
	}
	if rest[0] == '=' {
		return rest[1:], true
	}
	if r, _ := utf8.DecodeRuneInString(rest); unicode.IsSpace(r) {
		return rest, true
	}
	return "", false
}

// spaceLen returns the length in bytes of the white space s starts with.
func spaceLen(s string) int {
	return len(s) - len(strings.TrimLeftFunc(s, unicode.IsSpace))
}

// stripPrefix removes what addresses the bot: a leading Slack mention
// "<@U0123ABC>" or "<@U0123ABC|name>", optionally followed by ':', then a
// leading "/ship" or "ship" word (any case). Both are optional; s is trimmed.
func stripPrefix(s string) string {
	if strings.HasPrefix(s, "<@") {
		if end := strings.IndexByte(s, '>'); end > 0 && mentionID(s[2:end]) {
			s = strings.TrimPrefix(s[end+1:], ":")
			s = s[spaceLen(s):]
		}
	}
	for _, p := range []string{"/ship", "ship"} {
		if len(s) < len(p) || asciiLower(s[:len(p)]) != p {
			continue
		}
		rest := s[len(p):]
		if n := spaceLen(rest); rest == "" || n > 0 {
			return rest[n:]
		}
	}
	return s
}

// mentionID reports whether s is the inside of a Slack user mention after
// "<@": an id of upper-case letters and digits, optionally "|label".
func mentionID(s string) bool {
	id, _, _ := strings.Cut(s, "|")
	if id == "" {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
