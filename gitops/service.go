package gitops

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	git "github.com/go-git/go-git/v5"

	"github.com/shipbot/shipbot/gitops/edit"
	"github.com/shipbot/shipbot/gitops/repo"
	"github.com/shipbot/shipbot/templates"
)

// Person is a git identity.
type Person struct{ Name, Email string }

func (p Person) String() string { return fmt.Sprintf("%s <%s>", p.Name, p.Email) }

// Directory maps a chat identity to the person who becomes a commit's author.
type Directory interface {
	Person(ctx context.Context, user string) (Person, error)
}

// ServiceOptions wire a Service.
type ServiceOptions struct {
	Catalog    *Catalog
	Repo       *repo.Repo
	Authorizer Authorizer
	Justifier  Justifier
	Directory  Directory
	Committer  Person
	Signer     git.Signer // nil: unsigned commits
	Logger     *slog.Logger
	Now        func() time.Time
	// MaxAttempts bounds push retries when the branch moved (default 5).
	MaxAttempts int
	// WriteTimeout bounds one batch of confirmed changes: fetch, commits and
	// push (default 2m).
	WriteTimeout time.Duration
	// ConfirmTimeout is how long a plan waits for "yes" (default 2m); it is
	// shown to the user, the chat front end enforces it.
	ConfirmTimeout time.Duration
	// ConfirmKey authenticates the tokens that let any replica confirm a
	// plan another one showed (Seal, Resume); nil: plans wait in memory
	// only. At least 32 bytes, the same on every replica.
	ConfirmKey []byte
	// HistoryLimit is the default length of `history` (default 10).
	HistoryLimit int
	// FreezeWindows are recurring freezes from the configuration.
	FreezeWindows []FreezeWindow
	// FreezeBlocks are the actions a `freeze ENV` blocks (default: promote).
	FreezeBlocks []Action
	// Tracer writes what shipbot did onto the justification's ticket or
	// incident; nil: no traces.
	Tracer Tracer
	// Watcher follows a landed change through the GitOps controller (Argo
	// CD); nil: shipbot reports the commit only.
	Watcher SyncWatcher
	// WatchTimeout bounds a watch (default 5m).
	WatchTimeout time.Duration
	// Live reads the controller's view for status and health; nil: git only.
	Live LiveStatus
	// Forge is where changes that need review are proposed; nil: such
	// changes are refused.
	Forge Forge
	// Approvers is the policy's view of who may approve (required with a
	// Forge).
	Approvers ApproverPolicy
	// Notifier tells a request's chat thread about its proposal, and about
	// the outcome of a push shipbot could not tell at once; nil: the
	// answers to approve and reject say it all, and a late outcome is
	// logged only.
	Notifier Notifier
	// ProposalTTL is how long a proposal stays open (default 7 days).
	ProposalTTL time.Duration
	// RecordChecker verifies the signatures of proposal records: a record
	// (an approval, a proposal) is acted on only when shipbot committed it
	// and, with a checker, signed it with a trusted key. nil: only the
	// committer is checked (signing off).
	RecordChecker SignatureChecker
	// Registry is asked whether the tag of a rollback or promotion exists;
	// nil: tags are not checked.
	Registry Registry
	// RegistryOnError is what a plan does when the registry can't tell
	// (default refuse: nothing is written).
	RegistryOnError RegistryOnError
	// PushTimeout bounds one push, and one look at the remote after a push
	// whose outcome is unknown (default 30s, at most WriteTimeout).
	PushTimeout time.Duration
	// ResolveTimeout is how long shipbot keeps looking, in the background,
	// for the outcome of a push it could not tell (default 15m); the
	// requester is told through the Notifier.
	ResolveTimeout time.Duration
	// ResolveBackoff is the first wait between those looks; it doubles up
	// to a minute (default 2s).
	ResolveBackoff time.Duration
	// Render says how plans are checked by rendering the app before and
	// after the change (see edit.Verify): the helm binary, a timeout.
	Render edit.RenderOptions
}

// Validate fills defaults and checks that the required parts are there.
func (o *ServiceOptions) Validate() error {
	switch {
	case o.Catalog == nil:
		return errors.New("service: no catalog")
	case o.Repo == nil:
		return errors.New("service: no repo")
	case o.Authorizer == nil:
		return errors.New("service: no authorizer (deny-by-default needs a policy)")
	case o.Justifier == nil:
		return errors.New("service: no justifier")
	case o.Directory == nil:
		return errors.New("service: no directory")
	case o.Committer.Email == "":
		return errors.New("service: no committer identity")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 5
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 2 * time.Minute
	}
	if o.ConfirmTimeout <= 0 {
		o.ConfirmTimeout = 2 * time.Minute
	}
	if n := len(o.ConfirmKey); n > 0 && n < minConfirmKey {
		return fmt.Errorf("confirmation key: %d bytes; at least %d are needed", n, minConfirmKey)
	}
	if o.HistoryLimit <= 0 {
		o.HistoryLimit = 10
	}
	if o.WatchTimeout <= 0 {
		o.WatchTimeout = 5 * time.Minute
	}
	if o.ProposalTTL <= 0 {
		o.ProposalTTL = 7 * 24 * time.Hour
	}
	if o.PushTimeout <= 0 {
		o.PushTimeout = 30 * time.Second
	}
	o.PushTimeout = min(o.PushTimeout, o.WriteTimeout)
	if o.ResolveTimeout <= 0 {
		o.ResolveTimeout = 15 * time.Minute
	}
	if o.ResolveBackoff <= 0 {
		o.ResolveBackoff = 2 * time.Second
	}
	if o.Forge != nil && o.Approvers == nil {
		return errors.New("service: a forge needs the approver policy")
	}
	if o.FreezeBlocks == nil {
		o.FreezeBlocks = []Action{ActionPromote}
	}
	if o.RegistryOnError == "" {
		o.RegistryOnError = RegistryRefuse
	}
	if !o.RegistryOnError.Valid() {
		return fmt.Errorf("service: registry on error %q: use refuse or warn", o.RegistryOnError)
	}
	return nil
}

// Service is the use case: request -> authorize -> plan -> confirm -> commit
// and push -> reply.
type Service struct {
	o         ServiceOptions
	committer *committer
	// reviewMu serializes review operations (propose, approve, reject,
	// reconcile) in the process.
	reviewMu sync.Mutex
	// blocked remembers, per proposal, what blocked it when the thread was
	// last told, so that a reconcile reports a new failing check once.
	// Only notification noise depends on it: it may be lost.
	blocked map[string]string
	// trusted caches which commits are shipbot's own (ownCommit).
	trusted trustCache
	// Background work: looking for the outcome of pushes shipbot could not
	// tell (resolve.go).
	bg bgWork
}

// NewService returns a Service.
func NewService(o ServiceOptions) (*Service, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	s := &Service{o: o, blocked: map[string]string{}}
	s.committer = &committer{s: s}
	s.bg.init()
	return s, nil
}

// Catalog returns the apps and environments the service manages.
func (s *Service) Catalog() *Catalog { return s.o.Catalog }

// ConfirmTimeout is how long a plan waits for its answer.
func (s *Service) ConfirmTimeout() time.Duration { return s.o.ConfirmTimeout }

// Outcome is what became of a request.
type Outcome string

const (
	OutcomeAnswered  Outcome = "answered"  // a read-only request was answered
	OutcomeConfirm   Outcome = "confirm"   // a plan waits for yes/no
	OutcomeDenied    Outcome = "denied"    // the policy said no
	OutcomeRejected  Outcome = "rejected"  // bad input or failed justification
	OutcomeCommitted Outcome = "committed" // the change landed
	OutcomeCancelled Outcome = "cancelled" // the requester said no, or time ran out
	OutcomeFailed    Outcome = "failed"    // shipbot failed; the remote is unchanged
	OutcomeUnknown   Outcome = "unknown"   // a push's outcome is not known yet: it may have landed; shipbot reports it later
	OutcomeHealthy   Outcome = "healthy"   // the change is live: Synced and Healthy at our commit
	OutcomeDegraded  Outcome = "degraded"  // the change is live and unhealthy, or its sync failed
	OutcomeUnwatched Outcome = "unwatched" // the watch failed or timed out; the commit stands
	OutcomeProposed  Outcome = "proposed"  // a proposal is open and waits for approvals
	OutcomeApproved  Outcome = "approved"  // an approval was recorded; more are needed
)

// Response is the result of handling a request: the reply to show and, when
// the request waits for confirmation, the plan to confirm.
type Response struct {
	Outcome Outcome
	Text    string // the chat reply
	Plan    *Plan  // set when Outcome is OutcomeConfirm
	Commit  string // set when Outcome is OutcomeCommitted
	// Attempts is how many pushes it took to land Commit (1 = no retry:
	// the branch did not move under us).
	Attempts int
	// Rollback is the one ready command that undoes a landed change that
	// fails to roll out (OutcomeDegraded), with the change's own reason:
	// a front end offers it as a button.
	Rollback string
	// Proposal is set when the response is about a proposal: opened
	// (OutcomeProposed), approved (OutcomeApproved), merged
	// (OutcomeCommitted, with Plan and Commit set so that the front end can
	// follow the change through Argo CD), rejected or closed.
	Proposal *ProposalView
}

// Plan is a change computed and shown, not yet written.
type Plan struct {
	Request       Request
	Target        Target
	Environment   Environment
	Justification Justification
	From, To      string // tags; for a restart the annotation values
	Restart       string // restart annotation value (restart only)
	Changes       []edit.Change
	Diff          string
	Summary       string
	Base          string // commit the plan was computed on
	// BreakGlass says which freeze the change overrides ("" = none).
	BreakGlass string
	// Freeze is the freeze a `freeze` request sets.
	Freeze Freeze
	// Canary is the Rollout a rollback aborts before it reverts the tag
	// (nil: none in progress).
	Canary *Canary
	// Pin is the pin a rollback sets, or the pin an unpin lifts.
	Pin Pin
	// bgWhat is what BreakGlass overrides: "a freeze", "a pin", or both.
	bgWhat string
	// Review is the approvals the change needs before it merges (zero:
	// it lands on yes).
	Review Review
	// pinned is the tag a re-planned proposal must land ("" = computed).
	pinned string
	// Digest is the digest the registry gave for To (rollback and promote
	// with a Registry; "" = not checked).
	Digest string
	// TagNote is what the registry and the history said about To, e.g.
	// "1.5.0 found in the registry: sha256:3f2a9c1d0e4b; never deployed in
	// prod before" ("" = not checked). The Summary ends with it.
	TagNote string
	// checked is the To that Digest and TagNote are about.
	checked string
	// Checked is what rendering the app before and after the change showed,
	// one sentence for the plan ("" for a freeze).
	Checked string
	// verified is the diff and the commit Checked is about: a re-plan on
	// the same commit with the same diff is not rendered again.
	verified string
	// Warnings are what the requester must read before answering, said
	// loudly right under the summary: a tag never deployed (NEVER
	// DEPLOYED), the freeze a change overrides (BREAK-GLASS). Every front
	// end shows them with the plan, before its question or buttons.
	Warnings []string
	// Notes are quieter lines under the summary, e.g. when the tag a
	// rollback names ran in the environment before.
	Notes []string
	// Confirmation is the answer that confirms this plan when a plain yes
	// is not enough, e.g. "yes, deploy v1.4.1" for a tag shipbot never saw
	// deployed; "" = a plain yes. A front end accepts nothing less for such
	// a plan (Confirms tells whether a typed answer does), sets Answer to
	// it and calls Confirm; to a plain yes it says which answer the plan
	// needs and keeps waiting. A button can't stand for the typed answer:
	// Slack shows no Confirm button for such a plan, only Cancel, and asks
	// for the answer to be typed.
	Confirmation string
	// Answer is the requester's answer as given, set by the front end
	// before Confirm. Confirm refuses a plan with a Confirmation whose
	// Answer does not confirm it: nothing is written.
	Answer string
	// tagNote, tagLine and tagWarning are what the history said about the
	// tag a `rollback ... to TAG` names (tagSeen is the To they are about):
	// for the Summary, a Notes line, a Warnings line.
	tagNote, tagLine, tagWarning, tagSeen string
}

// NewRequestID derives a request id from what identifies a chat message, so
// that a redelivered message maps to the same id.
func NewRequestID(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return "shp-" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(h[:])[:10])
}

// requestLogger is the logger of one request: every line names it.
func (s *Service) requestLogger(req Request) *slog.Logger {
	log := s.o.Logger.With("request", req.ID, "user", req.User)
	if len(req.Groups) > 0 {
		log = log.With("groups", req.Groups)
	}
	if req.GroupsUnknown {
		log = log.With("groups_unknown", true)
	}
	return log.With("action", string(req.Action), "app", req.App, "env", req.Env)
}

// Handle answers a request: read-only requests at once; writes with a plan
// that waits for confirmation. It writes nothing.
func (s *Service) Handle(ctx context.Context, req Request) Response {
	log := s.requestLogger(req)
	resp := s.handle(ctx, log, req)
	log.Info("request handled", "outcome", string(resp.Outcome))
	return resp
}

func (s *Service) handle(ctx context.Context, log *slog.Logger, req Request) Response {
	switch req.Action {
	case ActionStatus:
		return s.status(ctx, log, req)
	case ActionFreezes:
		return s.freezes(ctx, log, req)
	case ActionPins:
		return s.pins(ctx, log, req)
	case ActionHistory:
		return s.history(ctx, log, req)
	case ActionHealth:
		return s.health(ctx, log, req)
	case ActionProposals:
		return s.proposals(ctx, log, req)
	case ActionApprove:
		return s.approve(ctx, log, req)
	case ActionReject:
		return s.reject(ctx, log, req)
	case ActionRollback, ActionRestart, ActionPromote, ActionFreeze, ActionUnfreeze, ActionUnpin:
		plan, resp := s.plan(ctx, log, req)
		if plan == nil {
			return resp
		}
		review := ""
		if plan.Review.Approvals > 0 {
			review = s.reviewText(ctx, req, plan.Review)
		}
		text, err := templates.PlanReply(templates.Plan{
			RequestID: req.ID, Summary: plan.Summary, Diff: plan.Diff, Why: plan.Justification.Text,
			Timeout: s.o.ConfirmTimeout, Protected: plan.Environment.Protected, Review: review,
			Checked: plan.Checked, Warnings: plan.Warnings, Notes: plan.Notes, Confirm: plan.Confirmation,
		})
		if err != nil {
			return s.failed(log, req, err)
		}
		return Response{Outcome: OutcomeConfirm, Text: text, Plan: plan}
	default:
		return Response{Outcome: OutcomeRejected, Text: fmt.Sprintf("shipbot can't %s; try `help`", req.Action)}
	}
}

// authorize asks the policy; a denial or an error is returned as a Response.
func (s *Service) authorize(ctx context.Context, log *slog.Logger, req Request, env Environment, action Action) (Decision, *Response) {
	d, err := s.o.Authorizer.Authorize(ctx, AuthzQuery{
		Subject: req.subject(),
		Env:     env.Name, Cluster: env.Cluster, App: req.App, Action: action,
	})
	if err != nil {
		r := s.failed(log, req, fmt.Errorf("authorize: %w", err))
		return d, &r
	}
	if !d.Allowed {
		log.Warn("denied by policy", "reason", d.Reason)
		return d, &Response{Outcome: OutcomeDenied, Text: fmt.Sprintf("[%s] denied: %s", req.ID, d.Reason)}
	}
	log.Debug("allowed by policy", "rule", d.Rule)
	return d, nil
}

// ErrNeedsReview means the policy requires approvals before the change may
// merge, and they can't be given here.
var ErrNeedsReview = errors.New("needs review")

// rejected turns a user-facing error into a reply; other errors are failures.
func (s *Service) rejected(log *slog.Logger, req Request, err error) Response {
	var ue *UserError
	if errors.As(err, &ue) {
		log.Info("request rejected", "reason", ue.Message)
		return Response{Outcome: OutcomeRejected, Text: fmt.Sprintf("[%s] %s", req.ID, ue.Message)}
	}
	return s.failed(log, req, err)
}

// failed reports an internal error: details go to the log, the user gets
// a plain sentence and the request id to quote. A push whose outcome is
// unknown is never said to have changed nothing; a remote's refusal is
// told in the remote's words.
func (s *Service) failed(log *slog.Logger, req Request, err error) Response {
	log.Error("request failed", "err", err)
	var refused *repo.RefusedError
	switch {
	case errors.Is(err, repo.ErrPushUnknown):
		return Response{Outcome: OutcomeUnknown, Text: fmt.Sprintf("[%s] shipbot could not tell whether the change was written: %s. Do not retry; check with `%s` first. Operators can find the details in the log under request %s.", req.ID, plainReason(err), s.o.Catalog.checkCommand(req), req.ID)}
	case errors.As(err, &refused):
		return Response{Outcome: OutcomeRejected, Text: fmt.Sprintf("[%s] not written: %s. Nothing was changed.", req.ID, refusedReason(refused))}
	}
	return Response{Outcome: OutcomeFailed, Text: fmt.Sprintf("[%s] shipbot failed and changed nothing: %s. Operators can find the details in the log under request %s.", req.ID, plainReason(err), req.ID)}
}

// userSafe shortens an internal error for chat, without URLs or network
// addresses (those stay in the log).
func userSafe(err error) string {
	msg := OneLine(scrub(err.Error()))
	if len(msg) > 300 {
		msg = strings.ToValidUTF8(msg[:300], "") + "…"
	}
	return msg
}

// plan validates, authorizes and computes the change on the current tip.
func (s *Service) plan(ctx context.Context, log *slog.Logger, req Request) (*Plan, Response) {
	var t Target
	var env Environment
	var err error
	if req.Action == ActionFreeze || req.Action == ActionUnfreeze {
		req.App = "*" // a freeze covers every app of the environment
		env, err = s.o.Catalog.Env(req.Env)
	} else {
		t, env, err = s.o.Catalog.Target(req.App, req.Env)
	}
	if err != nil {
		return nil, s.rejected(log, req, err)
	}
	if req.Action == ActionPromote {
		if _, _, err := s.o.Catalog.Target(req.App, req.FromEnv); err != nil {
			return nil, s.rejected(log, req, err)
		}
		if next, ok := s.o.Catalog.Next(req.App, req.FromEnv); !ok || next != req.Env {
			msg := fmt.Sprintf("%s is promoted one environment at a time (%s)", req.App, strings.Join(s.path(req.App), " -> "))
			if ok {
				msg += fmt.Sprintf("; from %s the next is %s: `promote %s %s to %s`", req.FromEnv, next, req.App, req.FromEnv, next)
			} else {
				msg += fmt.Sprintf("; %s is the last environment", req.FromEnv)
			}
			return nil, s.rejected(log, req, Userf("%s", msg))
		}
	}
	decision, resp := s.authorize(ctx, log, req, env, req.Action)
	if resp != nil {
		return nil, *resp
	}
	snap, err := s.o.Repo.Fetch(ctx)
	if err != nil {
		return nil, s.failed(log, req, err)
	}
	// A request id lands once: a redelivered or retried message whose
	// request landed is answered with that commit, never a new plan.
	if l, ok := s.findLanded(snap, []Request{req}, recentWindow)[req.ID]; ok {
		return nil, s.alreadyLanded(log, req, l)
	}
	// A freeze's or an unpin's reason is free text; changes of apps are
	// justified by the justifier (incident or ticket in protected
	// environments).
	just := Justification{Text: Reason(req.Why), Kind: "text"}
	if req.Action != ActionFreeze && req.Action != ActionUnfreeze && req.Action != ActionUnpin {
		if just, err = s.o.Justifier.Justify(ctx, req, env); err != nil {
			return nil, s.rejected(log, req, err)
		}
	}
	if err := decision.Justification.check(req, just); err != nil {
		return nil, s.rejected(log, req, err)
	}
	p := &Plan{Request: req, Target: t, Environment: env, Justification: just}
	if req.Action == ActionRestart {
		p.Restart = s.o.Now().UTC().Format(time.RFC3339)
	}
	if err := s.compute(ctx, snap, p); err != nil {
		return nil, s.rejected(log, req, err)
	}
	// After the plan, so that a freeze (temporary) is reported before a
	// review that can't happen (structural).
	if err := s.canReview(ctx, req, decision.Review); err != nil {
		return nil, s.rejected(log, req, err)
	}
	p.Review = decision.Review
	s.syncHold(ctx, log, p)
	s.canaryCheck(ctx, p)
	return p, Response{}
}

// syncHold notes in the plan when an Argo CD sync window holds syncs of
// the app now: the commit would land, the rollout would wait. A window that
// can't be read is logged, not a refusal.
func (s *Service) syncHold(ctx context.Context, log *slog.Logger, p *Plan) {
	w, ok := s.o.Watcher.(SyncWindows)
	if !ok || p.Request.Action == ActionFreeze || p.Request.Action == ActionUnfreeze || p.Request.Action == ActionUnpin {
		return
	}
	now := s.o.Now()
	hold, err := w.SyncHold(ctx, p.Target, now)
	if err != nil {
		log.Warn("sync windows could not be read", "app", p.Target.App, "env", p.Target.Env, "err", err)
		return
	}
	if d := hold.Describe(now); d != "" {
		p.Warnings = append(p.Warnings, d+": the commit lands now, the rollout waits for the window")
	}
}

func (s *Service) path(app string) []string {
	var out []string
	for _, e := range s.o.Catalog.Envs {
		if _, ok := s.o.Catalog.Apps[app][e.Name]; ok {
			out = append(out, e.Name)
		}
	}
	return out
}

// compute fills From, To, Changes, Diff and Summary of p on snap. It is run
// at plan time and again on every new tip before a commit.
func (s *Service) compute(ctx context.Context, snap *repo.Snapshot, p *Plan) error {
	req, t := p.Request, p.Target
	var err error
	switch req.Action {
	case ActionFreeze, ActionUnfreeze:
		if err := s.computeFreeze(snap, p); err != nil {
			return err
		}
		p.Diff = edit.Diff(p.Changes)
		p.Base = snap.Hash().String()
		return nil
	case ActionUnpin:
		if err := s.computeUnpin(snap, p); err != nil {
			return err
		}
		p.Diff = edit.Diff(p.Changes)
		p.Base = snap.Hash().String()
		return nil
	}
	if err := s.checkFreeze(ctx, snap, p); err != nil {
		return err
	}
	switch req.Action {
	case ActionRestart:
		p.From, _ = edit.CurrentRestart(snap, t.Location)
		p.To = p.Restart
		p.Changes, err = edit.SetRestart(snap, t.Location, p.Restart)
		p.Summary = fmt.Sprintf("restart %s in %s", req.App, req.Env)
	case ActionRollback, ActionPromote:
		var notes []string
		p.From, err = edit.CurrentTag(snap, t.Location)
		if errors.Is(err, edit.ErrNoTag) {
			// The tag is not written (an overlay without an images entry
			// reads from its base; Helm's tag: ""; an untagged image): the
			// change writes it, and the plan says what applied before.
			notes = append(notes, "the tag was not set: "+userMessage(err))
			p.From, err = "", nil
		}
		if err != nil {
			return editError(t, err)
		}
		p.To, err = s.targetTag(ctx, snap, p)
		if err != nil {
			return err
		}
		if p.To == p.From {
			return &UserError{Message: fmt.Sprintf("%s in %s already runs %s: nothing to change", req.App, req.Env, p.To), Err: ErrNoChange}
		}
		// A tag named by the requester: was it ever deployed, and where?
		if req.Action == ActionRollback && req.Tag != "" {
			if err := s.checkRollbackTag(ctx, snap, p); err != nil {
				return err
			}
		}
		// The registry first: its digest keeps a pinned image pinned.
		if err := s.checkTag(ctx, snap, p); err != nil {
			return err
		}
		var head []string
		if p.TagNote != "" {
			head = append(head, p.TagNote)
		}
		if p.tagNote != "" && p.tagSeen == p.To {
			head = append(head, p.tagNote)
		}
		notes = append(head, notes...)
		var e edit.ImageEdit
		e, err = edit.SetImage(snap, t.Location, edit.SetImageOptions{Tag: p.To, Digest: p.Digest})
		p.Changes = e.Changes
		for _, pin := range e.Pins {
			note := pin.String()
			if pin.Dropped() {
				note = "PIN DROPPED: " + note
			}
			notes = append(notes, note)
		}
		if req.Action == ActionPromote {
			p.Summary = fmt.Sprintf("promote %s from %s to %s: %s -> %s", req.App, req.FromEnv, req.Env, fromText(p.From), p.To)
		} else {
			p.Summary = fmt.Sprintf("rollback %s in %s: %s -> %s", req.App, req.Env, fromText(p.From), p.To)
		}
		if len(notes) > 0 {
			p.Summary += " (" + strings.Join(notes, "; ") + ")"
		}
	}
	if err != nil {
		return editError(t, err)
	}
	if err := s.checkReach(snap, p); err != nil {
		return err
	}
	if err := s.verify(ctx, snap, p); err != nil {
		return err
	}
	s.warnings(p)
	if req.Action == ActionRollback {
		// The pin goes in the rollback's commit, after the checks of the
		// image change (they are about the app's tag only).
		s.computePin(snap, p)
	}
	p.Diff = edit.Diff(p.Changes)
	p.Base = snap.Hash().String()
	return nil
}

// warnings fills p.Warnings (and marks the Summary of a break-glass
// change), from scratch on every compute: what the requester must read
// before answering.
func (s *Service) warnings(p *Plan) {
	req := p.Request
	p.Warnings, p.Notes = nil, nil
	if p.tagWarning != "" && p.tagSeen == p.To && req.Action == ActionRollback {
		p.Warnings = append(p.Warnings, p.tagWarning)
	} else {
		p.Confirmation = ""
	}
	if p.tagLine != "" && p.tagSeen == p.To && req.Action == ActionRollback {
		p.Notes = append(p.Notes, p.tagLine)
	}
	switch {
	case p.BreakGlass != "":
		what := p.bgWhat
		if what == "" {
			what = "a freeze"
		}
		of := map[string]string{
			"a freeze":           "a freeze of " + req.Env,
			"a pin":              fmt.Sprintf("the pin of %s in %s", req.App, req.Env),
			"a freeze and a pin": fmt.Sprintf("a freeze of %s and the pin of %s there", req.Env, req.App),
		}[what]
		p.Summary += fmt.Sprintf(" [BREAK-GLASS: overrides %s]", of)
		p.Warnings = append(p.Warnings, fmt.Sprintf("BREAK-GLASS: this %s overrides %s: %s. On yes it lands anyway and is recorded as a break-glass change: the commit's Break-glass trailer, a BREAK-GLASS line in the commit and in the reply, and the break-glass flag of `shipbot audit`.", req.Action, what, p.BreakGlass))
	case req.BreakGlass && req.Action == ActionPromote:
		p.Warnings = append(p.Warnings, fmt.Sprintf("--break-glass: nothing to override, %s is not frozen for %s now and %s is not pinned there; this is an ordinary change and is not recorded as break-glass.", req.Env, req.Action, req.App))
	case req.BreakGlass:
		p.Warnings = append(p.Warnings, fmt.Sprintf("--break-glass: nothing to override, %s is not frozen for %s now; this is an ordinary change and is not recorded as break-glass.", req.Env, req.Action))
	}
}

// fromTextOf is the From of a commit's subject.
func fromTextOf(a Action, from string) string {
	if a == ActionRollback || a == ActionPromote {
		return fromText(from)
	}
	return from
}

// fromText shows a tag that was not set.
func fromText(tag string) string {
	if tag == "" {
		return "(not set)"
	}
	return tag
}

func (s *Service) targetTag(ctx context.Context, snap *repo.Snapshot, p *Plan) (string, error) {
	req := p.Request
	if p.pinned != "" {
		return p.pinned, nil
	}
	if req.Action == ActionPromote {
		src, _, err := s.o.Catalog.Target(req.App, req.FromEnv)
		if err != nil {
			return "", err
		}
		tag, err := edit.CurrentTag(snap, src.Location)
		if err != nil {
			return "", editError(src, err)
		}
		return tag, nil
	}
	if req.Tag != "" {
		return req.Tag, nil
	}
	h := s.historyReader()
	prev, err := h.previousTag(ctx, snap, p.Target, p.From)
	if errors.Is(err, ErrNoPrevious) {
		return "", &UserError{Message: fmt.Sprintf("no earlier tag of %s in %s in the repo's history; name one: `rollback %s %s to TAG --why ...`", req.App, req.Env, req.App, req.Env), Err: err}
	}
	return prev, err
}

func editError(t Target, err error) error {
	if errors.Is(err, edit.ErrUnchanged) {
		return &UserError{Message: fmt.Sprintf("%s in %s: nothing to change", t.App, t.Env), Err: ErrNoChange}
	}
	if errors.Is(err, edit.ErrNotFound) {
		return &UserError{Message: fmt.Sprintf("can't change %s in %s: %v (check the app's path and image in the config)", t.App, t.Env, err), Err: err}
	}
	return fmt.Errorf("%s/%s: %w", t.App, t.Env, err)
}

// Cancel records that a plan was not confirmed.
func (s *Service) Cancel(p *Plan, why string) Response {
	s.o.Logger.Info("request cancelled", "request", p.Request.ID, "user", p.Request.User, "why", why)
	return Response{Outcome: OutcomeCancelled, Text: fmt.Sprintf("[%s] cancelled: %s; nothing was written.", p.Request.ID, why)}
}

// Confirm writes a confirmed plan: it re-fetches, re-plans on the current tip
// (never a blind rebase), checks that the change is still the one confirmed,
// commits and pushes with a compare-and-swap, and retries with jitter when
// the branch moved. On any failure the remote is left as it was.
func (s *Service) Confirm(ctx context.Context, p *Plan) Response {
	req := p.Request
	log := s.requestLogger(req)
	resp := s.confirm(ctx, log, p)
	log.Info("request confirmed", "outcome", string(resp.Outcome), "commit", resp.Commit)
	return resp
}

func (s *Service) confirm(ctx context.Context, log *slog.Logger, p *Plan) Response {
	req := p.Request
	if p.Confirmation != "" && !p.Confirms(p.Answer) {
		// A plain yes (or a button) is not the answer this plan asked for,
		// unless the request landed already (a request id lands once).
		if head, err := s.o.Repo.Head(); err == nil {
			if l, ok := s.findLanded(head, []Request{req}, recentWindow)[req.ID]; ok {
				return s.landedReply(log, p, l, 1, false)
			}
		}
		log.Info("plan not confirmed: it needs the explicit answer", "want", p.Confirmation, "answer", OneLine(p.Answer))
		return Response{Outcome: OutcomeRejected, Text: fmt.Sprintf("[%s] not confirmed: this plan needs the answer `%s` (%s); a plain yes is not enough. Nothing was written; ask again and answer `%s`.", req.ID, p.Confirmation, p.tagNote, p.Confirmation)}
	}
	// The policy may have changed while the question was open.
	decision, resp := s.authorize(ctx, log, req, p.Environment, req.Action)
	if resp != nil {
		return *resp
	}
	if err := s.canReview(ctx, req, decision.Review); err != nil {
		return s.rejected(log, req, err)
	}
	author, err := s.o.Directory.Person(ctx, req.User)
	if err != nil {
		return s.rejected(log, req, err)
	}
	if decision.Review.Approvals > 0 {
		// A request id lands once (the committer looks on every tip it
		// writes on; a proposal is looked for here).
		if head, err := s.o.Repo.Head(); err == nil {
			if l, ok := s.findLanded(head, []Request{req}, recentWindow)[req.ID]; ok {
				log.Info("request already landed", "commit", l.Commit.String())
				return s.landedReply(log, p, l, 1, false)
			}
		}
		p.Review = decision.Review
		return s.propose(ctx, log, p, decision, author)
	}

	aborted := s.abortCanary(ctx, p)
	done := s.committer.submit(&job{ctx: ctx, plan: p, author: author, authorizedBy: authorizedBy(decision), log: log})
	if aborted != "" {
		done.Text = strings.TrimRight(done.Text, "\n") + "\n" + aborted
	}
	return done
}

// authorizedBy is the Authorized-by trailer of a decision: the policy line
// and, when the line names a group or anyone, why it applies, e.g.
// "p, sre, *, *, *, * (erin is in sre in prod, through the chat group
// slack:sre-oncall)". Chat groups live outside git: this is the record of
// the membership the decision relied on.
func authorizedBy(d Decision) string {
	if d.Reason == "" {
		return d.Rule
	}
	return d.Rule + " (" + d.Reason + ")"
}

// userMessage is err for chat: a UserError's message, or a plain sentence
// (or the error without URLs and addresses) for anything else.
func userMessage(err error) string {
	var ue *UserError
	if errors.As(err, &ue) {
		return ue.Message
	}
	return plainReason(err)
}

func (s *Service) done(log *slog.Logger, p *Plan, commit string, attempts int) Response {
	text, err := templates.DoneReply(templates.Done{RequestID: p.Request.ID, Summary: p.Summary, Commit: commit, Branch: s.o.Repo.Branch(), Attempts: attempts, BreakGlass: p.BreakGlass})
	if err != nil {
		// The commit stands; say so even though the template failed.
		log.Error("render reply", "err", err)
		return Response{Outcome: OutcomeCommitted, Commit: commit, Attempts: attempts, Text: fmt.Sprintf("[%s] committed %s (reply template failed: see log)", p.Request.ID, commit)}
	}
	return Response{Outcome: OutcomeCommitted, Commit: commit, Attempts: attempts, Text: text}
}

// message renders the commit message. Every value is one line of data:
// chat text can add neither a line nor a trailer.
func (s *Service) message(p *Plan, author Person, authorized string, extra []templates.Trailer) (string, error) {
	req := p.Request
	tr := []templates.Trailer{
		{Key: TrailerRequest, Value: req.ID},
		{Key: TrailerAction, Value: string(req.Action)},
	}
	if req.App != "*" {
		tr = append(tr, templates.Trailer{Key: TrailerApp, Value: req.App})
	}
	tr = append(tr, templates.Trailer{Key: TrailerEnv, Value: req.Env})
	if p.From != "" {
		tr = append(tr, templates.Trailer{Key: TrailerFrom, Value: p.From})
	}
	tr = append(tr,
		templates.Trailer{Key: TrailerTo, Value: p.To},
		templates.Trailer{Key: TrailerRequestedBy, Value: author.String()},
	)
	if authorized != "" {
		tr = append(tr, templates.Trailer{Key: TrailerAuthorizedBy, Value: authorized})
	}
	if p.Justification.Text != "" {
		tr = append(tr, templates.Trailer{Key: TrailerJustification, Value: Reason(p.Justification.Text)})
	}
	if c := p.Justification.Checked; c != nil {
		tr = append(tr, templates.Trailer{Key: TrailerJustificationChecked, Value: fmt.Sprintf("%s %s %s", c.Source, c.State, c.At.UTC().Format(time.RFC3339))})
	}
	if p.BreakGlass != "" {
		tr = append(tr, templates.Trailer{Key: TrailerBreakGlass, Value: p.BreakGlass})
	}
	if v := pinTrailer(p); v != "" {
		tr = append(tr, templates.Trailer{Key: TrailerPin, Value: v})
	}
	if req.Channel != "" {
		tr = append(tr, templates.Trailer{Key: TrailerChannel, Value: req.Channel})
	}
	if req.Thread != "" && req.Action.Writes() {
		tr = append(tr, templates.Trailer{Key: TrailerThread, Value: req.Thread})
	}
	tr = append(tr, extra...)
	for i := range tr {
		tr[i].Value = OneLine(tr[i].Value)
	}
	pin, held := pinBody(p)
	return templates.CommitMessage(templates.Commit{
		Action: string(req.Action), App: req.App, Env: req.Env, FromEnv: req.FromEnv,
		From: fromTextOf(req.Action, p.From), To: p.To, RequestedBy: OneLine(author.Name), Channel: OneLine(req.Channel),
		Reason: Reason(p.Justification.Text), BreakGlass: OneLine(p.BreakGlass), Pin: pin, Held: held, Trailers: tr,
	})
}

// OneLine makes chat text safe to place on one line of a commit message:
// it is Normalize without a cap (control characters and line breaks become
// spaces, bidi and zero-width characters are dropped, runs of spaces
// collapse). Free-text reasons also get a cap: Reason.
func OneLine(s string) string { return Normalize(s, 0) }
