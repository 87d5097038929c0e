// Package gitops is shipbot's core: the domain types (Request, Target, Plan,
// Decision, Result) and the use case that turns a request into a confirmed,
// minimal, pushed commit. It declares the small interfaces it consumes
// (Authorizer, Justifier) and never imports an adapter (chat, policy, argo).
package gitops

import (
	"errors"
	"fmt"
	"time"

	"github.com/shipbot/shipbot/gitops/edit"
)

// Action is what a request asks shipbot to do.
type Action string

const (
	ActionRollback Action = "rollback"
	ActionRestart  Action = "restart"
	ActionPromote  Action = "promote"
	ActionStatus   Action = "status"
	ActionHistory  Action = "history"
	ActionHelp     Action = "help"
	ActionHealth   Action = "health" // authorized as status of each app
	ActionFreeze   Action = "freeze"
	ActionUnfreeze Action = "unfreeze"
	// ActionBreakGlass is not a command: the policy action a user needs to
	// override a freeze (with --break-glass and a justification).
	ActionBreakGlass Action = "breakglass"
	// ActionApprove approves a proposal (a change under review); it is
	// also the policy action an approver needs.
	ActionApprove Action = "approve"
	// ActionReject rejects a proposal: it is closed and nothing merges.
	ActionReject Action = "reject"
	// ActionProposals lists the open proposals (authorized as status).
	ActionProposals Action = "proposals"
	// ActionFreezes lists the freezes in effect and the configured freeze
	// windows (shown for the environments whose status the user may see).
	ActionFreezes Action = "freezes"
	// ActionUnpin lifts the pin a rollback set on an app in an environment
	// (and restores the image automation the pin held back).
	ActionUnpin Action = "unpin"
	// ActionPins lists the pins in effect (shown for the apps whose status
	// the user may see).
	ActionPins Action = "pins"
	// ActionPin is not a command: the action of the audit record of a pin
	// a rollback set (a rollback pins).
	ActionPin Action = "pin"
)

// Writes reports whether the action changes the environment repo.
func (a Action) Writes() bool {
	return a == ActionRollback || a == ActionRestart || a == ActionPromote || a == ActionFreeze || a == ActionUnfreeze || a == ActionUnpin
}

// Layout is how an app's manifests are laid out for one environment.
type Layout = edit.Layout

const (
	LayoutKustomize   = edit.LayoutKustomize
	LayoutHelm        = edit.LayoutHelm
	LayoutManifest    = edit.LayoutManifest
	LayoutApplication = edit.LayoutApplication
)

// Request is one parsed chat command. Free-text fields (Why) are hostile
// data: they are never interpreted, only rendered as data.
type Request struct {
	ID      string // deterministic request id, e.g. "shp-7k3q9x2m4a"
	Action  Action
	App     string
	Env     string // target environment (for promote: TO)
	FromEnv string // promote only: the source environment
	Tag     string // rollback only: explicit target tag ("" = previous deploy)
	Why     string // justification text as typed
	Limit   int    // history only: how many entries (0 = default)
	// Until is when a freeze ends, as typed (freeze only; "" = until unfreeze):
	// a date, a date and time, RFC 3339, or a duration like 4h or 2d.
	Until string
	// BreakGlass asks to override a freeze, or the pin of the app (needs
	// the breakglass permission and a justification; recorded loudly).
	BreakGlass bool
	// Proposal is the request id of the proposal an approve or reject is
	// about.
	Proposal string
	// Thread is where the chat front end will show news about this
	// request (an opaque locator it can read back, e.g. a Slack channel
	// and message timestamp); it is recorded with a proposal so that
	// approvals given elsewhere reach the requester's thread.
	Thread string

	User    string // chat identity of the requester (policy subject)
	Channel string // chat channel the request came from
	// Groups are the requester's groups as the chat platform knows them
	// (Subject.Groups), e.g. "slack:sre-oncall".
	Groups []string
	// GroupsUnknown: the chat platform could not tell the groups
	// (Subject.GroupsUnknown).
	GroupsUnknown bool
	At            time.Time
}

// subject is the requester as the policy sees them.
func (r Request) subject() Subject {
	return Subject{User: r.User, Channel: r.Channel, Groups: r.Groups, GroupsUnknown: r.GroupsUnknown}
}

// Environment is one deployment environment, in promotion order.
type Environment struct {
	Name      string
	Cluster   string
	Protected bool // protected environments need a checked justification
}

// Target is where one app's manifests live in one environment.
type Target struct {
	App     string
	Env     string
	ArgoApp string // optional Argo CD Application name
	edit.Location
}

// RestartAnnotation is the pod-template annotation a restart sets.
const RestartAnnotation = edit.RestartAnnotation

// Sentinel errors callers act on.
var (
	ErrUnknownApp = errors.New("unknown app")
	ErrUnknownEnv = errors.New("unknown environment")
	ErrStale      = errors.New("the environment changed since the plan was shown")
	ErrNoChange   = errors.New("nothing to change")
	ErrNoPrevious = errors.New("no previous deploy in history")
	// ErrShared: the change would also change another app or environment
	// (a base or file they share).
	ErrShared = errors.New("the change reaches beyond its app and environment")
)

// UserError is an error whose Message is written for the chat user.
// Internals (Err) go to the log only.
type UserError struct {
	Message string
	Err     error
}

func (e *UserError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Message, e.Err)
	}
	return e.Message
}

func (e *UserError) Unwrap() error { return e.Err }

// Userf builds a UserError with a formatted message.
func Userf(format string, args ...any) *UserError {
	return &UserError{Message: fmt.Sprintf(format, args...)}
}
