package local

import (
	"regexp"
	"strings"
)

// emojiWords are the Slack emoji codes shipbot's replies use, as plain
// text: a word that carries the meaning, or nothing where the text says it.
var emojiWords = map[string]string{
	"rotating_light":         "!!",
	"warning":                "warning:",
	"white_check_mark":       "",
	"x":                      "",
	"no_entry":               "",
	"no_entry_sign":          "",
	"hourglass_flowing_sand": "",
	"eyes":                   "",
	"mag":                    "",
	"information_source":     "",
	"busts_in_silhouette":    "",
}

// emojiCode is a :code: standing alone (not inside a time like 09:00:00 or
// a name like slack:sre-oncall).
var emojiCode = regexp.MustCompile(`(^|[ \t]):([a-z0-9_+-]+):([ \t]|$)`)

// Plain renders a reply written for chat (Slack's markup) as plain text for
// a terminal: the ``` fences of a code block are dropped and the block's
// lines are indented by indent; the emoji codes shipbot uses become a word
// or nothing. Other text, `inline code` included, is kept.
func Plain(text, indent string) string {
	lines := strings.Split(text, "\n")
	out := lines[:0]
	inBlock := false
	for _, l := range lines {
		if strings.TrimSpace(l) == "```" {
			inBlock = !inBlock
			continue
		}
		if inBlock {
			out = append(out, indent+l)
			continue
		}
		out = append(out, emojiCode.ReplaceAllStringFunc(l, func(m string) string {
			sub := emojiCode.FindStringSubmatch(m)
			word, ok := emojiWords[sub[2]]
			switch {
			case !ok:
				return m
			case word == "" && sub[1] != "" && sub[3] != "":
				return sub[1] // one space stays between the words around it
			case word == "":
				return ""
			}
			return sub[1] + word + sub[3]
		}))
	}
	return strings.Join(out, "\n")
}
