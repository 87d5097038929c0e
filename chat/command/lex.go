package command

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/shipbot/shipbot/gitops"
)

// token is one word before --why.
type token struct {
	text string
	// flag is set when the word starts with an unquoted "--" or '-' and a
	// letter: "--force", "-x". A quoted "-x" is a plain word, and so are "-"
	// and "-1".
	flag bool
}

// lexed is a chat line split into words and the --why text.
type lexed struct {
	words  []token
	hasWhy bool
	why    string // raw text after "--why " or "--why=", untrimmed
}

// lex splits s shell-like, without any expansion: words are separated by
// white space (any Unicode space, newlines included); single or double quotes
// group characters, including spaces, into a word and are removed; adjacent
// quoted and unquoted pieces join ("a"'b'c is abc); backslashes are literal.
// Scanning stops at the first unquoted word that starts with --why (any case;
// see whyFlag) followed by the end, a space or '=': everything after it is the
// --why text, taken verbatim.
func lex(s string) (lexed, error) {
	var out lexed
	i := 0
	for {
		i += spaceLen(s[i:])
		if i >= len(s) {
			return out, nil
		}
		if rest, ok := whyFlag(s[i:]); ok {
			out.hasWhy, out.why = true, rest
			return out, nil
		}
		start := i
		var b strings.Builder
		for i < len(s) {
			r, n := utf8.DecodeRuneInString(s[i:])
			if unicode.IsSpace(r) {
				break
			}
			if r == '"' || r == '\'' {
				end := strings.IndexByte(s[i+1:], byte(r))
				if end < 0 {
					return out, &gitops.UserError{Message: unterminated(r)}
				}
				b.WriteString(s[i+1 : i+1+end])
				i += end + 2
				continue
			}
			b.WriteString(s[i : i+n])
			i += n
		}
		w := b.String()
		out.words = append(out.words, token{text: w, flag: s[start] == '-' && isFlag(w)})
	}
}

func unterminated(q rune) string {
	other := '"'
	if q == '"' {
		other = '\''
	}
	return "unterminated " + string(q) + " quote: close it, or quote the word with " + string(other) +
		" instead. Only names and tags may be quoted; the text after --why needs no quotes"
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
