// Package templates renders the texts shipbot writes: commit messages and
// chat replies. Each template has one typed data struct; a template error is
// returned, never replaced by a default text.
package templates

import (
	"bytes"
	"embed"
	"fmt"
	"strings"
	"text/template"
	"time"
)

//go:embed *.tmpl
var files embed.FS

var set = template.Must(template.New("").Funcs(template.FuncMap{
	"short": func(s string) string {
		if len(s) > 10 {
			return s[:10]
		}
		return s
	},
	"ago":  ago,
	"in":   ahead,
	"join": strings.Join,
	// mdcell makes text safe inside a Markdown table cell.
	"mdcell": func(s string) string {
		return strings.NewReplacer("|", "\\|", "\n", " ", "\r", " ", "`", "'").Replace(s)
	},
	// fence is a Markdown code fence longer than any run of backticks in
	// s, so repo content can't end the code block early.
	"fence": func(s string) string {
		longest, run := 0, 0
		for _, r := range s {
			if r == '`' {
				run++
				longest = max(longest, run)
			} else {
				run = 0
			}
		}
		return strings.Repeat("`", max(3, longest+1))
	},
	"when": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
	// overrode says what a break-glass change overrode, from its reason.
	"overrode": overrode,
	"indent": func(prefix, s string) string {
		lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
		return prefix + strings.Join(lines, "\n"+prefix)
	},
}).ParseFS(files, "*.tmpl"))

func render(name string, data any) (string, error) {
	var b bytes.Buffer
	if err := set.ExecuteTemplate(&b, name, data); err != nil {
		return "", fmt.Errorf("render %s: %w", name, err)
	}
	return b.String(), nil
}

// overrode says what a break-glass reason overrides: "a freeze", "a pin",
// or both (the reasons the core writes: "... was frozen by ...", "... in
// the ... freeze window ...", "... is pinned to ...").
func overrode(reason string) string {
	pin := strings.Contains(reason, " is pinned to ")
	freeze := strings.Contains(reason, " was frozen by ") || strings.Contains(reason, " freeze window ")
	switch {
	case pin && freeze:
		return "a freeze and a pin"
	case pin:
		return "a pin"
	}
	return "a freeze"
}

// Ago is how long before now t was, as replies say it, e.g. "3d ago".
func Ago(now, t time.Time) string { return ago(now, t) }

func ago(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	default:
		return fmt.Sprintf("%dd ago", int(d.Hours()/24))
	}
}

// ahead is how far ahead t is, e.g. "in 2d".
func ahead(now, t time.Time) string {
	d := t.Sub(now)
	switch {
	case d < time.Minute:
		return "now"
	case d < time.Hour:
		return fmt.Sprintf("in %dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("in %dh", int(d.Hours()))
	default:
		return fmt.Sprintf("in %dd", int(d.Hours()/24))
	}
}

// Trailer is one "Key: value" line of a commit message's trailer block.
type Trailer struct{ Key, Value string }

// Commit is the data of a commit message shipbot writes.
type Commit struct {
	Action      string // rollback | restart | promote
	App, Env    string
	FromEnv     string // promote only
	From, To    string // tags (restart: the annotation values)
	RequestedBy string // display name of the requester
	Channel     string
	Reason      string // one line, already normalised
	BreakGlass  string // the freeze (or pin) this change overrides, if any
	// Pin is what the commit does to the app's pin, one sentence (a
	// rollback pins, an unpin lifts); "" = nothing.
	Pin string
	// Held are the image automation the pin holds back or restores, one
	// sentence each.
	Held     []string
	Trailers []Trailer
}

// CommitMessage renders a commit message: a subject a human reads, a body,
// and the trailer block a machine reads.
func CommitMessage(d Commit) (string, error) { return render("commit.tmpl", d) }

// Plan is the confirmation question with the exact diff.
type Plan struct {
	RequestID string
	Summary   string // e.g. "rollback checkout in prod: 1.4.2 -> 1.4.1"
	Diff      string
	Why       string
	Timeout   time.Duration
	Protected bool
	// Review says what approvals the change needs before it merges, e.g.
	// "2 approvals from sre (the requester does not count); who may
	// approve: bob, carol, dave"; "" = it lands on yes.
	Review string
	// Checked says what rendering the app before and after the change
	// showed, or why it wasn't rendered.
	Checked string
	// Warnings are said loudly, one per line, right under the summary
	// (a tag never deployed, the freeze a break-glass change overrides).
	Warnings []string
	// Notes are quieter lines under the warnings, e.g. when the tag a
	// rollback names ran before.
	Notes []string
	// Confirm is the answer the plan needs when a plain yes is not enough,
	// e.g. "yes, deploy v1.4.1"; "" = yes.
	Confirm string
}

// PlanReply renders the diff and the question.
func PlanReply(d Plan) (string, error) { return render("plan.tmpl", d) }

// Done is the reply after a commit landed.
type Done struct {
	RequestID string
	Summary   string
	Commit    string // full hash
	Branch    string
	Attempts  int
	// BreakGlass names the freeze the change overrode, said loudly.
	BreakGlass string
}

// DoneReply renders the result of a landed change.
func DoneReply(d Done) (string, error) { return render("done.tmpl", d) }

// EnvStatus is one environment's line of a status reply.
type EnvStatus struct {
	Env       string
	Tag       string
	Restarted string
	Last      *Change
	Err       string
	Live      *Live // what Argo CD shows; nil when not configured
	// Freezes are the freezes in effect in the environment.
	Freezes []Freeze
	// Pin is the app's pin in the environment; nil: not pinned.
	Pin *Pin
}

// Pin is an app pinned in an environment by a rollback, as replies show
// it.
type Pin struct {
	App, Env, Tag    string
	By, Why, Request string
	Since, Until     time.Time // Until zero: until unpin
	Now              time.Time
	// Expired: its until passed; it no longer refuses promotions, and the
	// automation it holds stays held until unpin.
	Expired bool
	// Held are the image automation the pin holds back.
	Held []string
}

// Pins is the reply to `pins [ENV]`.
type Pins struct {
	Env    string // "" = every environment
	Now    time.Time
	Pins   []Pin
	Note   string // e.g. the pins file can't be read
	Hidden string // pins left out by the policy
}

// PinsReply renders every pin.
func PinsReply(d Pins) (string, error) { return render("pins.tmpl", d) }

// Freeze is a freeze as replies show it: one set in chat with `freeze ENV`,
// or a freeze window of the configuration.
type Freeze struct {
	Env    string   // "" for a window of several environments (Envs)
	Blocks []string // the actions it blocks, e.g. promote
	Now    time.Time
	// A freeze set with `freeze ENV`:
	By, Why, Request string
	Since            time.Time
	// Until is when the freeze, or an active window, ends (a freeze: zero
	// = until unfreeze).
	Until time.Time
	// A window of the configuration:
	Window   string   // its name; "" = a freeze set in chat
	Envs     []string // the environments it freezes
	Schedule string   // e.g. "Fri 16:00 to Mon 08:00, Europe/Berlin"
	Active   bool     // in effect now, until Until
	Next     time.Time
}

// Freezes is the reply to `freezes`.
type Freezes struct {
	Now time.Time
	// Active are the freezes in effect: set in chat, and windows in effect.
	Active []Freeze
	// Windows are every freeze window of the configuration.
	Windows []Freeze
	Note    string // e.g. the freezes file can't be read
	Hidden  string // environments left out by the policy
}

// FreezesReply renders every freeze in effect and the freeze windows.
func FreezesReply(d Freezes) (string, error) { return render("freezes.tmpl", d) }

// Live is the controller's view of one app in one environment.
type Live struct {
	Sync, Health, Revision, Message string
	InGit                           bool   // the synced revision is the repo's tip for this app
	Err                             string // the controller could not be asked
}

// HealthApp is one app's line of a health reply.
type HealthApp struct {
	App  string
	Tag  string
	Live *Live
	Pin  *Pin // nil: not pinned
}

// Health is the reply to `health ENV`, unhealthy apps first.
type Health struct {
	Env  string
	Apps []HealthApp
	Note string
	// Freezes are the freezes in effect in the environment, said first.
	Freezes []Freeze
}

// HealthReply renders the apps of an environment, unhealthy first.
func HealthReply(d Health) (string, error) { return render("health.tmpl", d) }

// Change is one past change of an app in an environment.
type Change struct {
	Commit string
	When   time.Time
	Action string
	From   string
	To     string
	Who    string
	Why    string
}

// Status is the reply to `status APP`.
type Status struct {
	App  string
	Now  time.Time
	Envs []EnvStatus
}

// StatusReply renders the current tag per environment and the last change.
func StatusReply(d Status) (string, error) { return render("status.tmpl", d) }

// History is the reply to `history APP ENV [N]`.
type History struct {
	App, Env string
	Now      time.Time
	Changes  []Change
}

// HistoryReply renders past deploys, newest first.
func HistoryReply(d History) (string, error) { return render("history.tmpl", d) }

// Proposal is a change under review as chat shows it: when it opens, as
// approvals arrive, and in `proposals`.
type Proposal struct {
	RequestID string
	Headline  string // what just happened, e.g. "bob approved"; "" in lists
	Summary   string
	Requester string
	URL       string // the pull request; "" on a plain git host
	Via       string // the URL, or git:shipbot/<request-id>
	Needed    int
	Group     string   // "" = anyone the policy lets approve
	Approvals []string // "bob (chat #ops)", "carol (github @carol)"
	Missing   int
	Approvers []string // who may still approve
	Blocked   string   // what blocks the merge besides approvals
	Notes     []string // approvals that don't count, and why
	Expires   time.Time
}

// ProposalReply renders one proposal's state.
func ProposalReply(d Proposal) (string, error) { return render("proposal.tmpl", d) }

// Proposals is the reply to `proposals [APP] [ENV]`.
type Proposals struct {
	Filter string // e.g. "checkout in prod"; "" = all
	Items  []Proposal
}

// ProposalsReply renders the open proposals.
func ProposalsReply(d Proposals) (string, error) { return render("proposals.tmpl", d) }

// PullRequest is the body of a proposal on a forge (Markdown).
type PullRequest struct {
	RequestID     string
	Summary       string
	Diff          string
	Requester     string // "alice <alice@shop.example.com>"
	Channel       string
	Justification string
	Checked       string // the live check of the justification, e.g. "pagerduty triggered 2026-11-21T09:14:03Z"; "" = not checked
	Rule          string // the policy line that allowed the request
	Needed        int
	Group         string
	Approvers     []string
	Expires       time.Time
}

// PullRequestBody renders a proposal's description.
func PullRequestBody(d PullRequest) (string, error) { return render("pr_body.tmpl", d) }

// Push is a reply about a write whose push did not simply succeed: it
// landed earlier (a redelivered or retried request), its answer was lost
// and a fetch found it, it is not known yet, it is known later, the remote
// refused it, or it never reached the remote.
type Push struct {
	RequestID string
	// Kind: "earlier" (at plan time: the request landed before), "landed"
	// (at confirm time), "late" (found after an unknown outcome), "unknown"
	// (not known yet), "refused" (the remote said no), "not-written"
	// (certain: nothing was written), "late-not-written" (known after an
	// unknown outcome), "still-unknown" (shipbot stopped looking).
	Kind    string
	Summary string // e.g. "rollback checkout in prod: 1.4.2 -> 1.4.1"
	Commit  string
	Branch  string
	// Earlier: the commit landed before this confirmation (Kind landed).
	Earlier bool
	// Lost: the remote's answer was lost and a fetch found the commit.
	Lost   bool
	Reason string // a plain sentence: what happened
	Remote string // the remote's own words (a hook's message), one line
	Check  string // a command that shows whether it landed
	After  time.Duration
	// BreakGlass is the freeze a landed change overrode.
	BreakGlass string
}

// PushReply renders a reply about a push's outcome.
func PushReply(d Push) (string, error) { return render("push.tmpl", d) }
