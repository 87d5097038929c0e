package gitops

import (
	"context"
	"slices"
	"strings"
	"time"
)

// Subject is who asks, as the policy sees them.
type Subject struct {
	User    string // chat identity, e.g. "alice"
	Channel string // chat channel the request came from, e.g. "#ops"
	// Groups are the groups the chat platform vouches for, e.g. the Slack
	// user groups "slack:sre-oncall": the policy treats them as groups the
	// user is in, next to its own g lines.
	Groups []string
	// GroupsUnknown says the chat platform could not tell the user's
	// groups just now: Groups may be incomplete, so a deny line for a
	// group might have been missed. The policy then refuses what such a
	// line could have denied.
	GroupsUnknown bool
}

// AuthzQuery is one question to the policy: may Subject do Action on App in Env?
type AuthzQuery struct {
	Subject Subject
	Env     string
	Cluster string
	App     string
	Action  Action
}

// Decision is the policy's answer. A denial is a result the user sees, not
// an error.
type Decision struct {
	Allowed bool
	// Review says whether the change may land directly or needs approvals
	// (a pull request) first. Zero: direct.
	Review Review
	// Justification says whether a reason is required and of which kinds.
	Justification JustificationRule
	// BreakGlass is set when the request was allowed only by a break-glass
	// rule overriding a freeze; shipbot records it loudly.
	BreakGlass bool
	// Rule is the policy line that allowed the request, e.g.
	// "p, team-checkout, *, checkout, rollback" (empty when denied).
	Rule string
	// Reason is written for the chat user: for a denial, which rule is
	// missing, e.g. `no rule allows mallory to rollback checkout in prod
	// (add e.g. "p, mallory, prod, checkout, rollback" or a group of mallory's)`.
	Reason string
}

// Review is how many approvals a change needs before it merges, and from
// which group. The requester never counts as an approver.
type Review struct {
	Approvals int    // 0: merge directly
	Group     string // approvers must be in this group ("" = anyone allowed to approve)
}

// JustificationRule says what reason a change needs.
type JustificationRule struct {
	Required bool
	Kinds    []string // accepted kinds, e.g. "pagerduty-incident", "jira-issue"; empty = any
}

// check refuses a justification the rule does not accept.
func (r JustificationRule) check(req Request, j Justification) error {
	if !r.Required {
		return nil
	}
	if j.Text == "" {
		return Userf("%s of %s in %s needs a justification: add --why with %s", req.Action, req.App, req.Env, kindsText(r.Kinds))
	}
	if len(r.Kinds) > 0 && !slices.Contains(r.Kinds, j.Kind) {
		return Userf("%s of %s in %s needs a justification of kind %s; %q is a %s", req.Action, req.App, req.Env, strings.Join(r.Kinds, " or "), j.Text, j.Kind)
	}
	return nil
}

func kindsText(kinds []string) string {
	if len(kinds) == 0 {
		return "a reason"
	}
	return strings.Join(kinds, " or ")
}

// Authorizer decides who may do what, where. Implementations deny by default.
type Authorizer interface {
	Authorize(ctx context.Context, q AuthzQuery) (Decision, error)
}

// Justification is the reason given for a change, as validated.
type Justification struct {
	Text string // the reason as typed, normalised to one line
	Kind string // "pagerduty-incident", "jira-issue", "opsgenie-alert", or "text"
	Ref  string // the incident id or issue key, e.g. "P1X2Y3Z", "OPS-123"
	// Checked is set when the reason was checked live against its source.
	Checked *JustificationCheck
}

// JustificationCheck is the result of a live check, bound into the commit
// as the Justification-Checked trailer.
type JustificationCheck struct {
	Source string    // "pagerduty", "jira", "opsgenie"
	State  string    // the state seen, e.g. "triggered", "In Progress"
	At     time.Time // when it was checked
}

// TraceEvent is what shipbot did about a justification, to be written back
// to the ticket or incident (who, what, commit, outcome).
type TraceEvent struct {
	Request Request
	Summary string // e.g. "rollback checkout in prod: 1.4.2 -> 1.4.1"
	Commit  string
	Outcome Outcome
}

// Tracer writes a trace of what shipbot did onto the justification's source
// (a Jira comment, a PagerDuty incident note). A failed trace is logged and
// reported; it never undoes the change.
type Tracer interface {
	Trace(ctx context.Context, j Justification, e TraceEvent) error
}

// SyncStatus is what the GitOps controller reports about one app.
type SyncStatus struct {
	Sync     string // "Synced", "OutOfSync", ...
	Health   string // "Healthy", "Progressing", "Degraded", ...
	Revision string // the revision the controller synced
	Phase    string // operation phase: "Running", "Succeeded", "Failed", ...
	Message  string // the controller's own reason (conditions, failing resources)
}

// LiveStatus reads what the controller shows now for one target.
type LiveStatus interface {
	Status(ctx context.Context, t Target) (SyncStatus, error)
}

// SyncWatcher asks the controller (Argo CD) to pick up a commit and watches
// until the commit is live and healthy, failed, or the context ends.
// progress is called on every change of status.
type SyncWatcher interface {
	Watch(ctx context.Context, t Target, commit string, progress func(SyncStatus)) (SyncStatus, error)
}

// Justifier validates the justification a request carries for an environment.
// A failed check is returned as a *UserError that says what was wrong and what
// would work.
type Justifier interface {
	Justify(ctx context.Context, req Request, env Environment) (Justification, error)
}
