package gitops

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/shipbot/shipbot/gitops/edit"
	"github.com/shipbot/shipbot/templates"
)

// A rollback pins the app in its environment, in the same commit: the pin
// is recorded in PinsPath (who, why, since, the tag, the request) and the
// image automation that would replace the tag (Argo CD Image Updater,
// Flux) is held back in git (see edit.HoldAutomation). While pinned,
// promotions into the app and environment are refused unless they break
// glass; rollbacks and restarts still work, and a further rollback pins
// the new tag. `unpin APP ENV` lifts the pin and restores the automation
// byte for byte.

// PinsPath is the file in the environment repo where pins live, versioned
// and audited like freezes.
const PinsPath = ".shipbot/pins.yaml"

// TrailerPin says what a commit did to the app's pin: "pinned to 1.4.1",
// "unpinned (was pinned to 1.4.1)".
const TrailerPin = "Shipbot-Pin"

// ErrPinned means the app is pinned in the environment: a promotion into
// it is refused.
var ErrPinned = errors.New("app pinned")

// Pin is an app pinned in an environment by a rollback (stored in
// PinsPath).
type Pin struct {
	App     string    `yaml:"app"`
	Env     string    `yaml:"env"`
	Tag     string    `yaml:"tag"`
	By      string    `yaml:"by"`
	Why     string    `yaml:"why"`
	Since   time.Time `yaml:"since"`
	Until   time.Time `yaml:"until,omitempty"` // zero: until unpin
	Request string    `yaml:"request"`
	// Held is the image automation the pin holds back, restored on unpin.
	Held []edit.Held `yaml:"held,omitempty"`
}

type pinFile struct {
	Pins []Pin `yaml:"pins"`
}

// readPins reads the pins stored in the repo at f.
func readPins(f edit.Files) ([]Pin, error) {
	doc, err := readOwned[pinFile](f, PinsPath)
	return doc.Pins, err
}

// renderPins writes the pins file.
func renderPins(list []Pin) ([]byte, error) {
	return renderOwned("# Pins set by `rollback APP ENV` / lifted with `unpin APP ENV`. Managed by shipbot:\n# every change to this file is a commit with who, why and the request id.\n", pinFile{Pins: list})
}

// active reports whether the pin is in effect at now.
func (p Pin) active(now time.Time) bool {
	return p.Until.IsZero() || now.Before(p.Until)
}

// pinState is a pin as an audit record's from and to say it.
func pinState(p *Pin) string {
	if p == nil {
		return "unpinned"
	}
	return "pinned to " + p.Tag
}

// text describes a pin in one line, e.g. "checkout in prod is pinned to
// 1.4.1 by alice since 2026-11-21 10:00 UTC (OPS-1) [shp-...]".
func (p Pin) text() string {
	t := fmt.Sprintf("%s in %s is pinned to %s by %s since %s", p.App, p.Env, p.Tag, OneLine(p.By), p.Since.UTC().Format("2006-01-02 15:04 UTC"))
	if !p.Until.IsZero() {
		t += " until " + p.Until.UTC().Format("2006-01-02 15:04 UTC")
	}
	t += " (" + Reason(p.Why) + ")"
	if p.Request != "" {
		t += " [" + OneLine(p.Request) + "]"
	}
	return t
}

// findPin returns the pin of app in env in list (expired or not), nil if none.
func findPin(list []Pin, app, env string) *Pin {
	for i := range list {
		if list[i].App == app && list[i].Env == env {
			return &list[i]
		}
	}
	return nil
}

// pinned says why a promotion into app in env is refused at now ("" = it
// is not pinned).
func (s *Service) pinned(f edit.Files, app, env string, now time.Time) (string, error) {
	list, err := readPins(f)
	if err != nil {
		return "", err
	}
	if p := findPin(list, app, env); p != nil && p.active(now) {
		return p.text(), nil
	}
	return "", nil
}

// unpinCommand is how to lift a pin.
func unpinCommand(app, env string) string {
	return fmt.Sprintf("`unpin %s %s --why TEXT`", app, env)
}

// computePin adds to a rollback's plan the pin it sets: the record in
// PinsPath and the automation held back, in the same changes. A pins file
// that can't be read, or automation that can't be held, never stops a
// rollback: the plan says it loudly instead.
func (s *Service) computePin(f edit.Files, p *Plan) {
	req, t := p.Request, p.Target
	warn := func(format string, a ...any) { p.Warnings = append(p.Warnings, fmt.Sprintf(format, a...)) }
	list, err := readPins(f)
	if err != nil {
		s.o.Logger.Warn("read the pins file", "request", req.ID, "err", err)
		warn("PIN NOT SET: %s can't be read (%s): this rollback lands without pinning %s in %s; fix the file", PinsPath, userMessage(err), req.App, req.Env)
		return
	}
	now := s.o.Now()
	var kept []Pin
	var prev *Pin
	for i, pin := range list {
		if pin.App == req.App && pin.Env == req.Env {
			prev = &list[i]
			continue
		}
		if !pin.active(now) && len(pin.Held) == 0 {
			continue // expired pins are dropped on the next change (unless they hold automation)
		}
		kept = append(kept, pin)
	}
	if p.Pin.Request != req.ID || p.Pin.Since.IsZero() {
		// Since is when the rollback was asked: the same on every re-plan
		// (a confirmation on another replica re-plans it and compares the
		// diff).
		since := req.At
		if since.IsZero() {
			since = now
		}
		p.Pin = Pin{App: req.App, Env: req.Env, By: req.User, Why: Reason(p.Justification.Text), Since: since.UTC().Truncate(time.Second), Request: req.ID}
	}
	p.Pin.Tag = p.To
	var before []edit.Held
	if prev != nil {
		before = prev.Held
	}
	hold, err := edit.HoldAutomation(f, t.Location, edit.HoldOptions{Changes: p.Changes, ArgoApp: t.ArgoApp, Held: before})
	if err != nil {
		s.o.Logger.Warn("hold image automation", "request", req.ID, "err", err)
		warn("AUTOMATION NOT HELD: %s; image automation may replace %s in %s", userMessage(editError(t, err)), p.To, req.Env)
		hold = edit.AutomationEdit{Held: before}
	}
	p.Pin.Held = hold.Held
	kept = append(kept, p.Pin)
	slices.SortFunc(kept, func(a, b Pin) int { return strings.Compare(a.Env+"\x00"+a.App, b.Env+"\x00"+b.App) })
	content, err := renderPins(kept)
	if err != nil {
		warn("PIN NOT SET: %s", userMessage(err))
		return
	}
	old, err := f.ReadFile(PinsPath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		warn("PIN NOT SET: %s", userMessage(err))
		return
	}
	p.Changes = edit.MergeChanges(edit.MergeChanges(p.Changes, hold.Changes), []edit.Change{{Path: PinsPath, Old: old, New: content}})
	for _, w := range hold.Warnings {
		warn("%s", OneLine(w))
	}
	note := fmt.Sprintf("pins %s in %s to %s until %s: promotions into it are refused meanwhile", req.App, req.Env, p.To, unpinCommand(req.App, req.Env))
	if prev != nil && prev.active(now) {
		note += fmt.Sprintf(" (it was pinned to %s by %s)", prev.Tag, OneLine(prev.By))
	}
	p.Notes = append(p.Notes, note)
	for _, h := range hold.Held {
		p.Notes = append(p.Notes, "holds back "+OneLine(h.String()))
	}
}

// computeUnpin plans an unpin: the pin removed from PinsPath and the
// automation it held restored.
func (s *Service) computeUnpin(f edit.Files, p *Plan) error {
	req, t := p.Request, p.Target
	list, err := readPins(f)
	if err != nil {
		return err
	}
	cur := findPin(list, req.App, req.Env)
	if cur == nil {
		return &UserError{Message: fmt.Sprintf("%s in %s is not pinned (a rollback pins; `pins` lists the pins)", req.App, req.Env), Err: ErrNoChange}
	}
	var kept []Pin
	for _, pin := range list {
		if pin.App != req.App || pin.Env != req.Env {
			kept = append(kept, pin)
		}
	}
	rel, err := edit.ReleaseAutomation(f, cur.Held)
	if err != nil {
		return editError(t, err)
	}
	content, err := renderPins(kept)
	if err != nil {
		return err
	}
	old, err := f.ReadFile(PinsPath)
	if err != nil {
		return err
	}
	p.Changes = edit.MergeChanges(rel.Changes, []edit.Change{{Path: PinsPath, Old: old, New: content}})
	p.Pin = *cur
	p.From = ""
	// What keeps running: the watch follows it.
	if p.To, err = edit.CurrentTag(f, t.Location); err != nil {
		p.To = cur.Tag
	}
	p.Summary = fmt.Sprintf("unpin %s in %s (%s)", req.App, req.Env, strings.TrimPrefix(cur.text(), fmt.Sprintf("%s in %s is ", req.App, req.Env)))
	p.Warnings, p.Notes = nil, nil
	for _, h := range rel.Held {
		p.Notes = append(p.Notes, "restores "+OneLine(h.String()))
	}
	for _, w := range rel.Warnings {
		p.Warnings = append(p.Warnings, "NOT RESTORED: "+OneLine(w))
	}
	p.Notes = append(p.Notes, fmt.Sprintf("promotions into %s in %s are allowed again", req.App, req.Env))
	return nil
}

// pinTrailer is the Shipbot-Pin trailer of a commit of p ("" = none).
func pinTrailer(p *Plan) string {
	switch {
	case p.Pin.App == "":
		return ""
	case p.Request.Action == ActionUnpin:
		return "unpinned (was pinned to " + p.Pin.Tag + ")"
	case p.Request.Action == ActionRollback:
		return "pinned to " + p.Pin.Tag
	}
	return ""
}

// pinBody is what the commit's body says about the pin: a sentence, and
// one line per automation held or restored.
func pinBody(p *Plan) (string, []string) {
	var held []string
	switch {
	case p.Pin.App == "":
		return "", nil
	case p.Request.Action == ActionRollback:
		for _, h := range p.Pin.Held {
			held = append(held, "Holds back "+OneLine(h.String())+".")
		}
		return fmt.Sprintf("Pins %s in %s to %s until `unpin %s %s`: promotions into it are refused meanwhile.", p.Pin.App, p.Pin.Env, p.Pin.Tag, p.Pin.App, p.Pin.Env), held
	case p.Request.Action == ActionUnpin:
		for _, h := range p.Pin.Held {
			held = append(held, "Restores "+OneLine(h.String())+".")
		}
		return fmt.Sprintf("Lifts the pin of %s in %s (pinned to %s by %s since %s).", p.Pin.App, p.Pin.Env, p.Pin.Tag, OneLine(p.Pin.By), p.Pin.Since.UTC().Format("2006-01-02 15:04 UTC")), held
	}
	return "", nil
}

// pinView is a pin as replies show it.
func pinView(p Pin, now time.Time) *templates.Pin {
	v := &templates.Pin{App: p.App, Env: p.Env, Tag: p.Tag, By: OneLine(p.By), Why: Reason(p.Why), Request: OneLine(p.Request),
		Since: p.Since, Until: p.Until, Now: now, Expired: !p.active(now)}
	for _, h := range p.Held {
		v.Held = append(v.Held, OneLine(h.String()))
	}
	return v
}

// readPinsOrNote reads the pins file for a read-only reply; a file that
// can't be read is logged and said, never fatal to the reply.
func readPinsOrNote(log *slog.Logger, f edit.Files) ([]Pin, string) {
	list, err := readPins(f)
	if err != nil {
		log.Warn("read the pins file", "err", err)
		return nil, fmt.Sprintf("%s can't be read (%s): pins are not shown, and promotions are refused while it can't be read.", PinsPath, userMessage(err))
	}
	return list, ""
}

// pinOf returns the view of the pin of app in env in list, nil if none.
func pinOf(list []Pin, app, env string, now time.Time) *templates.Pin {
	if p := findPin(list, app, env); p != nil {
		return pinView(*p, now)
	}
	return nil
}

// pins answers `pins [ENV]`: every pin, of the apps whose status the
// requester may see.
func (s *Service) pins(ctx context.Context, log *slog.Logger, req Request) Response {
	if req.Env != "" {
		if _, err := s.o.Catalog.Env(req.Env); err != nil {
			return s.rejected(log, req, err)
		}
	}
	snap, err := s.o.Repo.Fetch(ctx)
	if err != nil {
		return s.failed(log, req, err)
	}
	list, note := readPinsOrNote(log, snap)
	now := s.o.Now()
	data := templates.Pins{Env: req.Env, Now: now, Note: note}
	hidden, seen := 0, 0
	for _, env := range s.o.Catalog.Envs {
		if req.Env != "" && env.Name != req.Env {
			continue
		}
		for _, app := range s.o.Catalog.AppNames() {
			if _, ok := s.o.Catalog.Apps[app][env.Name]; !ok {
				continue
			}
			r := req
			r.App, r.Action = app, ActionStatus
			if resp := s.readAllowed(ctx, log, r, env); resp != nil {
				hidden++
				continue
			}
			seen++
			if v := pinOf(list, app, env.Name, now); v != nil {
				data.Pins = append(data.Pins, *v)
			}
		}
	}
	if seen == 0 && hidden > 0 {
		where := "any environment"
		if req.Env != "" {
			where = req.Env
		}
		return Response{Outcome: OutcomeDenied, Text: fmt.Sprintf("[%s] denied: no policy rule lets %s see the status of any app in %s", req.ID, req.User, where)}
	}
	if hidden > 0 {
		data.Hidden = fmt.Sprintf("not shown: the pins of %d app(s) and environment(s) whose status the policy doesn't let %s see", hidden, req.User)
	}
	text, err := templates.PinsReply(data)
	if err != nil {
		return s.failed(log, req, err)
	}
	return Response{Outcome: OutcomeAnswered, Text: text}
}

// overrides says what a break-glass change overrides, from the reasons
// that block it: "a freeze", "a pin", or both.
func overrides(freeze, pin string) string {
	switch {
	case freeze != "" && pin != "":
		return "a freeze and a pin"
	case pin != "":
		return "a pin"
	}
	return "a freeze"
}
