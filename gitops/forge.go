package gitops

import (
	"context"
	"errors"
	"time"
)

// The review flow. When the policy says a change needs approvals, shipbot
// writes the same signed commit it would have pushed to the branch onto a
// proposal branch (ProposalBranch), records the proposal in the environment
// repo (refs/shipbot/proposals/<request-id>: a chain of signed record
// commits, see ledger.go), and opens it on the Forge. Approvals come from
// chat (recorded in that ledger) and from the forge (Forge.Status); when the
// policy is satisfied shipbot lands the approved tree on the branch as a
// signed commit carrying Approved-by trailers, with a compare-and-swap push
// of the branch, the proposal branch and the ledger together, and tells the
// forge (Forge.Merged). Everything a proposal needs lives in git or on the
// forge: a restart loses nothing.

// ProposalBranchPrefix starts the name of every proposal branch.
const ProposalBranchPrefix = "shipbot/"

// ProposalBranch is the branch a request's proposal lives on, derived from
// the request id so that a retried request finds its proposal.
func ProposalBranch(requestID string) string { return ProposalBranchPrefix + requestID }

// ForgeProposal identifies a proposal on the forge.
type ForgeProposal struct {
	Branch string // the proposal branch, "shipbot/<request-id>"
	Number int    // the forge's number (a GitHub pull request); 0 on a plain git host
	// URL is where a human reviews it ("" when the forge has no web page).
	URL string
	// Via is what the audit's `via` column shows: the pull request's URL,
	// or "git:shipbot/<request-id>" on a plain git host.
	Via string
}

// ProposalSpec is what the core asks a forge to open. The branch has been
// pushed already.
type ProposalSpec struct {
	RequestID string
	Branch    string // the proposal branch (head)
	Base      string // the branch to merge into, e.g. "main"
	Head      string // the commit the branch points at
	Title     string // one line
	Body      string // Markdown, from templates (the diff, the justification, who may approve, how)
	Labels    []string
	// Reviewers are the chat users who may approve (the requester not
	// among them); the adapter maps them to forge logins, skipping those it
	// has no mapping for.
	Reviewers []string
	// Group is the policy group approvers come from ("" or "*": anyone the
	// policy lets approve); an adapter may map it to a team.
	Group string
}

// ForgeState is the state of a proposal on the forge.
type ForgeState string

const (
	ForgeOpen   ForgeState = "open"
	ForgeMerged ForgeState = "merged"
	ForgeClosed ForgeState = "closed"
)

// ReviewState is what a forge review says.
type ReviewState string

const (
	ReviewApproved         ReviewState = "approved"
	ReviewChangesRequested ReviewState = "changes_requested"
	ReviewDismissed        ReviewState = "dismissed"
	ReviewCommented        ReviewState = "commented"
)

// ForgeReview is one review given on the forge.
type ForgeReview struct {
	// User is the chat user the forge login maps to, through the explicit
	// identity mapping of the configuration; "" when the login has none
	// (such a review never counts, and the reply says why).
	User   string
	Login  string // the forge login, e.g. "bobby"
	State  ReviewState
	Commit string // the head commit the review was given on
	At     time.Time
	URL    string
}

// CheckState sums up the status checks of a proposal's head.
type CheckState string

const (
	ChecksNone    CheckState = "none"    // no checks reported
	ChecksPending CheckState = "pending" // some required check has not finished
	ChecksSuccess CheckState = "success"
	ChecksFailure CheckState = "failure"
)

// ForgeStatus is what the forge shows for a proposal now.
type ForgeStatus struct {
	State ForgeState
	Head  string // the commit the proposal branch points at on the forge
	// Reviews are the reviews given on the forge, oldest first, as the
	// forge lists them (the core keeps the latest per person).
	Reviews []ForgeReview
	Checks  CheckState
	// Failing names the failing (or, with ChecksPending, the missing)
	// required checks, for the chat thread.
	Failing []string
	// Conflict: the forge says the proposal can't be merged as it is.
	Conflict bool
}

// Forge is where proposals are reviewed: GitHub pull requests
// (gitops/forge/github), or the git host itself (gitops/forge/gitonly). The
// core never asks which one it talks to.
type Forge interface {
	// Name is a short word for replies and logs, e.g. "github", "git".
	Name() string
	// Open opens a proposal for spec.Branch. It is idempotent: when an
	// open proposal of that branch exists, Open returns it.
	Open(ctx context.Context, spec ProposalSpec) (ForgeProposal, error)
	// Status reads the proposal's state, head, reviews and checks.
	Status(ctx context.Context, p ForgeProposal) (ForgeStatus, error)
	// Merged tells the forge that the core has pushed commit, the approved
	// change, onto the base branch and the proposal branch (a
	// compare-and-swap push that proves the head was the one approved).
	// The forge records the proposal as merged; GitHub does that by itself
	// when a pull request's head reaches its base, and Merged checks it.
	Merged(ctx context.Context, p ForgeProposal, commit string) error
	// Close closes the proposal without merging, saying why.
	Close(ctx context.Context, p ForgeProposal, reason string) error
	// Comment posts a note for the reviewers on the forge (approvals
	// reset, a failing check, superseded). A forge with no place for notes
	// returns nil.
	Comment(ctx context.Context, p ForgeProposal, text string) error
	// List returns the open proposals shipbot opened.
	List(ctx context.Context) ([]ForgeProposal, error)
}

// Forge errors callers act on.
var (
	// ErrForgeRateLimited: the forge asked shipbot to slow down; the
	// wrapped error says until when. Nothing was changed.
	ErrForgeRateLimited = errors.New("the forge is rate limiting shipbot")
	// ErrProposalNotFound: the forge has no such proposal.
	ErrProposalNotFound = errors.New("no such proposal on the forge")
)

// ApproverPolicy is the policy's view of approvers: who may approve a change
// under review, and who could.
type ApproverPolicy interface {
	// MayApprove decides whether q.Subject may approve (count towards) a
	// change of q.App in q.Env that needs r: the policy allows them the
	// approve action there and they are in r.Group (any group when r.Group
	// is "" or "*"). A refusal's Reason is written for the chat user.
	// q.Action is ActionApprove.
	MayApprove(ctx context.Context, q AuthzQuery, r Review) (Decision, error)
	// Approvers lists the users the policy names (g and p lines) who may
	// approve such a change, the requester excluded, sorted.
	Approvers(ctx context.Context, env, app string, r Review, requester string) ([]string, error)
	// ChatApprovers lists the chat platform's groups (e.g.
	// "slack:sre-oncall") whose members may approve such a change: the
	// policy can't tell who or how many they are.
	ChatApprovers(env, app string, r Review) ([]string, error)
}

// ProposalUpdate is news about a proposal for the request's chat thread:
// an approval arrived, approvals were reset, a check failed, it merged, it
// was closed.
type ProposalUpdate struct {
	RequestID string
	// Thread is where the request was made, as the chat front end
	// recorded it (Request.Thread); "" when unknown.
	Thread  string
	Channel string
	Text    string  // the update, written for the chat user
	Outcome Outcome // OutcomeProposed while open; committed, rejected, cancelled, failed...
	// Plan and Commit are set when the change merged: the front end may
	// follow it through Argo CD as after a direct commit.
	Plan   *Plan
	Commit string
}

// Notifier delivers news about a request to its chat thread after the
// reply: proposal updates, and the outcome of a push shipbot could not tell
// at once (landed after all, or not written). An update that can't be
// delivered is logged; it never undoes anything.
type Notifier interface {
	ProposalUpdated(ctx context.Context, u ProposalUpdate)
}

// ProposalView is a proposal as chat shows it.
type ProposalView struct {
	RequestID string
	Summary   string // e.g. "promote checkout from staging to prod: 1.4.1 -> 1.4.2"
	App, Env  string
	Requester string // chat user
	Channel   string
	Thread    string
	URL       string // the pull request; "" on a plain git host
	Via       string // the URL, or "git:shipbot/<request-id>"
	Head      string // the proposal branch's commit
	// Needed approvals from Group ("" or "*": anyone the policy lets approve).
	Needed int
	Group  string
	// Approvals counted so far, one per human.
	Approvals []ApprovalView
	// Approvers are who may still approve (the requester and those who
	// approved already not among them).
	Approvers []string
	// Blocked says what stops the merge besides missing approvals: changes
	// requested, a failing check, a conflict ("" = nothing).
	Blocked string
	Opened  time.Time
	Expires time.Time
}

// ApprovalView is one counted approver.
type ApprovalView struct {
	User  string   // chat user
	Where []string // e.g. "chat #ops", "github @bobby"
}

// Missing is how many approvals the proposal still needs.
func (v ProposalView) Missing() int { return max(0, v.Needed-len(v.Approvals)) }
