// Package command parses chat lines into gitops requests. It is the one
// parser every chat front end uses (terminal chat, Slack slash command,
// @mention, DM), so a command means the same thing wherever it is typed.
//
// Grammar (keywords are ASCII case-insensitive; names are kept as typed):
//
//	[/ship | ship | <@BOTID>[:]] COMMAND ARGS... [--why TEXT]
//
//	rollback APP ENV [to TAG] --why TEXT
//	restart APP ENV --why TEXT
//	promote APP FROM to TO --why TEXT
//	status APP
//	history APP ENV [N]
//	help [COMMAND]
//
// Words before --why are split shell-like (quotes group, nothing expands).
// --why (or --why=, or "—why" as smart punctuation types it) takes the rest
// of the line verbatim; a single pair of quotes around the whole text is
// removed. --help (or -h) anywhere before
// --why asks for the usage of the command.
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

// Parse turns one chat line into a request. It fills Action, App, Env,
// FromEnv, Tag, Why and Limit only (identity, channel, id and time are set by
// the front end). Errors are *gitops.UserError whose Message says what was
// wrong and what would work, with the usage line of the command.
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

	// Sort words into positional arguments and flags. The word right after
	// the keyword "to" is always a value, so "to -x" is reported as a bad
	// tag or name rather than as an unknown flag.
	var args []string
	var unknown []string
	wantHelp, breakGlass := false, false
	until, wantUntil := "", false
	for i, w := range lx.words {
		switch {
		case wantUntil:
			until, wantUntil = w.text, false
		case !w.flag || i > 0 && !lx.words[i-1].flag && (keyword(lx.words[i-1].text, "to") || keyword(lx.words[i-1].text, "until")):
			args = append(args, w.text)
		case keyword(w.text, "--help") || keyword(w.text, "-h"):
			wantHelp = true
		case keyword(w.text, "--break-glass"):
			breakGlass = true
		case keyword(w.text, "--until"):
			wantUntil = true
		case len(w.text) > 8 && keyword(w.text[:8], "--until="):
			until = w.text[8:]
		default:
			unknown = append(unknown, w.text)
		}
	}

	if len(args) == 0 {
		switch {
		case len(unknown) > 0:
			return gitops.Request{}, gitops.Userf("unknown flag %s. Type help to see the commands", quote(unknown[0]))
		case wantHelp:
			return gitops.Request{Action: gitops.ActionHelp}, nil
		case lx.hasWhy:
			return gitops.Request{}, gitops.Userf("--why must come after a command, e.g. %s. Type help to see the commands",
				Usage(gitops.ActionRollback))
		}
		return gitops.Request{}, gitops.Userf("empty command. Type help to see what I can do (commands: %s)", commandList())
	}

	action, ok := lookup(args[0])
	if !ok {
		return gitops.Request{}, unknownCommand(args[0])
	}
	if len(unknown) > 0 {
		return gitops.Request{}, usageErr(action, fmt.Sprintf("unknown flag %s; the flags are --why TEXT, --break-glass (rollback, restart, promote), --until WHEN (freeze) and --help", quote(unknown[0])))
	}
	if wantUntil {
		return gitops.Request{}, usageErr(action, "--until needs a time after it, e.g. --until 2026-11-28T08:00 or --until 4h")
	}
	if breakGlass && action != gitops.ActionRollback && action != gitops.ActionRestart && action != gitops.ActionPromote {
		return gitops.Request{}, usageErr(action, "--break-glass only applies to rollback, restart and promote")
	}
	if wantHelp {
		return gitops.Request{Action: gitops.ActionHelp, App: string(action)}, nil
	}

	req := gitops.Request{Action: action, BreakGlass: breakGlass}
	if lx.hasWhy {
		raw := lx.why
		if action == gitops.ActionFreeze && until == "" {
			// `freeze prod --why release week --until 2026-11-28`: --why takes
			// the rest of the line, so a trailing --until is split off it.
			if i := strings.LastIndex(raw, " --until "); i >= 0 && len(strings.Fields(raw[i+9:])) == 1 {
				raw, until = raw[:i], strings.TrimSpace(raw[i+9:])
			}
		}
		why, err := cleanWhy(raw)
		if err != nil {
			return gitops.Request{}, usageErr(action, err.Error())
		}
		req.Why = why
	}
	if until != "" {
		if action != gitops.ActionFreeze {
			return gitops.Request{}, usageErr(action, "--until only applies to freeze")
		}
		if !validUntil(until) {
			return gitops.Request{}, usageErr(action, fmt.Sprintf("%s is not a time: write a date (2026-11-28), a date and time (2026-11-28T08:00, in UTC, or RFC 3339 with an offset), or a duration (30m, 4h, 2d)", quote(until)))
		}
		req.Until = until
	}

	p := &argParser{action: action, args: args[1:]}
	switch action {
	case gitops.ActionRollback:
		err = p.rollback(&req)
	case gitops.ActionRestart:
		err = p.restart(&req)
	case gitops.ActionPromote:
		err = p.promote(&req)
	case gitops.ActionStatus:
		err = p.status(&req)
	case gitops.ActionHistory:
		err = p.history(&req)
	case gitops.ActionHelp:
		err = p.help(&req)
	case gitops.ActionFreeze:
		err = p.freeze(&req)
	case gitops.ActionUnfreeze:
		err = p.unfreeze(&req)
	case gitops.ActionHealth:
		err = p.health(&req)
	case gitops.ActionProposals:
		err = p.proposals(&req)
	case gitops.ActionApprove:
		err = p.review(&req)
	case gitops.ActionReject:
		err = p.review(&req)
		if err == nil && req.Why == "" {
			err = p.fail("a rejection needs a reason: --why TEXT")
		}
	}
	if err != nil {
		return gitops.Request{}, err
	}
	return req, nil
}

// TooLong is the answer to a message of n bytes, over the limit of a
// command: the same wherever the message was typed, however long it is.
func TooLong(n int) *gitops.UserError {
	return gitops.Userf(
		"that message is %d bytes long; a command may be at most %d bytes (4 KiB). Shorten the --why text, e.g. to an incident link",
		n, maxLineBytes)
}

// cleanWhy turns the raw text after --why into the reason: surrounding white
// space is trimmed and, when the whole text is one quoted string (no inner
// quote of the same kind), the quotes and the white space just inside them
// are removed. Everything else is kept as typed.
func cleanWhy(raw string) (string, error) {
	w := strings.TrimSpace(raw)
	if n := len(w); n >= 2 && (w[0] == '"' || w[0] == '\'') && w[n-1] == w[0] &&
		strings.IndexByte(w[1:n-1], w[0]) < 0 {
		w = strings.TrimSpace(w[1 : n-1])
	}
	if w == "" {
		return "", fmt.Errorf("--why needs a reason after it, e.g. --why https://acme.pagerduty.com/incidents/P1X2Y3Z or --why OPS-123 checkout errors")
	}
	return w, nil
}

// argParser checks the positional arguments of one command.
type argParser struct {
	action gitops.Action
	args   []string // after the command word
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
		return p.fail("unexpected argument %s", quote(p.args[n]))
	}
	return nil
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
			if ValidTag(p.args[2]) == nil {
				hint = fmt.Sprintf(` (to roll back to a tag, write "to %s")`, p.args[2])
			}
			return p.fail("unexpected argument %s%s", quote(p.args[2]), hint)
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
	if err := p.need("APP", "FROM", `"to TO"`); err != nil {
		return err
	}
	if !keyword(p.args[2], "to") {
		if len(p.args) == 3 {
			return p.fail(`expected "to" between FROM and TO, e.g. promote %s %s to %s`,
				p.args[0], p.args[1], p.args[2])
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
			return p.fail("unexpected argument %s", quote(p.args[1]))
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
