package gitops

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/shipbot/shipbot/gitops/edit"
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
	actions := w.Actions
	if len(actions) == 0 {
		actions = []Action{ActionPromote}
	}
	return slices.Contains(w.Envs, env) && slices.Contains(actions, a)
}

// readFreezes reads the freezes stored in the repo at f.
func readFreezes(f edit.Files) ([]Freeze, error) {
	data, err := f.ReadFile(FreezesPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ff freezeFile
	if err := yaml.Unmarshal(data, &ff); err != nil {
		return nil, fmt.Errorf("%s: %w", FreezesPath, err)
	}
	return ff.Freezes, nil
}

// renderFreezes writes the freezes file; shipbot owns it and writes it whole.
func renderFreezes(list []Freeze) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("# Freezes set with `freeze ENV` / lifted with `unfreeze ENV`. Managed by shipbot:\n# every change to this file is a commit with who, why and the request id.\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(freezeFile{Freezes: list}); err != nil {
		return nil, err
	}
	return b.Bytes(), enc.Close()
}

// frozen says why action is blocked in env at now, or "" when it is not.
func (s *Service) frozen(f edit.Files, env string, a Action, now time.Time) (string, error) {
	for _, w := range s.o.FreezeWindows {
		if w.blocks(env, a) && w.Active(now) {
			return fmt.Sprintf("%s is in the %q freeze window (%s to %s, %s)", env, w.Name, w.From, w.To, w.Location), nil
		}
	}
	if !slices.Contains(s.o.FreezeBlocks, a) {
		return "", nil
	}
	list, err := readFreezes(f)
	if err != nil {
		return "", err
	}
	for _, fr := range list {
		if fr.Env != env || (!fr.Until.IsZero() && !now.Before(fr.Until)) {
			continue
		}
		until := "until someone runs `unfreeze " + env + "`"
		if !fr.Until.IsZero() {
			until = "until " + fr.Until.UTC().Format("2006-01-02 15:04 UTC")
		}
		return fmt.Sprintf("%s was frozen by %s %s (%s)", env, OneLine(fr.By), until, Reason(fr.Why)), nil
	}
	return "", nil
}

// checkFreeze refuses a blocked action during a freeze, unless the request
// breaks glass with the right and a justification.
func (s *Service) checkFreeze(ctx context.Context, f edit.Files, p *Plan) error {
	req := p.Request
	why, err := s.frozen(f, req.Env, req.Action, s.o.Now())
	if err != nil || why == "" {
		return err
	}
	if !req.BreakGlass {
		return &UserError{Message: fmt.Sprintf("%s: %s is blocked; rollback and restart still work. Someone allowed to break glass can add --break-glass with a justification.", why, req.Action), Err: ErrFrozen}
	}
	d, err := s.o.Authorizer.Authorize(ctx, AuthzQuery{Subject: req.subject(), Env: req.Env, Cluster: p.Environment.Cluster, App: req.App, Action: ActionBreakGlass})
	if err != nil {
		return err
	}
	if !d.Allowed {
		return &UserError{Message: fmt.Sprintf("%s, and %s may not break glass: %s", why, req.User, d.Reason), Err: ErrFrozen}
	}
	if p.Justification.Text == "" {
		return &UserError{Message: fmt.Sprintf("%s: breaking glass needs a justification (--why)", why), Err: ErrFrozen}
	}
	if err := d.Justification.check(req, p.Justification); err != nil {
		return &UserError{Message: fmt.Sprintf("%s: breaking glass: %s", why, userMessage(err)), Err: ErrFrozen}
	}
	p.BreakGlass = why
	return nil
}

// ErrFrozen means the environment is frozen for the action.
var ErrFrozen = errors.New("environment frozen")

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
		if !fr.Until.IsZero() && !now.Before(fr.Until) {
			continue // expired freezes are dropped on the next change
		}
		if fr.Env == req.Env {
			current = &list[i]
			continue
		}
		kept = append(kept, fr)
	}
	p.From = "open"
	if current != nil {
		p.From = "frozen"
		if !current.Until.IsZero() {
			p.From = "frozen until " + current.Until.Format(time.RFC3339)
		}
	}
	switch req.Action {
	case ActionFreeze:
		if p.Freeze.Since.IsZero() {
			until, err := parseUntil(req.Until, now)
			if err != nil {
				return err
			}
			p.Freeze = Freeze{Env: req.Env, By: req.User, Why: Reason(req.Why), Since: now.UTC().Truncate(time.Second), Until: until, Request: req.ID}
		}
		kept = append(kept, p.Freeze)
		p.To = "frozen"
		if !p.Freeze.Until.IsZero() {
			p.To = "frozen until " + p.Freeze.Until.Format(time.RFC3339)
		}
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
