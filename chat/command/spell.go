package command

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/shipbot/shipbot/gitops"
)

// Spell writes req as a chat line that Parse reads back as req: the
// command's words in their usual order, flags, and the reason last, quoted
// when its words could be read as anything else. Replies use it to show a
// command that can't be misread.
func Spell(req gitops.Request) string {
	s, _ := spell(req)
	return s
}

// spell is Spell; it reports false when the reason needs quotes but
// contains both kinds, so that no quoting keeps it whole.
func spell(req gitops.Request) (string, bool) {
	words := []string{string(req.Action)}
	switch req.Action {
	case gitops.ActionRollback:
		words = append(words, req.App, req.Env)
		if req.Tag != "" {
			words = append(words, "to", req.Tag)
		}
	case gitops.ActionPromote:
		words = append(words, req.App, req.FromEnv, "to", req.Env)
	case gitops.ActionHistory:
		words = append(words, req.App, req.Env)
		if req.Limit != 0 {
			words = append(words, strconv.Itoa(req.Limit))
		}
	case gitops.ActionFreeze:
		words = append(words, req.Env)
		if req.Until != "" {
			words = append(words, "until", req.Until)
		}
	case gitops.ActionApprove, gitops.ActionReject:
		words = append(words, req.Proposal)
	default:
		// APP and/or ENV, in that order, when set; help's topic is App.
		for _, w := range []string{req.App, req.Env} {
			if w != "" {
				words = append(words, w)
			}
		}
	}
	if req.BreakGlass {
		if last := words[len(words)-1]; keyword(last, "to") || keyword(last, "until") {
			// A name "to" last: the word after it would be its value.
			words = append(words[:1], append([]string{"--break-glass"}, words[1:]...)...)
		} else {
			words = append(words, "--break-glass")
		}
	}
	ok := true
	if req.Why != "" {
		var w string
		w, ok = spellWhy(req.Why)
		words = append(words, "--why", w)
	}
	return strings.Join(words, " "), ok
}

// spellWhy writes a reason after --why: as typed when no word of it could
// end it or be read as a clause, else quoted with a quote it does not
// contain.
func spellWhy(why string) (string, bool) {
	plain := true
	if r, _ := utf8.DecodeRuneInString(why); quoteClosers(r) != "" {
		plain = false
	}
	for _, w := range strings.Fields(why) {
		if isOption(w) || keyword(w, "to") || keyword(w, "until") {
			plain = false
		}
	}
	if plain {
		return why, true
	}
	for _, q := range []string{`"`, `'`} {
		if !strings.Contains(why, q) {
			return q + why + q, true
		}
	}
	return `"` + why + `"`, false
}
