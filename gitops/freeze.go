package gitops

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shipbot/shipbot/gitops/edit"
	"github.com/shipbot/shipbot/templates"
)

// FreezesPath is the file in the environment repo where freezes set with
// `freeze ENV` live, so that they are versioned and audited like any change.
const FreezesPath = ".shipbot/freezes.yaml"

// TrailerBreakGlass records that a freeze was overridden.
const TrailerBreakGlass = "Break-glass"

// TrailerJustificationChecked records the live check of the justification.
const TrailerJustificationChecked = "Justification-Checked"

// Freeze is a freeze set with `freeze ENV` (stored in FreezesPath).
type Freeze struct {
	Env     string    `yaml:"env"`
	By      string    `yaml:"by"`
	Why     string    `yaml:"why"`
	Since   time.Time `yaml:"since"`
	Until   time.Time `yaml:"until,omitempty"` // zero: until unfreeze
	Request string    `yaml:"request"`
}

type freezeFile struct {
	Freezes []Freeze `yaml:"freezes"`
}

// FreezeWindow is a recurring freeze from the configuration, e.g. prod from
// Friday 16:00 to Monday 08:00 in Europe/Berlin.
type FreezeWindow struct {
	Name     string
	Envs     []string
	Actions  []Action // actions blocked during the window (default: promote)
	Location *time.Location
	From, To WeekTime
}

// WeekTime is a time of the week: a weekday and a time of day.
type WeekTime struct {
	Day          time.Weekday
	Hour, Minute int
}

func (w WeekTime) minutes() int { return int(w.Day)*24*60 + w.Hour*60 + w.Minute }

func (w WeekTime) String() string {
	return fmt.Sprintf("%s %02d:%02d", w.Day.String()[:3], w.Hour, w.Minute)
}

var weekTime = regexp.MustCompile(`^(?i)(mon|tue|wed|thu|fri|sat|sun)[a-z]*\s+(\d{1,2}):(\d{2})$`)

// ParseWeekTime reads "Fri 16:00".
func ParseWeekTime(s string) (WeekTime, error) {
	m := weekTime.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return WeekTime{}, fmt.Errorf("%q is not a time of the week like \"Fri 16:00\"", s)
	}
	days := map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday, "thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}
	h, _ := strconv.Atoi(m[2])
	mi, _ := strconv.Atoi(m[3])
	if h > 23 || mi > 59 {
		return WeekTime{}, fmt.Errorf("%q is not a time of day", s)
	}
	return WeekTime{Day: days[strings.ToLower(m[1])], Hour: h, Minute: mi}, nil
}

// Active reports whether t falls in the window (which may wrap the week).
func (w FreezeWindow) Active(t time.Time) bool {
	t = t.In(w.Location)
	now := WeekTime{Day: t.Weekday(), Hour: t.Hour(), Minute: t.Minute()}.minutes()
	from, to := w.From.minutes(), w.To.minutes()
	if from <= to {
		return now >= from && now < to
	}
	return now >= from || now < to
}

func (w FreezeWindow) blocks(env string, a Action) bool {
	return slices.Contains(w.Envs, env) && slices.Contains(w.actions(), a)
}

// actions are the actions the window blocks (default: promote).
func (w FreezeWindow) actions() []Action {
	if len(w.Actions) == 0 {
		return []Action{ActionPromote}
	}
	return w.Actions
}

// readFreezes reads the freezes stored in the repo at f.
func readFreezes(f edit.Files) ([]Freeze, error) {
	doc, err := readOwned[freezeFile](f, FreezesPath)
	return doc.Freezes, err
}

// renderFreezes writes the freezes file.
func renderFreezes(list []Freeze) ([]byte, error) {
	return renderOwned("# Freezes set with `freeze ENV` / lifted with `unfreeze ENV`. Managed by shipbot:\n# every change to this file is a commit with who, why and the request id.\n", freezeFile{Freezes: list})
}

// frozen says why action is blocked in env at now (every freeze that
// blocks it: the windows of the configuration, then the freeze set with
// `freeze`), or "" when it is not.
func (s *Service) frozen(f edit.Files, env string, a Action, now time.Time) (string, error) {
	var why []string
	for _, w := range s.o.FreezeWindows {
		if w.blocks(env, a) && w.Active(now) {
			why = append(why, fmt.Sprintf("%s is in the %q freeze window (%s)", env, w.Name, w.Schedule()))
		}
	}
	if slices.Contains(s.o.FreezeBlocks, a) {
		list, err := readFreezes(f)
		if err != nil {
			return "", err
		}
		for _, fr := range list {
			if fr.Env != env || !fr.active(now) {
				continue
			}
			why = append(why, fmt.Sprintf("%s was frozen by %s %s (%s)", env, OneLine(fr.By), fr.untilText(), Reason(fr.Why)))
			break
		}
	}
	return strings.Join(why, "; and "), nil
}

// checkFreeze refuses a blocked action during a freeze, and a promotion
// into a pinned app, unless the request breaks glass with the right and a
// justification.
func (s *Service) checkFreeze(ctx context.Context, f edit.Files, p *Plan) error {
	req := p.Request
	now := s.o.Now()
	frozen, err := s.frozen(f, req.Env, req.Action, now)
	if err != nil {
		return err
	}
	pin := ""
	if req.Action == ActionPromote {
		if pin, err = s.pinned(f, req.App, req.Env, now); err != nil {
			return err
		}
	}
	if frozen == "" && pin == "" {
		return nil
	}
	why, sentinel := frozen, ErrFrozen
	switch {
	case frozen == "":
		why, sentinel = pin, ErrPinned
	case pin != "":
		why = frozen + "; and " + pin
	}
	if !req.BreakGlass {
		msg := fmt.Sprintf("%s: %s is blocked; rollback and restart still work. Someone allowed to break glass can add --break-glass with a justification.", why, req.Action)
		if pin != "" {
			msg = fmt.Sprintf("%s: %s into it is refused while it is pinned; lift the pin with %s. Rollback and restart still work; someone allowed to break glass can add --break-glass with a justification.", why, req.Action, unpinCommand(req.App, req.Env))
		}
		return &UserError{Message: msg, Err: sentinel}
	}
	d, err := s.o.Authorizer.Authorize(ctx, AuthzQuery{Subject: req.subject(), Env: req.Env, Cluster: p.Environment.Cluster, App: req.App, Action: ActionBreakGlass})
	if err != nil {
		return err
	}
	if !d.Allowed {
		return &UserError{Message: fmt.Sprintf("%s, and %s may not break glass: %s", why, req.User, d.Reason), Err: sentinel}
	}
	if p.Justification.Text == "" {
		return &UserError{Message: fmt.Sprintf("%s: breaking glass needs a justification (--why)", why), Err: sentinel}
	}
	if err := d.Justification.check(req, p.Justification); err != nil {
		return &UserError{Message: fmt.Sprintf("%s: breaking glass: %s", why, userMessage(err)), Err: sentinel}
	}
	p.BreakGlass = why
	p.bgWhat = overrides(frozen, pin)
	return nil
}

// ErrFrozen means the environment is frozen for the action.
var ErrFrozen = errors.New("environment frozen")

// ErrAlreadyFrozen means a freeze asked for an environment that is frozen
// already.
var ErrAlreadyFrozen = errors.New("environment already frozen")

// freezeState is an environment's freeze as a plan's and a freeze commit's
// from and to say it: "open", "frozen", or "frozen until RFC 3339".
func freezeState(f *Freeze) string {
	switch {
	case f == nil:
		return "open"
	case f.Until.IsZero():
		return "frozen"
	}
	return "frozen until " + f.Until.UTC().Format(time.RFC3339)
}

// untilText says until when a freeze holds, e.g. "until 2026-11-23 09:00
// UTC" or "until someone runs `unfreeze prod`".
func (f Freeze) untilText() string {
	if f.Until.IsZero() {
		return "until someone runs `unfreeze " + f.Env + "`"
	}
	return "until " + f.Until.UTC().Format("2006-01-02 15:04 UTC")
}

// freezeText describes a freeze in one line, e.g. "frozen by bob since
// 2026-11-21 09:00 UTC until 2026-11-23 09:00 UTC (release week) [shp-...]".
func freezeText(f Freeze) string {
	text := fmt.Sprintf("frozen by %s since %s %s (%s)", OneLine(f.By), f.Since.UTC().Format("2006-01-02 15:04 UTC"), f.untilText(), Reason(f.Why))
	if f.Request != "" {
		text += " [" + OneLine(f.Request) + "]"
	}
	return text
}

// active reports whether a freeze set with `freeze` is in effect at now.
func (f Freeze) active(now time.Time) bool {
	return f.Until.IsZero() || now.Before(f.Until)
}

// nextAt returns the first time after now that falls on the week time wt in
// the window's time zone.
func (w FreezeWindow) nextAt(now time.Time, wt WeekTime) time.Time {
	t := now.In(w.Location)
	days := (int(wt.Day) - int(t.Weekday()) + 7) % 7
	at := time.Date(t.Year(), t.Month(), t.Day()+days, wt.Hour, wt.Minute, 0, 0, w.Location)
	if !at.After(t) {
		at = time.Date(t.Year(), t.Month(), t.Day()+days+7, wt.Hour, wt.Minute, 0, 0, w.Location)
	}
	return at
}

// Schedule is the window as people read it: "Fri 16:00 to Mon 08:00,
// Europe/Berlin".
func (w FreezeWindow) Schedule() string {
	return fmt.Sprintf("%s to %s, %s", w.From, w.To, w.Location)
}

func actionNames(list []Action) []string {
	out := make([]string, len(list))
	for i, a := range list {
		out[i] = string(a)
	}
	return out
}

// freezeViews returns what freezes env at now, as replies show it: the
// freezes set with `freeze` (list is the freezes file) and the windows of
// the configuration in effect.
func (s *Service) freezeViews(list []Freeze, env string, now time.Time) []templates.Freeze {
	var out []templates.Freeze
	for _, f := range list {
		if f.Env != env || !f.active(now) {
			continue
		}
		out = append(out, templates.Freeze{
			Env: env, By: OneLine(f.By), Why: Reason(f.Why), Request: OneLine(f.Request),
			Since: f.Since, Until: f.Until, Blocks: actionNames(s.o.FreezeBlocks), Now: now,
		})
	}
	for _, w := range s.o.FreezeWindows {
		if slices.Contains(w.Envs, env) && w.Active(now) {
			out = append(out, s.windowView(w, []string{env}, now))
		}
	}
	return out
}

// windowView shows a window of the configuration for envs: in effect until
// its end, or when it starts next.
func (s *Service) windowView(w FreezeWindow, envs []string, now time.Time) templates.Freeze {
	v := templates.Freeze{Window: w.Name, Envs: envs, Schedule: w.Schedule(), Blocks: actionNames(w.actions()), Now: now, Active: w.Active(now)}
	if len(envs) == 1 {
		v.Env = envs[0]
	}
	if v.Active {
		v.Until = w.nextAt(now, w.To)
	} else {
		v.Next = w.nextAt(now, w.From)
	}
	return v
}

// readFreezesOrNote reads the freezes file for a read-only reply; a file
// that can't be read is logged and said, never fatal to the reply.
func readFreezesOrNote(log *slog.Logger, f edit.Files) ([]Freeze, string) {
	list, err := readFreezes(f)
	if err != nil {
		log.Warn("read the freezes file", "err", err)
		return nil, fmt.Sprintf("%s can't be read (%s): freezes set with `freeze` are not shown.", FreezesPath, userMessage(err))
	}
	return list, ""
}

// freezes answers `freezes`: every freeze in effect (set with `freeze`,
// and the windows of the configuration in effect now) and every window of
// the configuration with its next start, for the environments whose status
// the requester may see.
func (s *Service) freezes(ctx context.Context, log *slog.Logger, req Request) Response {
	snap, err := s.o.Repo.Fetch(ctx)
	if err != nil {
		return s.failed(log, req, err)
	}
	list, note := readFreezesOrNote(log, snap)
	now := s.o.Now()
	var visible, hidden []string
	for _, env := range s.o.Catalog.Envs {
		if s.seesEnv(ctx, req, env) {
			visible = append(visible, env.Name)
		} else {
			hidden = append(hidden, env.Name)
		}
	}
	if len(visible) == 0 {
		return Response{Outcome: OutcomeDenied, Text: fmt.Sprintf("[%s] denied: no policy rule lets %s see the status of any app, in any environment (%s)", req.ID, req.User, strings.Join(hidden, ", "))}
	}
	data := templates.Freezes{Now: now, Note: note}
	for _, env := range visible {
		data.Active = append(data.Active, s.freezeViews(list, env, now)...)
	}
	for _, w := range s.o.FreezeWindows {
		envs := slices.DeleteFunc(slices.Clone(w.Envs), func(e string) bool { return !slices.Contains(visible, e) })
		if len(envs) > 0 {
			data.Windows = append(data.Windows, s.windowView(w, envs, now))
		}
	}
	if len(hidden) > 0 {
		data.Hidden = fmt.Sprintf("not shown: %s (the policy doesn't let %s see the status of any app there)", strings.Join(hidden, ", "), req.User)
	}
	text, err := templates.FreezesReply(data)
	if err != nil {
		return s.failed(log, req, err)
	}
	return Response{Outcome: OutcomeAnswered, Text: text}
}

// seesEnv reports whether the requester may see the status of some app in
// env (an environment without apps is seen by everyone).
func (s *Service) seesEnv(ctx context.Context, req Request, env Environment) bool {
	apps := 0
	for _, app := range s.o.Catalog.AppNames() {
		if _, ok := s.o.Catalog.Apps[app][env.Name]; !ok {
			continue
		}
		apps++
		d, err := s.o.Authorizer.Authorize(ctx, AuthzQuery{Subject: req.subject(), Env: env.Name, Cluster: env.Cluster, App: app, Action: ActionStatus})
		if err == nil && d.Allowed {
			return true
		}
	}
	return apps == 0
}

// parseUntil turns the freeze's WHEN (validated by the parser) into a time.
func parseUntil(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if n := len(s); n > 1 && strings.ContainsRune("mhd", rune(s[n-1])) {
		v, err := strconv.Atoi(s[:n-1])
		if err != nil {
			return time.Time{}, Userf("%q is not a duration like 4h", s)
		}
		unit := map[byte]time.Duration{'m': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour}[s[n-1]]
		return now.Add(time.Duration(v) * unit).UTC().Truncate(time.Second), nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			if !t.After(now) {
				return time.Time{}, Userf("%s is in the past", s)
			}
			return t.UTC(), nil
		}
	}
	return time.Time{}, Userf("%q is not a time: write 2026-11-28, 2026-11-28T08:00 (UTC) or 4h", s)
}

// computeFreeze plans a freeze or unfreeze: the new content of FreezesPath.
func (s *Service) computeFreeze(f edit.Files, p *Plan) error {
	req := p.Request
	list, err := readFreezes(f)
	if err != nil {
		return err
	}
	now := s.o.Now()
	var kept []Freeze
	var current *Freeze
	for i, fr := range list {
		if !fr.active(now) {
			continue // expired freezes are dropped on the next change
		}
		if fr.Env == req.Env {
			current = &list[i]
			continue
		}
		kept = append(kept, fr)
	}
	p.From = freezeState(current)
	switch req.Action {
	case ActionFreeze:
		if current != nil && current.Request != p.Freeze.Request {
			// A second freeze never silently replaces the first: who froze,
			// why and until when would be lost.
			return &UserError{Message: fmt.Sprintf("%s is already frozen: %s. A second freeze would replace it, so nothing was written; to change it, `unfreeze %s` first, then `freeze %s` again (`freezes` lists every freeze).", req.Env, freezeText(*current), req.Env, req.Env), Err: ErrAlreadyFrozen}
		}
		if p.Freeze.Since.IsZero() {
			// From when the freeze was asked: every re-plan of it (a
			// confirmation on another replica compares the diff) is the same.
			since := req.At
			if since.IsZero() {
				since = now
			}
			until, err := parseUntil(req.Until, since)
			if err != nil {
				return err
			}
			p.Freeze = Freeze{Env: req.Env, By: req.User, Why: Reason(req.Why), Since: since.UTC().Truncate(time.Second), Until: until, Request: req.ID}
		}
		kept = append(kept, p.Freeze)
		p.To = freezeState(&p.Freeze)
		p.Summary = fmt.Sprintf("freeze %s (%s)", req.Env, p.To)
	case ActionUnfreeze:
		if current == nil {
			return &UserError{Message: fmt.Sprintf("%s is not frozen by a `freeze` (freeze windows from the configuration can't be lifted from chat)", req.Env), Err: ErrNoChange}
		}
		p.To = "open"
		p.Summary = fmt.Sprintf("unfreeze %s", req.Env)
	}
	slices.SortFunc(kept, func(a, b Freeze) int { return strings.Compare(a.Env, b.Env) })
	content, err := renderFreezes(kept)
	if err != nil {
		return err
	}
	old, err := f.ReadFile(FreezesPath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	p.Changes = []edit.Change{{Path: FreezesPath, Old: old, New: content}}
	return nil
}
