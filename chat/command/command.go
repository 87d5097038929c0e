// Package command parses chat lines into gitops requests. It is the one
// parser every chat front end uses (terminal chat, Slack slash command,
// @mention, DM), so a command means the same thing wherever it is typed.
//
// Grammar (keywords are ASCII case-insensitive; names are kept as typed):
//
//	[/ship | ship | <@BOTID>[:]] COMMAND ARGS... [--FLAG...] [--why TEXT] [--FLAG...]
//
//	rollback APP ENV [to TAG] --why TEXT
//	restart APP ENV --why TEXT
//	promote APP FROM to TO --why TEXT
//	status APP
//	history APP ENV [N]
//	help [COMMAND]
//	... (table in help.go)
//
// Words are split shell-like (quotes group, nothing expands). --why (or
// --why=, or "—why" as smart punctuation types it) starts the reason: a
// quoted text ("...", '...', or curly quotes), or the words up to the next
// --flag or the end of the line, kept as typed. A clause (to TAG, until
// WHEN) written after an unquoted reason could be part of it or the
// clause: Parse asks instead of guessing. --help (or -h) asks for the
// usage of the command.
package command

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/shipbot/shipbot/gitops"
)

const (
	// maxLineBytes bounds a whole chat line, --why text included.
	maxLineBytes = 4096
	// maxLimit is the largest N history accepts.
	maxLimit = 100
)

// words are a line's words sorted into arguments and flags.
type words struct {
	args       []token // the command word first
	unknown    []token // unknown flags
	wantHelp   bool
	breakGlass bool
	until      string
	wantUntil  bool // --until without a value
}

// sortWords sorts words into positional arguments and flags. The word right
// after the keyword "to" or "until" is always a value, so "to -x" is
// reported as a bad tag or name rather than as an unknown flag.
func sortWords(ws []token) words {
	var f words
	for i, w := range ws {
		switch {
		case f.wantUntil:
			f.until, f.wantUntil = w.text, false
		case !w.flag || i > 0 && !ws[i-1].flag && (keyword(ws[i-1].text, "to") || keyword(ws[i-1].text, "until")):
			f.args = append(f.args, w)
		case keyword(w.text, "--help") || keyword(w.text, "-h"):
			f.wantHelp = true
		case keyword(w.text, "--break-glass"):
			f.breakGlass = true
		case keyword(w.text, "--until"):
			f.wantUntil = true
		case len(w.text) > 8 && keyword(w.text[:8], "--until="):
			f.until = w.text[8:]
		default:
			f.unknown = append(f.unknown, w)
		}
	}
	return f
}

// Parse turns one chat line into a request. It fills Action, App, Env,
// FromEnv, Tag, Why, Until, BreakGlass, Proposal and Limit only (identity,
// channel, id and time are set by the front end). Errors are
// *gitops.UserError whose Message says what was wrong and what would work,
// with the usage line of the command.
func Parse(line string) (gitops.Request, error) {
	switch {
	case len(line) > maxLineBytes:
		return gitops.Request{}, TooLong(len(line))
	case strings.IndexByte(line, 0) >= 0:
		return gitops.Request{}, gitops.Userf("the message contains a NUL byte; remove it and send the command again")
	case !utf8.ValidString(line):
		return gitops.Request{}, gitops.Userf("the message is not valid UTF-8; retype the command")
	}
	body := stripPrefix(strings.TrimSpace(line))

	lx, err := lex(body)
	if err != nil {
		ue := err.(*gitops.UserError)
		if f := strings.Fields(body); len(f) > 0 {
			if a, ok := lookup(f[0]); ok {
				return gitops.Request{}, usageErr(a, ue.Message)
			}
		}
		return gitops.Request{}, ue
	}
	f := sortWords(lx.words)

	if len(f.args) == 0 {
		switch {
		case len(f.unknown) > 0:
			return gitops.Request{}, gitops.Userf("unknown flag %s. Type help to see the commands", quote(f.unknown[0].text))
		case f.wantHelp:
			return gitops.Request{Action: gitops.ActionHelp}, nil
		case lx.hasWhy:
			return gitops.Request{}, gitops.Userf("--why must come after a command, e.g. %s. Type help to see the commands",
				Usage(gitops.ActionRollback))
		}
		return gitops.Request{}, gitops.Userf("empty command. Type help to see what I can do (commands: %s)", commandList())
	}

	action, ok := lookup(f.args[0].text)
	if !ok {
		return gitops.Request{}, unknownCommand(f.args[0].text)
	}
	sp := specs[action]
	if len(f.unknown) > 0 {
		msg := fmt.Sprintf("unknown flag %s; the flags are --why TEXT, --break-glass (rollback, restart, promote), --until WHEN (freeze) and --help", quote(f.unknown[0].text))
		if f.unknown[0].afterWhy && !lx.whyQuoted {
			msg += fmt.Sprintf(". The reason after --why ends at the next --flag: to keep %s in the reason, quote it (--why \"...\")", quote(f.unknown[0].text))
		}
		return gitops.Request{}, usageErr(action, msg)
	}
	if f.wantUntil {
		return gitops.Request{}, usageErr(action, "--until needs a time after it, e.g. --until 2026-11-28T08:00 or --until 4h")
	}
	if f.breakGlass && action != gitops.ActionRollback && action != gitops.ActionRestart && action != gitops.ActionPromote {
		return gitops.Request{}, usageErr(action, "--break-glass only applies to rollback, restart and promote")
	}
	if f.wantHelp {
		return gitops.Request{Action: gitops.ActionHelp, App: string(action)}, nil
	}

	// A clause after an unquoted reason: ask when it makes a request.
	if alt, clause, ok := clauseReading(sp, f, lx); ok {
		return gitops.Request{}, ambiguous(sp, clause, alt, f, lx)
	}

	why := ""
	if lx.hasWhy {
		if why, err = cleanWhy(lx.why); err != nil {
			return gitops.Request{}, usageErr(action, err.Error())
		}
	}
	return build(sp, f, lx, why)
}

// build checks the arguments of a command and makes its request.
func build(sp *spec, f words, lx lexed, why string) (gitops.Request, error) {
	req := gitops.Request{Action: sp.action, BreakGlass: f.breakGlass, Why: why}
	if f.until != "" {
		if sp.action != gitops.ActionFreeze {
			return gitops.Request{}, usageErr(sp.action, "--until only applies to freeze")
		}
		if !validUntil(f.until) {
			return gitops.Request{}, usageErr(sp.action, fmt.Sprintf("%s is not a time: write a date (2026-11-28), a date and time (2026-11-28T08:00, in UTC, or RFC 3339 with an offset), or a duration (30m, 4h, 2d)", quote(f.until)))
		}
		req.Until = f.until
	}
	p := &argParser{action: sp.action, whyEnd: lx.whyEnd}
	for _, a := range f.args[1:] {
		p.args = append(p.args, a.text)
		p.late = append(p.late, a.afterWhy)
	}
	if err := sp.args(p, &req); err != nil {
		return gitops.Request{}, err
	}
	return req, nil
}

// clauseReading reads the last two words of an unquoted reason as the
// command's clause ("... --why OPS-1 to 1.3.0" as "to 1.3.0"): it returns
// that request and the clause's words when they make a valid one.
func clauseReading(sp *spec, f words, lx lexed) (gitops.Request, string, bool) {
	n := len(lx.whyWords)
	if !lx.hasWhy || lx.whyQuoted || sp.clause == "" || n < 2 || !keyword(lx.whyWords[n-2], sp.clause) {
		return gitops.Request{}, "", false
	}
	rest := strings.TrimSpace(lx.why[:lx.whyAt[n-2]])
	alt := f
	alt.args = append(append([]token(nil), f.args...), token{text: lx.whyWords[n-2]}, token{text: lx.whyWords[n-1]})
	req, err := build(sp, alt, lexed{}, rest)
	if err != nil {
		return gitops.Request{}, "", false
	}
	return req, lx.whyWords[n-2] + " " + lx.whyWords[n-1], true
}

// ambiguous is the answer to a request whose words mean two things: the
// clause after the reason is part of it, or the command's clause. It
// plans nothing and shows both readings, spelled so that they can't be
// misread.
func ambiguous(sp *spec, clause string, alt gitops.Request, f words, lx lexed) *gitops.UserError {
	what := sp.clause
	if fs := strings.Fields(strings.NewReplacer("[", " ", "]", " ").Replace(sp.usage)); len(fs) > 0 {
		for i := range fs[:len(fs)-1] {
			if fs[i] == sp.clause {
				what = fs[i] + " " + fs[i+1]
			}
		}
	}
	msg := fmt.Sprintf("%q after the reason could be part of it or the %s of %s, so I did not plan anything (a reason ends at the next --flag, or where its quotes close). ",
		clause, quoteClause(what), sp.action)
	alts := []string{Spell(alt)}
	if why, err := cleanWhy(lx.why); err == nil {
		if whole, err := build(sp, f, lx, why); err == nil {
			alts = append(alts, Spell(whole))
		}
	}
	if len(alts) == 1 {
		return &gitops.UserError{Message: msg + "Did you mean:\n  " + alts[0]}
	}
	return &gitops.UserError{Message: msg + "Send one of:\n  " + strings.Join(alts, "\n  ")}
}

func quoteClause(s string) string { return "`" + s + "`" }

// TooLong is the answer to a message of n bytes, over the limit of a
// command: the same wherever the message was typed, however long it is.
func TooLong(n int) *gitops.UserError {
	return gitops.Userf(
		"that message is %d bytes long; a command may be at most %d bytes (4 KiB). Shorten the --why text, e.g. to an incident link",
		n, maxLineBytes)
}

// cleanWhy trims the reason; an empty one is an error.
func cleanWhy(raw string) (string, error) {
	w := strings.TrimSpace(raw)
	if w == "" {
		return "", fmt.Errorf("--why needs a reason after it, e.g. --why https://acme.pagerduty.com/incidents/P1X2Y3Z or --why OPS-123 checkout errors")
	}
	return w, nil
}

// argParser checks the positional arguments of one command.
type argParser struct {
	action gitops.Action
	args   []string // after the command word
	late   []bool   // args[i] came after the --why reason
	whyEnd string   // the --flag that ended the reason
}

func (p *argParser) fail(format string, a ...any) error {
	return usageErr(p.action, fmt.Sprintf(format, a...))
}

// need reports an error when fewer than len(names) arguments are present,
// naming the first missing one.
func (p *argParser) need(names ...string) error {
	if len(p.args) < len(names) {
		return p.fail("missing %s", names[len(p.args)])
	}
	return nil
}

// atMost reports the first argument beyond the first n.
func (p *argParser) atMost(n int) error {
	if len(p.args) > n {
		return p.unexpected(n, "")
	}
	return nil
}

// unexpected reports args[i] as one too many, with hint (or a better one:
// a reason typed without --why, words read as arguments after a reason).
func (p *argParser) unexpected(i int, hint string) error {
	w := p.args[i]
	switch {
	case p.late[i] && p.whyEnd != "":
		hint = ": " + reasonEnds(p.whyEnd)
	case reasonWord(w):
		rest := strings.Join(p.args[i+1:], " ")
		if rest == "" {
			rest = "TEXT"
		}
		hint = fmt.Sprintf(` (to give a reason, write "--why %s")`, rest)
	}
	return p.fail("unexpected argument %s%s", quote(w), hint)
}

// reasonWord reports whether w is a word people type for --why.
func reasonWord(w string) bool {
	w = strings.TrimRight(w, ":")
	return keyword(w, "why") || keyword(w, "because") || keyword(w, "reason")
}

func (p *argParser) name(what, s string) error {
	if err := checkName(what, s); err != nil {
		return usageErr(p.action, err.(*gitops.UserError).Message)
	}
	return nil
}

func (p *argParser) rollback(req *gitops.Request) error {
	if err := p.need("APP", "ENV"); err != nil {
		return err
	}
	if len(p.args) > 2 {
		if !keyword(p.args[2], "to") {
			hint := ""
			if looksLikeTag(p.args[2]) {
				hint = fmt.Sprintf(` (to roll back to a tag, write "to %s")`, p.args[2])
			}
			return p.unexpected(2, hint)
		}
		if len(p.args) == 3 {
			return p.fail(`missing TAG after "to"`)
		}
		if err := p.atMost(4); err != nil {
			return err
		}
	}
	if err := p.name("app", p.args[0]); err != nil {
		return err
	}
	if err := p.name("environment", p.args[1]); err != nil {
		return err
	}
	req.App, req.Env = p.args[0], p.args[1]
	if len(p.args) == 4 {
		if err := ValidTag(p.args[3]); err != nil {
			return usageErr(p.action, err.(*gitops.UserError).Message)
		}
		req.Tag = p.args[3]
	}
	return nil
}

// looksLikeTag reports whether a stray word is plausibly a tag someone
// meant to roll back to: a valid tag with a digit in it, or "latest".
func looksLikeTag(w string) bool {
	return ValidTag(w) == nil && (strings.ContainsAny(w, "0123456789") || keyword(w, "latest"))
}

// appEnv checks the APP ENV arguments a per-app command starts with, and
// that there are at most max arguments in all.
func (p *argParser) appEnv(req *gitops.Request, max int) error {
	if err := p.need("APP", "ENV"); err != nil {
		return err
	}
	if err := p.atMost(max); err != nil {
		return err
	}
	if err := p.name("app", p.args[0]); err != nil {
		return err
	}
	if err := p.name("environment", p.args[1]); err != nil {
		return err
	}
	req.App, req.Env = p.args[0], p.args[1]
	return nil
}

func (p *argParser) restart(req *gitops.Request) error { return p.appEnv(req, 2) }

func (p *argParser) promote(req *gitops.Request) error {
	if len(p.args) >= 2 && keyword(p.args[1], "to") && (len(p.args) < 3 || !keyword(p.args[2], "to")) {
		// "promote checkout to staging": FROM is missing, not "to".
		to := "TO"
		if len(p.args) > 2 {
			to = p.args[2]
		}
		return p.fail(`missing FROM, the environment whose version to copy: promote %s FROM to %s`, p.args[0], to)
	}
	if err := p.need("APP", "FROM", `"to TO"`); err != nil {
		return err
	}
	if !keyword(p.args[2], "to") {
		if len(p.args) == 3 && !reasonWord(p.args[2]) && !p.late[2] {
			return p.fail(`expected "to" between FROM and TO, e.g. promote %s %s to %s`,
				p.args[0], p.args[1], p.args[2])
		}
		if reasonWord(p.args[2]) || p.late[2] {
			return p.unexpected(2, "")
		}
		return p.fail(`expected "to" after FROM, got %s`, quote(p.args[2]))
	}
	if len(p.args) == 3 {
		return p.fail(`missing TO after "to"`)
	}
	if err := p.atMost(4); err != nil {
		return err
	}
	if err := p.name("app", p.args[0]); err != nil {
		return err
	}
	if err := p.name("source environment", p.args[1]); err != nil {
		return err
	}
	if err := p.name("target environment", p.args[3]); err != nil {
		return err
	}
	if p.args[1] == p.args[3] {
		return p.fail("FROM and TO are both %q; promote copies a version between two different environments", p.args[1])
	}
	req.App, req.FromEnv, req.Env = p.args[0], p.args[1], p.args[3]
	return nil
}

// one checks a command whose only argument is one name (usage NAME, e.g.
// APP or ENV; what, e.g. "environment", in errors) and stores it in dst.
func (p *argParser) one(usage, what string, dst *string) error {
	if err := p.need(usage); err != nil {
		return err
	}
	if err := p.atMost(1); err != nil {
		return err
	}
	if err := p.name(what, p.args[0]); err != nil {
		return err
	}
	*dst = p.args[0]
	return nil
}

func (p *argParser) status(req *gitops.Request) error { return p.one("APP", "app", &req.App) }

func (p *argParser) history(req *gitops.Request) error {
	if err := p.appEnv(req, 3); err != nil {
		return err
	}
	if len(p.args) == 3 {
		n, ok := smallNumber(p.args[2])
		if !ok || n < 1 || n > maxLimit {
			return p.fail("N must be a whole number from 1 to %d, got %s", maxLimit, quote(p.args[2]))
		}
		req.Limit = n
	}
	return nil
}

func (p *argParser) freeze(req *gitops.Request) error {
	if err := p.need("ENV"); err != nil {
		return err
	}
	if len(p.args) > 1 {
		if !keyword(p.args[1], "until") {
			return p.unexpected(1, "")
		}
		if len(p.args) == 2 {
			return p.fail(`missing WHEN after "until"`)
		}
		if err := p.atMost(3); err != nil {
			return err
		}
		if !validUntil(p.args[2]) {
			return p.fail("%s is not a time: write a date (2026-11-28), a date and time (2026-11-28T08:00), or a duration (30m, 4h, 2d)", quote(p.args[2]))
		}
		if req.Until != "" {
			return p.fail("the end of the freeze is given twice (until %s and --until %s); give one", p.args[2], req.Until)
		}
		req.Until = p.args[2]
	}
	if err := p.name("environment", p.args[0]); err != nil {
		return err
	}
	if req.Why == "" {
		return p.fail("a freeze needs a reason: --why TEXT")
	}
	req.Env = p.args[0]
	return nil
}

func (p *argParser) unfreeze(req *gitops.Request) error {
	return p.one("ENV", "environment", &req.Env)
}

func (p *argParser) health(req *gitops.Request) error { return p.one("ENV", "environment", &req.Env) }

// unpin checks APP ENV, and that there is a reason.
func (p *argParser) unpin(req *gitops.Request) error {
	if err := p.appEnv(req, 2); err != nil {
		return err
	}
	if req.Why == "" {
		return p.fail("lifting a pin needs a reason: --why TEXT")
	}
	return nil
}

// pins checks the optional ENV of pins.
func (p *argParser) pins(req *gitops.Request) error {
	if err := p.atMost(1); err != nil {
		return err
	}
	if len(p.args) == 1 {
		if err := p.name("environment", p.args[0]); err != nil {
			return err
		}
		req.Env = p.args[0]
	}
	return nil
}

// freezes takes no argument: it lists every environment's freezes.
func (p *argParser) freezes(*gitops.Request) error { return p.atMost(0) }

// review checks the REQUEST-ID of approve and reject.
func (p *argParser) review(req *gitops.Request) error {
	if err := p.need("REQUEST-ID"); err != nil {
		return err
	}
	if err := p.atMost(1); err != nil {
		return err
	}
	id := strings.ToLower(strings.Trim(p.args[0], "[]"))
	if !gitops.ValidRequestID(id) {
		return p.fail("%s is not a request id; they look like shp-abcde23456 (the proposal's reply and `proposals` show them)", quote(p.args[0]))
	}
	req.Proposal = id
	return nil
}

// reject checks the REQUEST-ID of reject, and that there is a reason.
func (p *argParser) reject(req *gitops.Request) error {
	if err := p.review(req); err != nil {
		return err
	}
	if req.Why == "" {
		return p.fail("a rejection needs a reason: --why TEXT")
	}
	return nil
}

// proposals checks the optional APP and ENV of proposals.
func (p *argParser) proposals(req *gitops.Request) error {
	if err := p.atMost(2); err != nil {
		return err
	}
	if len(p.args) > 0 {
		if err := p.name("app", p.args[0]); err != nil {
			return err
		}
		req.App = p.args[0]
	}
	if len(p.args) > 1 {
		if err := p.name("environment", p.args[1]); err != nil {
			return err
		}
		req.Env = p.args[1]
	}
	return nil
}

// untilForm is what --until / until accepts; the core interprets it.
var untilForm = regexp.MustCompile(`^(\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2})?(Z|[+-]\d{2}:\d{2})?)?|\d{1,4}[mhd])$`)

func validUntil(s string) bool { return untilForm.MatchString(s) }

func (p *argParser) help(req *gitops.Request) error {
	if err := p.atMost(1); err != nil {
		return err
	}
	if len(p.args) == 1 {
		topic, ok := lookup(p.args[0])
		if !ok {
			msg := "no help for " + quote(p.args[0])
			if s := suggest(p.args[0]); s != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", s)
			}
			return p.fail("%s. Commands: %s", msg, commandList())
		}
		req.App = string(topic)
	}
	return nil
}

// smallNumber parses a decimal number of at most 4 ASCII digits (no sign).
func smallNumber(s string) (int, bool) {
	if s == "" || len(s) > 4 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

// usageErr ends msg with the usage line of a.
func usageErr(a gitops.Action, msg string) *gitops.UserError {
	if !strings.HasSuffix(msg, ".") && !strings.HasSuffix(msg, "?") {
		msg += "."
	}
	return &gitops.UserError{Message: msg + " Usage: " + Usage(a)}
}

func unknownCommand(word string) *gitops.UserError {
	msg := "unknown command " + quote(word)
	if s := suggest(word); s != "" {
		msg += fmt.Sprintf("; did you mean %s? (%s)", s, Usage(s))
	}
	return &gitops.UserError{Message: msg + ". Commands: " + commandList() + ". Type help for details"}
}
