package gitops

import "context"

// Subject is who asks, as the policy sees them.
type Subject struct {
	User    string // chat identity, e.g. "alice"
	Channel string // chat channel the request came from, e.g. "#ops"
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
	// Rule is the policy line that allowed the request, e.g.
	// "p, team-checkout, *, checkout, rollback" (empty when denied).
	Rule string
	// Reason is written for the chat user: for a denial, which rule is
	// missing, e.g. `no rule allows mallory to rollback checkout in prod
	// (add e.g. "p, mallory, prod, checkout, rollback" or a group of mallory's)`.
	Reason string
}

// Authorizer decides who may do what, where. Implementations deny by default.
type Authorizer interface {
	Authorize(ctx context.Context, q AuthzQuery) (Decision, error)
}

// Justification is the reason given for a change, as validated.
type Justification struct {
	Text string // the reason as typed, normalised to one line
	Kind string // "pagerduty-incident", "jira-issue", or "text"
	Ref  string // the incident id or issue key, e.g. "P1X2Y3Z", "OPS-123"
}

// Justifier validates the justification a request carries for an environment.
// A failed check is returned as a *UserError that says what was wrong and what
// would work.
type Justifier interface {
	Justify(ctx context.Context, req Request, env Environment) (Justification, error)
}
