package gitops

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/shipbot/shipbot/gitops/edit"
	"github.com/shipbot/shipbot/templates"
)

// readAllowed checks a read-only action against the policy for one env.
func (s *Service) readAllowed(ctx context.Context, log *slog.Logger, req Request, env Environment) *Response {
	_, resp := s.authorize(ctx, log, req, env, req.Action)
	return resp
}

func (s *Service) status(ctx context.Context, log *slog.Logger, req Request) Response {
	targets, err := s.o.Catalog.App(req.App)
	if err != nil {
		return s.rejected(log, req, err)
	}
	snap, err := s.o.Repo.Fetch(ctx)
	if err != nil {
		return s.failed(log, req, err)
	}
	data := templates.Status{App: req.App, Now: s.o.Now()}
	freezes, _ := readFreezesOrNote(log, snap)
	pins, _ := readPinsOrNote(log, snap)
	var denied []string
	var shown []Target
	h := s.historyReader()
	for _, env := range s.o.Catalog.Envs {
		t, ok := targets[env.Name]
		if !ok {
			continue
		}
		if resp := s.readAllowed(ctx, log, req, env); resp != nil {
			denied = append(denied, env.Name)
			continue
		}
		es := templates.EnvStatus{Env: env.Name, Freezes: s.freezeViews(freezes, env.Name, data.Now), Pin: pinOf(pins, req.App, env.Name, data.Now)}
		if es.Tag, err = edit.CurrentTag(snap, t.Location); err != nil {
			es.Err = userMessage(editError(t, err))
		}
		es.Restarted, _ = edit.CurrentRestart(snap, t.Location)
		last, err := h.deploys(ctx, snap, t, walk{limit: 1})
		if err != nil {
			log.Warn("read history", "env", env.Name, "err", err)
		}
		if len(last) == 1 {
			c := change(last[0])
			es.Last = &c
		}
		data.Envs = append(data.Envs, es)
		shown = append(shown, t)
	}
	for i, l := range s.live(ctx, shown) {
		data.Envs[i].Live = l
	}
	if len(data.Envs) == 0 && len(denied) > 0 {
		return Response{Outcome: OutcomeDenied, Text: fmt.Sprintf(
			"[%s] denied: no policy rule lets %s see the status of %s in any of its environments (%s); an admin can add e.g. p, %s, *, %s, status, *",
			req.ID, req.User, req.App, strings.Join(denied, ", "), req.User, req.App)}
	}
	text, err := templates.StatusReply(data)
	if err != nil {
		return s.failed(log, req, err)
	}
	return Response{Outcome: OutcomeAnswered, Text: text}
}

func (s *Service) history(ctx context.Context, log *slog.Logger, req Request) Response {
	t, env, err := s.o.Catalog.Target(req.App, req.Env)
	if err != nil {
		return s.rejected(log, req, err)
	}
	if resp := s.readAllowed(ctx, log, req, env); resp != nil {
		return *resp
	}
	snap, err := s.o.Repo.Fetch(ctx)
	if err != nil {
		return s.failed(log, req, err)
	}
	limit := req.Limit
	if limit <= 0 {
		limit = s.o.HistoryLimit
	}
	h := s.historyReader()
	deploys, err := h.deploys(ctx, snap, t, walk{limit: limit})
	if err != nil {
		return s.failed(log, req, fmt.Errorf("history of %s in %s: %w", req.App, req.Env, err))
	}
	data := templates.History{App: req.App, Env: req.Env, Now: s.o.Now()}
	for _, d := range deploys {
		data.Changes = append(data.Changes, change(d))
	}
	text, err := templates.HistoryReply(data)
	if err != nil {
		return s.failed(log, req, err)
	}
	return Response{Outcome: OutcomeAnswered, Text: text}
}

func change(d Deploy) templates.Change {
	c := templates.Change{
		Commit: d.Commit.String(), When: d.When, Action: d.Action,
		From: d.From, To: d.Tag, Who: d.RequestedBy(), Why: d.Trailers[TrailerJustification],
	}
	if d.Action == "manual" && c.Why == "" {
		c.Why = firstLine(d.Message)
	}
	if c.From == c.To {
		c.From, c.To = "", d.Tag
	}
	return c
}

// PreviousTag returns the tag a rollback of app in env without a tag would
// go back to, read from the last fetched tip.
func (s *Service) PreviousTag(ctx context.Context, app, env string) (string, error) {
	t, _, err := s.o.Catalog.Target(app, env)
	if err != nil {
		return "", err
	}
	snap, err := s.o.Repo.Head()
	if err != nil {
		return "", err
	}
	cur, err := edit.CurrentTag(snap, t.Location)
	if err != nil {
		return "", editError(t, err)
	}
	h := s.historyReader()
	return h.previousTag(ctx, snap, t, cur)
}

// liveTimeout bounds asking the controller for status.
const liveTimeout = 10 * time.Second

// live asks the controller for every target at once; nil without one.
func (s *Service) live(ctx context.Context, targets []Target) []*templates.Live {
	if s.o.Live == nil {
		return make([]*templates.Live, len(targets))
	}
	ctx, cancel := context.WithTimeout(ctx, liveTimeout)
	defer cancel()
	out := make([]*templates.Live, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() {
			st, err := s.o.Live.Status(ctx, t)
			if err != nil {
				out[i] = &templates.Live{Err: userMessage(err)}
				return
			}
			out[i] = &templates.Live{Sync: st.Sync, Health: st.Health, Revision: st.Revision, Message: OneLine(st.Message)}
		})
	}
	wg.Wait()
	return out
}

// health summarises every app of an environment: tag from git, sync and
// health from the controller, unhealthy first.
func (s *Service) health(ctx context.Context, log *slog.Logger, req Request) Response {
	env, err := s.o.Catalog.Env(req.Env)
	if err != nil {
		return s.rejected(log, req, err)
	}
	snap, err := s.o.Repo.Fetch(ctx)
	if err != nil {
		return s.failed(log, req, err)
	}
	var targets []Target
	denied := 0
	for _, app := range s.o.Catalog.AppNames() {
		t, ok := s.o.Catalog.Apps[app][env.Name]
		if !ok {
			continue
		}
		r := req
		r.App, r.Action = app, ActionStatus
		if resp := s.readAllowed(ctx, log, r, env); resp != nil {
			denied++
			continue
		}
		targets = append(targets, t)
	}
	if len(targets) == 0 && denied > 0 {
		return Response{Outcome: OutcomeDenied, Text: fmt.Sprintf("[%s] denied: no policy rule lets %s see the status of any app in %s", req.ID, req.User, env.Name)}
	}
	lives := s.live(ctx, targets)
	freezes, note := readFreezesOrNote(log, snap)
	pins, pinNote := readPinsOrNote(log, snap)
	data := templates.Health{Env: env.Name, Freezes: s.freezeViews(freezes, env.Name, s.o.Now())}
	for i, t := range targets {
		tag, err := edit.CurrentTag(snap, t.Location)
		if err != nil {
			tag = "?"
		}
		data.Apps = append(data.Apps, templates.HealthApp{App: t.App, Tag: tag, Live: lives[i], Pin: pinOf(pins, t.App, env.Name, s.o.Now())})
	}
	sort.SliceStable(data.Apps, func(i, j int) bool { return rank(data.Apps[i].Live) < rank(data.Apps[j].Live) })
	switch {
	case s.o.Live == nil:
		data.Note = "Argo CD is not configured (argo: in shipbot.yaml): tags are from git only."
	case denied > 0:
		data.Note = fmt.Sprintf("%d app(s) left out: the policy doesn't let %s see them.", denied, req.User)
	}
	for _, n := range []string{note, pinNote} {
		if n != "" {
			data.Note = strings.TrimSpace(data.Note + "\n" + n)
		}
	}
	text, err := templates.HealthReply(data)
	if err != nil {
		return s.failed(log, req, err)
	}
	return Response{Outcome: OutcomeAnswered, Text: text}
}

// rank orders health lines: broken first, healthy last.
func rank(l *templates.Live) int {
	switch {
	case l == nil:
		return 3
	case l.Err != "" || l.Health == "Degraded" || l.Health == "Missing":
		return 0
	case l.Health != "Healthy" || l.Sync != "Synced":
		return 1
	}
	return 2
}
