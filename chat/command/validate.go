package command

import (
	"fmt"
	"unicode/utf8"

	"github.com/shipbot/shipbot/gitops"
)

const (
	// tagGrammar is the OCI distribution-spec grammar of an image tag.
	tagGrammar = "[A-Za-z0-9_][A-Za-z0-9._-]{0,127}"
	// nameGrammar is the grammar of app and environment names (a DNS label,
	// RFC 1123).
	nameGrammar = "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"

	maxTagLen  = 128
	maxNameLen = 63
)

// ValidTag reports whether tag is a valid OCI image tag. Tags end up in YAML
// and commit messages, so nothing outside the grammar gets through. The error
// is a *gitops.UserError that quotes the grammar.
func ValidTag(tag string) error {
	if tag == "" {
		return gitops.Userf("the tag is empty; a tag must match %s", tagGrammar)
	}
	if len(tag) > maxTagLen {
		return gitops.Userf("invalid tag %s: it is %d characters long; a tag must match %s (at most %d characters)",
			quote(tag), utf8.RuneCountInString(tag), tagGrammar, maxTagLen)
	}
	if !tagStart(tag[0]) {
		return gitops.Userf("invalid tag %s: a tag must match %s (it cannot start with %q)",
			quote(tag), tagGrammar, firstRune(tag))
	}
	for i := 1; i < len(tag); i++ {
		if c := tag[i]; !tagStart(c) && c != '.' && c != '-' {
			r, _ := utf8.DecodeRuneInString(tag[i:])
			return gitops.Userf("invalid tag %s: a tag must match %s (%q is not allowed)",
				quote(tag), tagGrammar, r)
		}
	}
	return nil
}

func tagStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// validName reports whether s is a DNS label: nameGrammar.
func validName(s string) bool {
	if len(s) == 0 || len(s) > maxNameLen || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// checkName validates an app or environment name; what says which
// ("app", "environment", ...) for the message.
func checkName(what, s string) error {
	if validName(s) {
		return nil
	}
	var why string
	switch {
	case s == "":
		return gitops.Userf("the %s name is empty; names must match %s", what, nameGrammar)
	case len(s) > maxNameLen:
		why = fmt.Sprintf("it is %d characters long, the limit is %d", utf8.RuneCountInString(s), maxNameLen)
	case s[0] == '-' || s[len(s)-1] == '-':
		why = `it cannot start or end with "-"`
	default:
		for _, r := range s {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				why = fmt.Sprintf("%q is not allowed", r)
				break
			}
		}
	}
	msg := fmt.Sprintf("invalid %s name %s: %s; names are lowercase DNS labels matching %s (a-z, 0-9 and \"-\")",
		what, quote(s), why, nameGrammar)
	if low := asciiLower(s); low != s && validName(low) {
		msg += fmt.Sprintf(". Did you mean %q?", low)
	}
	return &gitops.UserError{Message: msg}
}

// quote renders hostile input for an error message: Go-quoted (so control
// characters and invisible runes show) and cut to a readable length.
func quote(s string) string {
	const maxRunes = 40
	if utf8.RuneCountInString(s) <= maxRunes {
		return fmt.Sprintf("%q", s)
	}
	n, i := 0, 0
	for i = range s {
		if n == maxRunes {
			break
		}
		n++
	}
	return fmt.Sprintf("%q…", s[:i])
}

func firstRune(s string) rune {
	r, _ := utf8.DecodeRuneInString(s)
	return r
}

// asciiLower lowercases ASCII letters only. Keywords are matched with ASCII
// case folding so that look-alikes such as "ſtatus" (long s) or the Kelvin
// sign do not fold into a command.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// keyword reports whether word is kw (lowercase ASCII), ignoring ASCII case.
func keyword(word, kw string) bool {
	return len(word) == len(kw) && asciiLower(word) == kw
}
