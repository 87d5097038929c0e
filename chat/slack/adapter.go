// Package slack is shipbot's Slack front end. It turns /ship slash
// commands, @mentions and direct messages into requests to the core (the
// same grammar as every chat: chat/command), shows each plan as one message
// with Confirm and Cancel buttons that only the requester can press, and
// updates that message in place as the change is committed.
//
// A change the policy says needs approvals becomes a proposal at Confirm:
// shipbot posts Approve and Reject buttons in the request's thread (and in
// the reviewers' channel, ReviewChannel), passes each Approve click to the
// core as an approve request of the clicker, and keeps the request's
// message up to date until the change merges. News from elsewhere (the
// forge, another channel) arrives through ProposalUpdated (gitops.Notifier),
// addressed by the Request.Thread the adapter gave the request.
//
// Slack reaches shipbot through Socket Mode (RunSocketMode) or over HTTP
// (HTTPHandler: Events API, slash commands, interactivity, every request
// signature-checked). Either way shipbot acknowledges at once and works
// after the acknowledgement, and a delivery Slack repeats (retries, the same
// event twice, a double click) runs once: deliveries are deduplicated in a
// bounded cache, and request ids derive from Slack's own ids, so even a
// redelivery the cache has forgotten maps to the same commit.
//
// Who asks is read from Slack, never from the message: the Slack user's
// profile email names the policy subject (Directory). Someone shipbot can't
// identify is refused.
package slack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	slackgo "github.com/slack-go/slack"

	"github.com/shipbot/shipbot/chat/command"
	"github.com/shipbot/shipbot/gitops"
)

// Core is the part of shipbot's core the adapter drives; *gitops.Service
// implements it.
type Core interface {
	Handle(ctx context.Context, req gitops.Request) gitops.Response
	Confirm(ctx context.Context, p *gitops.Plan) gitops.Response
	Cancel(p *gitops.Plan, why string) gitops.Response
	ConfirmTimeout() time.Duration
}

var _ Core = (*gitops.Service)(nil)

// Watcher is the optional part of a Core that follows a landed change
// through the GitOps controller (Argo CD) and reports progress; the adapter
// updates the request's message with it.
type Watcher interface {
	Watches() bool
	Watch(ctx context.Context, p *gitops.Plan, commit string, progress func(string)) gitops.Response
}

var _ Watcher = (*gitops.Service)(nil)

// Sealer is the optional part of a Core that makes confirmations
// stateless: the plan's buttons carry a token (Seal) from which any
// replica re-plans the request (Resume) and confirms it only if its diff
// is the one shown. Without it (or without a confirmation key) a plan
// waits in the memory of the replica that showed it.
type Sealer interface {
	Seal(p *gitops.Plan, answerer string) (string, error)
	SealedRequest(token string) (id, answerer string, ok bool)
	Resume(ctx context.Context, token, answerer string) (*gitops.Plan, gitops.Response)
}

var _ Sealer = (*gitops.Service)(nil)

// maxButtonValue is the longest value Slack keeps on a button.
const maxButtonValue = 2000

// Options wire an Adapter.
type Options struct {
	API       API        // required: the Slack Web API (*slack.Client); 429s are retried (WithRateLimit)
	Core      Core       // required
	Directory *Directory // required: who the Slack users are
	Logger    *slog.Logger
	Metrics   Metrics
	// Command is the slash command (default "/ship").
	Command string
	// BotUserID is shipbot's own Slack user id; its messages are ignored.
	BotUserID string
	RateLimit RateLimit
	// MaxDiffLines bounds the diff shown in a plan (default 40).
	MaxDiffLines int
	// DedupeTTL is how long a delivery is remembered (default 1h; Slack
	// retries an event for about 5 minutes).
	DedupeTTL time.Duration
	// DedupeMax bounds the remembered deliveries (default 100000).
	DedupeMax int
	// WorkTimeout bounds the work of one request or answer (default 5m).
	WorkTimeout time.Duration
	// MaxPendingPerUser bounds the plans one person has waiting for an
	// answer (default 3); MaxPending all of them (default 1000).
	MaxPendingPerUser int
	MaxPending        int
	Now               func() time.Time
	// ResponseURLAllowed says whether a slash command's response_url may
	// be answered (default: https://hooks.slack.com/... only). It is the
	// way to reach someone in a channel shipbot is not a member of.
	ResponseURLAllowed func(*url.URL) bool
	// HTTPClient posts to response_urls (default: a 10s timeout).
	HTTPClient *http.Client
	// ReviewChannel, when set, is the Slack channel id (e.g. C0123ABC) of
	// the reviewers' channel: every proposal's Approve and Reject buttons
	// are posted there too, with a link to the request's thread. shipbot
	// must be a member of it.
	ReviewChannel string
	// ReviewTTL is how long shipbot remembers a proposal's messages to
	// remove their buttons when it merges or closes (default 14 days).
	// Forgetting loses nothing: a click on a stale button is answered by
	// the core.
	ReviewTTL time.Duration
}

// Adapter connects Slack to the core.
type Adapter struct {
	o    Options
	api  API
	log  *slog.Logger
	seen *ttlCache[struct{}]
	// reviews are the proposals this process showed: request id -> their
	// messages (a convenience for rendering and removing buttons; the
	// proposal itself lives in git and on the forge).
	reviews *ttlCache[*review]

	base context.Context // work outlives the delivery; cancelled only on a hard stop
	stop context.CancelFunc

	mu      sync.Mutex
	pending map[string]*pending // request id -> plan waiting for its answer

	work      tracker
	connected atomic.Bool
}

// pending is a plan shown with buttons, waiting for its requester.
type pending struct {
	plan   *gitops.Plan
	userID string // Slack user who asked: the only one who may answer
	ref    msgRef // the plan's message
	at     time.Time
	timer  *time.Timer
	// sealed: its buttons carry a token any replica can act on, so it
	// outlives this process (Shutdown leaves it waiting).
	sealed bool
}

// msgRef names a message shipbot posted and keeps updating.
type msgRef struct {
	channel, ts string
	// thread is the ts of the thread the message is a reply in; "" when
	// it is a top-level message (its own replies are then its thread).
	thread string
}

// threadTS is the thread where replies about the message go.
func (r msgRef) threadTS() string {
	if r.thread != "" {
		return r.thread
	}
	return r.ts
}

// New returns an Adapter. It accepts deliveries until Shutdown.
func New(o Options) (*Adapter, error) {
	switch {
	case o.API == nil:
		return nil, errors.New("slack: no API")
	case o.Core == nil:
		return nil, errors.New("slack: no core")
	case o.Directory == nil:
		return nil, errors.New("slack: no directory")
	case o.ReviewChannel != "" && !channelIDRe.MatchString(o.ReviewChannel):
		return nil, fmt.Errorf("slack: review channel %q: want a Slack channel id like C0123ABC, not a name", o.ReviewChannel)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = NopMetrics{}
	}
	if o.Command == "" {
		o.Command = "/ship"
	}
	if o.MaxDiffLines <= 0 {
		o.MaxDiffLines = defaultMaxDiff
	}
	if o.DedupeTTL <= 0 {
		o.DedupeTTL = time.Hour
	}
	if o.DedupeMax <= 0 {
		o.DedupeMax = 100000
	}
	if o.WorkTimeout <= 0 {
		o.WorkTimeout = 5 * time.Minute
	}
	if o.MaxPendingPerUser <= 0 {
		o.MaxPendingPerUser = 3
	}
	if o.MaxPending <= 0 {
		o.MaxPending = 1000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ResponseURLAllowed == nil {
		o.ResponseURLAllowed = slackResponseURL
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if o.ReviewTTL <= 0 {
		o.ReviewTTL = 14 * 24 * time.Hour
	}
	a := &Adapter{
		o:       o,
		log:     o.Logger,
		seen:    newTTLCache[struct{}](o.DedupeTTL, o.DedupeMax, o.Now),
		reviews: newTTLCache[*review](o.ReviewTTL, maxReviews, o.Now),
		pending: map[string]*pending{},
	}
	a.api = WithRateLimit(o.API, o.RateLimit, o.Logger, o.Metrics)
	a.base, a.stop = context.WithCancel(context.Background())
	a.work.log = o.Logger
	return a, nil
}

// Ready reports whether shipbot is connected to Slack and taking requests.
func (a *Adapter) Ready() bool { return a.Accepting() && a.connected.Load() }

// Accepting reports whether new deliveries are taken (false once Shutdown began).
func (a *Adapter) Accepting() bool { return a.work.Open() }

// StopAccepting refuses new deliveries; work in flight goes on.
func (a *Adapter) StopAccepting() { a.work.CloseIntake() }

// Shutdown stops taking deliveries, lets the work in flight finish (a
// confirmed change is committed and its message updated), then cancels the
// plans still waiting for an answer and says so in their messages. If ctx
// ends first, the remaining work is cancelled and ctx's error returned.
func (a *Adapter) Shutdown(ctx context.Context) error {
	a.StopAccepting()
	defer a.stop()
	if err := a.work.Wait(ctx); err != nil {
		a.log.Error("shutdown: work still running; cancelling it", "err", err)
		return err
	}
	a.mu.Lock()
	left := make([]*pending, 0, len(a.pending))
	kept := 0
	for id, p := range a.pending {
		p.timer.Stop()
		delete(a.pending, id)
		if p.sealed {
			kept++ // its buttons work on any replica, and after a restart
			continue
		}
		left = append(left, p)
	}
	a.mu.Unlock()
	for _, p := range left {
		a.work.Go(func() { a.finishUnanswered(ctx, p, "shipbot is shutting down", "cancelled") })
	}
	if err := a.work.Wait(ctx); err != nil {
		a.log.Error("shutdown: could not update every waiting plan", "err", err)
		return err
	}
	a.log.Info("slack adapter stopped", "cancelled_plans", len(left), "plans_left_to_the_next_replica", kept)
	return nil
}

// tracker runs work in goroutines and waits for it. New deliveries go
// through Intake, which refuses them once the intake is closed: checking
// and registering are one step, so Shutdown's wait sees every delivery it
// did not refuse.
type tracker struct {
	log    *slog.Logger
	mu     sync.Mutex
	n      int
	idle   chan struct{}
	closed bool
}

// Open reports whether Intake takes work.
func (t *tracker) Open() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return !t.closed
}

// CloseIntake makes Intake refuse work from now on.
func (t *tracker) CloseIntake() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
}

// Intake runs f for a new delivery, unless the intake is closed.
func (t *tracker) Intake(f func()) bool {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return false
	}
	t.add()
	t.mu.Unlock()
	t.run(f)
	return true
}

// Go runs f, work that belongs to a delivery already taken.
func (t *tracker) Go(f func()) {
	t.mu.Lock()
	t.add()
	t.mu.Unlock()
	t.run(f)
}

func (t *tracker) add() {
	if t.n == 0 {
		t.idle = make(chan struct{})
	}
	t.n++
}

func (t *tracker) run(f func()) {
	go func() {
		defer t.done()
		defer func() {
			if r := recover(); r != nil {
				t.log.Error("panic in slack handler", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			}
		}()
		f()
	}()
}

func (t *tracker) done() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n--; t.n == 0 {
		close(t.idle)
	}
}

// Wait returns when no work runs, or with ctx's error.
func (t *tracker) Wait(ctx context.Context) error {
	for {
		t.mu.Lock()
		if t.n == 0 {
			t.mu.Unlock()
			return nil
		}
		idle := t.idle
		t.mu.Unlock()
		select {
		case <-idle:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// firstDelivery records keys and reports whether none of them was seen.
func (a *Adapter) firstDelivery(keys ...string) bool {
	first := true
	for _, k := range keys {
		if k != "" && !a.seen.Add(k, struct{}{}) {
			first = false
		}
	}
	return first
}

// inbound is one chat message to shipbot, whatever way it came.
type inbound struct {
	kind     string // "slash", "mention", "dm"
	team     string
	channel  string
	user     string
	text     string
	ts       string // mention, dm: the message
	threadTS string // mention, dm: the thread it is in, if any
	trigger  string // slash: the trigger id
	// responseURL (slash) answers the command even where shipbot can't
	// post. It is a capability: never logged.
	responseURL string
}

// requestID derives the request id from Slack's ids for the message, so a
// redelivery maps to the same request (and so to the same commit).
func (in inbound) requestID() string {
	if in.kind == "slash" {
		return gitops.NewRequestID("slack", in.team, in.channel, in.user, "slash", in.trigger)
	}
	return gitops.NewRequestID("slack", in.team, in.channel, in.ts)
}

// dedupeKey names the message itself (not the delivery).
func (in inbound) dedupeKey() string {
	if in.kind == "slash" {
		return "slash:" + in.team + ":" + in.trigger
	}
	return "msg:" + in.team + ":" + in.channel + ":" + in.ts
}

// receive takes a message after its delivery was acknowledged.
func (a *Adapter) receive(in inbound, deliveryKey string) {
	log := a.log.With("via", in.kind, "slack_user", in.user, "slack_channel", in.channel)
	if !a.Accepting() {
		log.Warn("delivery dropped: shutting down")
		return
	}
	if !a.firstDelivery(deliveryKey, in.dedupeKey()) {
		log.Info("duplicate delivery ignored", "request", in.requestID())
		return
	}
	if !a.work.Intake(func() { a.handleMessage(in) }) {
		log.Warn("delivery dropped: shutting down", "request", in.requestID())
	}
}

// click is a press on a plan's button.
type click struct {
	team, channel, user  string
	actionID, value      string
	messageTS, actionTS  string
	triggerID, container string
	// ack acknowledges the delivery to Slack (nil: it was already): a
	// Confirm is acknowledged once its change was written, or dropped
	// unacknowledged when this replica stops taking work, so that Slack
	// delivers it again elsewhere.
	ack func()
}

// acked acknowledges c's delivery if it was not yet.
func (c click) acked() {
	if c.ack != nil {
		c.ack()
	}
}

// receiveClick takes a button press after it was acknowledged.
func (a *Adapter) receiveClick(c click) {
	log := a.log.With("slack_user", c.user, "slack_channel", c.channel, "request", c.value)
	if !a.Accepting() {
		log.Warn("click dropped unacknowledged: shutting down (Slack delivers it again)")
		return
	}
	if !a.firstDelivery("click:" + c.team + ":" + c.user + ":" + c.actionTS + ":" + c.triggerID) {
		log.Info("duplicate click ignored")
		c.acked()
		return
	}
	handle := a.handleClick
	switch c.actionID {
	case actionApprove, actionReject:
		handle = a.handleReviewClick
	case actionIncidentRollback:
		handle = a.incidentRollback
	}
	if !a.work.Intake(func() { handle(c) }) {
		log.Warn("click dropped: shutting down")
	}
}

func (a *Adapter) handleMessage(in inbound) {
	ctx, cancel := context.WithTimeout(a.base, a.o.WorkTimeout)
	defer cancel()
	id := in.requestID()
	log := a.log.With("request", id, "via", in.kind, "slack_user", in.user, "slack_channel", in.channel)

	req, err := command.Parse(unescaper.Replace(in.text))
	if err != nil {
		log.Info("request rejected", "reason", userMessage(err))
		a.o.Metrics.Request("invalid", string(gitops.OutcomeRejected))
		a.reply(ctx, log, in, textMessage(userMessage(err)))
		return
	}
	if req.Action == gitops.ActionHelp {
		help := command.Help()
		if req.App != "" {
			help = "usage: " + command.Usage(gitops.Action(req.App))
		}
		a.o.Metrics.Request(string(gitops.ActionHelp), string(gitops.OutcomeAnswered))
		a.reply(ctx, log, in, textMessage("```\n"+help+"\n```"))
		return
	}
	log = log.With("action", string(req.Action), "app", req.App, "env", req.Env)

	ident, err := a.o.Directory.Resolve(ctx, in.user)
	if err != nil {
		a.refuse(ctx, log, in, id, req.Action, "identity", err)
		return
	}
	channel, err := a.o.Directory.ChannelName(ctx, in.channel)
	if err != nil {
		a.refuse(ctx, log, in, id, req.Action, "channel", err)
		return
	}
	log = log.With("user", ident.Subject, "groups", ident.Groups, "channel", channel)
	if req.Action.Writes() {
		if msg := a.tooManyPending(in.user); msg != "" {
			log.Info("request refused", "reason", msg)
			a.o.Metrics.Denied("busy")
			a.o.Metrics.Request(string(req.Action), string(gitops.OutcomeRejected))
			a.reply(ctx, log, in, textMessage(fmt.Sprintf("[%s] %s", id, msg)))
			return
		}
	}
	req.ID, req.User, req.Channel, req.At = id, ident.Subject, channel, a.o.Now()
	req.Groups, req.GroupsUnknown = ident.Groups, ident.GroupsUnknown

	// The request's one message: posted now, updated in place from here on.
	ref, err := a.post(ctx, in, workingMessage(id, in.user, req))
	if err != nil {
		// Without a message of its own there is no thread to work in:
		// nothing is done, and the requester is told why, through the
		// slash command's response_url when the channel is closed to us.
		log.Error("can't post to the channel; nothing done", "err", err)
		a.o.Metrics.Request(string(req.Action), string(gitops.OutcomeFailed))
		text := fmt.Sprintf("[%s] shipbot can't post in this channel (%s), so it did nothing. /invite @shipbot here, or send the command to shipbot in a direct message.", id, slackErrorCode(err))
		if err := a.respond(ctx, in, textMessage(text)); err != nil {
			log.Error("the requester could not be told", "err", err)
		}
		return
	}
	// The core records where news about the request goes (a proposal's
	// approvals given elsewhere reach this thread through ProposalUpdated).
	req.Thread = threadLocator(ref)
	resp := a.o.Core.Handle(ctx, req)
	if resp.Outcome == gitops.OutcomeDenied {
		a.o.Metrics.Denied("policy")
	}
	if resp.Outcome != gitops.OutcomeConfirm || resp.Plan == nil {
		a.o.Metrics.Request(string(req.Action), string(resp.Outcome))
		a.update(ctx, log, ref, textMessage(resp.Text))
		if req.Action == gitops.ActionApprove {
			// An approval typed as a command: the proposal's own message
			// (and its buttons, once it merged) follow, as after a click.
			a.proposalChanged(ctx, log, resp, nil)
		}
		return
	}
	p := &pending{plan: resp.Plan, userID: in.user, ref: ref, at: req.At}
	timeout := a.o.Core.ConfirmTimeout()
	a.mu.Lock()
	a.pending[id] = p
	p.timer = time.AfterFunc(timeout, func() { a.expire(id) })
	a.mu.Unlock()
	log.Info("plan shown; waiting for the requester", "timeout", timeout)
	value := a.buttonValue(log, resp.Plan, in.user)
	a.mu.Lock()
	p.sealed = value != resp.Plan.Request.ID
	a.mu.Unlock()
	if err := a.update(ctx, log, ref, planMessage(resp.Plan, in.user, timeout.String(), value, a.o.MaxDiffLines)); err != nil {
		// Nobody can press buttons that were never shown.
		if p := a.take(id); p != nil {
			a.o.Core.Cancel(p.plan, "the plan could not be shown in Slack")
			a.o.Metrics.Request(string(req.Action), string(gitops.OutcomeFailed))
		}
	}
}

// refuse answers a request shipbot won't pass to the core: the user or
// channel can't be identified, or Slack could not be asked.
func (a *Adapter) refuse(ctx context.Context, log *slog.Logger, in inbound, id string, action gitops.Action, reason string, err error) {
	text, outcome := a.refusal(log, id, action, reason, err)
	a.o.Metrics.Request(string(action), string(outcome))
	a.reply(ctx, log, in, textMessage(text))
}

// refusal logs and counts why shipbot refuses a request it could not
// check with Slack, and returns the reply: the reason for a
// *gitops.UserError, a "try again" without internals otherwise.
func (a *Adapter) refusal(log *slog.Logger, id string, action gitops.Action, reason string, err error) (string, gitops.Outcome) {
	var ue *gitops.UserError
	if errors.As(err, &ue) {
		log.Warn("request denied", "reason", reason, "why", ue.Message)
		a.o.Metrics.Denied(reason)
		return fmt.Sprintf("[%s] denied: %s", id, ue.Message), gitops.OutcomeDenied
	}
	log.Error("request failed", "reason", reason, "err", err)
	return fmt.Sprintf("[%s] shipbot could not check this request with Slack and did nothing; try again in a minute. Operators can find the details in the log under request %s.", id, id), gitops.OutcomeFailed
}

func userMessage(err error) string {
	var ue *gitops.UserError
	if errors.As(err, &ue) {
		return ue.Message
	}
	return err.Error()
}

func (a *Adapter) tooManyPending(userID string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.pending) >= a.o.MaxPending {
		return "shipbot has too many plans waiting for an answer; try again in a few minutes"
	}
	n := 0
	for _, p := range a.pending {
		if p.userID == userID {
			n++
		}
	}
	if n >= a.o.MaxPendingPerUser {
		return fmt.Sprintf("you have %d plans waiting for your answer; confirm or cancel one of them first", n)
	}
	return ""
}

// take removes the pending plan id and stops its timer.
func (a *Adapter) take(id string) *pending {
	a.mu.Lock()
	defer a.mu.Unlock()
	p := a.pending[id]
	if p != nil {
		p.timer.Stop()
		delete(a.pending, id)
	}
	return p
}

// expire cancels a plan nobody answered in time. Taking the plan and
// registering the work happen under a.mu, so Shutdown either cancels the
// plan itself or waits for this.
func (a *Adapter) expire(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p := a.pending[id]
	if p == nil {
		return
	}
	delete(a.pending, id)
	a.work.Go(func() {
		ctx, cancel := context.WithTimeout(a.base, a.o.WorkTimeout)
		defer cancel()
		a.finishUnanswered(ctx, p, fmt.Sprintf("no answer within %s", a.o.Core.ConfirmTimeout()), "expired")
	})
}

// finishUnanswered cancels a plan that got no answer and says so.
func (a *Adapter) finishUnanswered(ctx context.Context, p *pending, why, outcome string) {
	log := a.log.With("request", p.plan.Request.ID, "user", p.plan.Request.User)
	resp := a.o.Core.Cancel(p.plan, why)
	a.o.Metrics.Request(string(p.plan.Request.Action), outcome)
	a.update(ctx, log, p.ref, resultMessage(p.plan, p.userID, ":no_entry_sign:", "", resp.Text, a.o.MaxDiffLines))
}

// buttonValue is what a plan's buttons carry: a token any replica can
// confirm from (Sealer), or the request id when plans wait in memory only.
func (a *Adapter) buttonValue(log *slog.Logger, p *gitops.Plan, userID string) string {
	sealer, ok := a.o.Core.(Sealer)
	if !ok {
		return p.Request.ID
	}
	token, err := sealer.Seal(p, userID)
	switch {
	case errors.Is(err, gitops.ErrNoConfirmKey):
		return p.Request.ID
	case err != nil:
		log.Warn("plan waits in memory only", "err", err)
		return p.Request.ID
	case len(token) > maxButtonValue:
		log.Warn("plan waits in memory only: its confirmation token is too long for a Slack button", "bytes", len(token))
		return p.Request.ID
	}
	return token
}

func (a *Adapter) handleClick(c click) {
	defer c.acked()
	ctx, cancel := context.WithTimeout(a.base, a.o.WorkTimeout)
	defer cancel()
	id, answerer, token := c.value, "", ""
	sealer, _ := a.o.Core.(Sealer)
	if sealer != nil {
		if rid, who, ok := sealer.SealedRequest(c.value); ok {
			id, answerer, token = rid, who, c.value
		}
	}
	log := a.log.With("request", id, "slack_user", c.user, "slack_channel", c.channel, "answer", c.actionID)
	verb := "confirm"
	if c.actionID == actionCancel {
		verb = "cancel"
	}

	a.mu.Lock()
	p := a.pending[id]
	switch {
	case p == nil && token != "":
		a.mu.Unlock()
		a.resumeClick(ctx, log, c, sealer, id, answerer, token, verb)
		return
	case p == nil:
		a.mu.Unlock()
		log.Info("answer to a plan that is not waiting")
		a.ephemeral(ctx, log, c.channel, c.user, mrkdwnMessage(fmt.Sprintf("Request %s is no longer waiting for an answer: it was answered, it expired, or shipbot restarted. Send the command again if you still need it.", escape(id))))
		return
	case p.ref.channel != c.channel || p.ref.ts != c.messageTS:
		a.mu.Unlock()
		log.Warn("answer from a message that is not the plan's")
		a.ephemeral(ctx, log, c.channel, c.user, mrkdwnMessage("These buttons don't belong to that request."))
		return
	case p.userID != c.user:
		a.mu.Unlock()
		log.Warn("answer refused: not the requester", "requester", p.userID)
		a.o.Metrics.Denied("not_requester")
		a.ephemeral(ctx, log, c.channel, c.user, mrkdwnMessage(fmt.Sprintf("Only <@%s>, who asked, can %s request %s.", p.userID, verb, escape(id))))
		return
	}
	p.timer.Stop()
	delete(a.pending, id)
	a.mu.Unlock()
	a.answer(ctx, log, c, p)
}

// resumeClick answers a click on a plan this replica does not hold (another
// replica showed it, or this one restarted): the button's token says who
// may answer; a Confirm re-plans the request and writes it only if the
// diff is the one shown.
func (a *Adapter) resumeClick(ctx context.Context, log *slog.Logger, c click, sealer Sealer, id, answerer, token, verb string) {
	if answerer != c.user {
		log.Warn("answer refused: not the requester", "requester", answerer)
		a.o.Metrics.Denied("not_requester")
		a.ephemeral(ctx, log, c.channel, c.user, mrkdwnMessage(fmt.Sprintf("Only <@%s>, who asked, can %s request %s.", answerer, verb, escape(id))))
		return
	}
	ref := msgRef{channel: c.channel, ts: c.messageTS}
	if c.actionID == actionCancel {
		log.Info("plan cancelled from its token (not held by this replica)")
		a.update(ctx, log, ref, mrkdwnMessage(fmt.Sprintf(":no_entry_sign: [%s] cancelled by <@%s>; nothing was written.", escape(id), c.user)))
		return
	}
	a.update(ctx, log, ref, mrkdwnMessage(fmt.Sprintf(":hourglass_flowing_sand: [%s] confirmed by <@%s>; checking that the change is still the one shown…", escape(id), c.user)))
	plan, resp := sealer.Resume(ctx, token, c.user)
	if plan == nil {
		log.Info("resumed confirmation refused", "outcome", string(resp.Outcome))
		a.o.Metrics.Request("confirm", string(resp.Outcome))
		a.update(ctx, log, ref, mrkdwnMessage(":x: "+escape(resp.Text)))
		return
	}
	log.Info("plan resumed from its token")
	a.answer(ctx, log, c, &pending{plan: plan, userID: answerer, ref: ref, at: plan.Request.At})
}

// answer acts on the requester's click on the plan p.
func (a *Adapter) answer(ctx context.Context, log *slog.Logger, c click, p *pending) {
	plan := p.plan
	log = log.With("user", plan.Request.User, "action", string(plan.Request.Action), "app", plan.Request.App, "env", plan.Request.Env)
	if c.actionID == actionCancel {
		resp := a.o.Core.Cancel(plan, plan.Request.User+" said no")
		a.o.Metrics.Request(string(plan.Request.Action), string(resp.Outcome))
		a.update(ctx, log, p.ref, resultMessage(plan, p.userID, ":no_entry_sign:", "", resp.Text, a.o.MaxDiffLines))
		return
	}

	confirmed := a.o.Now()
	note := fmt.Sprintf("confirmed by <@%s>", c.user)
	// The core decides again at Confirm; it does so on who the requester
	// is now: deactivated, or in other Slack user groups than when asking.
	ident, err := a.o.Directory.Resolve(ctx, c.user)
	if err == nil && ident.Subject != plan.Request.User {
		err = gitops.Userf("your Slack profile now maps to %s, not to %s who asked; send the command again", ident.Subject, plan.Request.User)
	}
	if err != nil {
		text, outcome := a.refusal(log, plan.Request.ID, plan.Request.Action, "identity", err)
		a.o.Core.Cancel(plan, "the requester could not be identified at Confirm")
		a.o.Metrics.Request(string(plan.Request.Action), string(outcome))
		a.update(ctx, log, p.ref, resultMessage(plan, p.userID, ":no_entry:", note, text, a.o.MaxDiffLines))
		return
	}
	plan.Request.Groups, plan.Request.GroupsUnknown = ident.Groups, ident.GroupsUnknown
	if plan.Confirmation != "" {
		// The button of such a plan only fires through Slack's
		// confirmation dialog, whose confirm text is the answer.
		plan.Answer = plan.Confirmation
	}
	a.update(ctx, log, p.ref, progressMessage(plan, p.userID, ":hourglass_flowing_sand: "+note+"; committing…", "committing…", a.o.MaxDiffLines))
	resp := a.o.Core.Confirm(ctx, plan)
	c.acked() // written (or not, for sure): Slack need not deliver it again
	a.o.Metrics.Request(string(plan.Request.Action), string(resp.Outcome))
	icon := ":x:"
	switch resp.Outcome {
	case gitops.OutcomeCommitted:
		now := a.o.Now()
		a.o.Metrics.Committed(now.Sub(p.at), now.Sub(confirmed))
		a.o.Metrics.PushRetries(resp.Attempts - 1)
		icon = ":white_check_mark:"
	case gitops.OutcomeDenied:
		a.o.Metrics.Denied("policy")
		icon = ":no_entry:"
	case gitops.OutcomeUnknown:
		// The push may have landed: the outcome follows in the thread.
		icon = ":hourglass_flowing_sand:"
	case gitops.OutcomeProposed:
		// The policy wants approvals: a proposal is open instead of a commit.
		a.proposed(ctx, log, p, note, resp)
		return
	}
	a.update(ctx, log, p.ref, resultMessage(plan, p.userID, icon, note, resp.Text, a.o.MaxDiffLines))
	if w, ok := a.o.Core.(Watcher); ok && resp.Outcome == gitops.OutcomeCommitted && w.Watches() {
		a.watch(ctx, log, p.ref, plan, w, resp, func(icon, text string) message {
			return resultMessage(plan, p.userID, icon, note, text, a.o.MaxDiffLines)
		})
	}
}

// watch follows a landed change and keeps the message ref up to date
// (render draws it with an icon and the text so far): progress while Argo
// CD syncs, then Synced and Healthy, or Degraded with the rollback offer,
// or that the watch failed and the commit stands.
func (a *Adapter) watch(ctx context.Context, log *slog.Logger, ref msgRef, plan *gitops.Plan, w Watcher, committed gitops.Response, render func(icon, text string) message) {
	start := a.o.Now()
	res := w.Watch(ctx, plan, committed.Commit, func(line string) {
		a.update(ctx, log, ref, render(":hourglass_flowing_sand:", committed.Text+"\n"+line))
	})
	icon := ":warning:"
	switch res.Outcome {
	case gitops.OutcomeHealthy:
		icon = ":white_check_mark:"
	case gitops.OutcomeDegraded:
		icon = ":rotating_light:"
	}
	a.o.Metrics.Watched(string(res.Outcome), a.o.Now().Sub(start))
	m := render(icon, committed.Text+"\n"+res.Text)
	if res.Outcome == gitops.OutcomeDegraded && res.Rollback != "" && len(res.Rollback) <= maxButtonValue {
		// The rollback as one button: pressed, it is the presser's own
		// request in this thread (policy, diff, confirmation).
		btn := slackgo.NewButtonBlockElement(actionIncidentRollback, res.Rollback, slackgo.NewTextBlockObject(slackgo.PlainTextType, "Roll back…", false, false))
		btn.Style = slackgo.StyleDanger
		m.blocks = append(m.blocks, slackgo.NewActionBlock("shipbot_degraded", btn))
	}
	a.update(ctx, log, ref, m)
}

// reply answers a message outside its request's message: only the sender
// sees it for a slash command; a mention or DM is answered in its thread.
func (a *Adapter) reply(ctx context.Context, log *slog.Logger, in inbound, m message) {
	if in.kind == "slash" {
		err := a.ephemeral(ctx, log, in.channel, in.user, m)
		if err == nil {
			return
		}
		if err := a.respond(ctx, in, m); err != nil {
			log.Error("the requester could not be told", "err", err)
		}
		return
	}
	if _, err := a.post(ctx, in, m); err != nil {
		log.Error("slack reply failed", "err", err)
	}
}

// post posts m for in: in the thread of a mention or DM, in the channel
// for a slash command.
func (a *Adapter) post(ctx context.Context, in inbound, m message) (msgRef, error) {
	opts := m.options()
	thread := ""
	if in.kind != "slash" {
		thread = in.threadTS
		if thread == "" {
			thread = in.ts
		}
		opts = append(opts, slackgo.MsgOptionTS(thread))
	}
	ch, ts, err := a.api.PostMessageContext(ctx, in.channel, opts...)
	if err != nil {
		return msgRef{}, fmt.Errorf("chat.postMessage: %w", err)
	}
	return msgRef{channel: ch, ts: ts, thread: thread}, nil
}

// update rewrites a message shipbot posted.
func (a *Adapter) update(ctx context.Context, log *slog.Logger, ref msgRef, m message) error {
	_, _, _, err := a.api.UpdateMessageContext(ctx, ref.channel, ref.ts, m.options()...)
	if err != nil {
		log.Error("slack message update failed", "err", err, "ts", ref.ts)
		return fmt.Errorf("chat.update: %w", err)
	}
	return nil
}

// ephemeral shows m to one user only.
func (a *Adapter) ephemeral(ctx context.Context, log *slog.Logger, channel, user string, m message) error {
	if _, err := a.api.PostEphemeralContext(ctx, channel, user, m.options()...); err != nil {
		log.Error("slack ephemeral message failed", "err", err)
		return err
	}
	return nil
}

// respond answers a slash command through its response_url, visible to
// the requester only: it works in channels shipbot is not a member of.
func (a *Adapter) respond(ctx context.Context, in inbound, m message) error {
	if in.responseURL == "" {
		return errors.New("no response_url to answer through")
	}
	u, err := url.Parse(in.responseURL)
	if err != nil || !a.o.ResponseURLAllowed(u) {
		return errors.New("the slash command's response_url is not Slack's; not answered")
	}
	msg := &slackgo.WebhookMessage{Text: m.text, ResponseType: slackgo.ResponseTypeEphemeral}
	if len(m.blocks) > 0 {
		msg.Blocks = &slackgo.Blocks{BlockSet: m.blocks}
	}
	if err := slackgo.PostWebhookCustomHTTPContext(ctx, in.responseURL, a.o.HTTPClient, msg); err != nil {
		// slack-go's error may quote the URL: say what failed without it.
		return fmt.Errorf("posting to the response_url of %s failed", u.Host)
	}
	return nil
}

// slackResponseURL accepts Slack's response_urls only.
func slackResponseURL(u *url.URL) bool {
	return u.Scheme == "https" && u.Host == "hooks.slack.com" && u.User == nil
}

// isOwnMessage reports whether a message event must be ignored: shipbot's
// own messages, other bots, edits and other subtypes.
func (a *Adapter) isOwnMessage(user, botID, subtype string) bool {
	return botID != "" || subtype != "" || user == "" || (a.o.BotUserID != "" && user == a.o.BotUserID)
}

// trimCommand removes the slash command itself from a command's text, in
// case a client sent it along.
func trimCommand(cmd, text string) string {
	t := strings.TrimSpace(text)
	if rest, ok := strings.CutPrefix(t, cmd); ok && (rest == "" || rest[0] == ' ') {
		return strings.TrimSpace(rest)
	}
	return t
}
