// Package github is the GitHub forge: proposals are pull requests, reviews
// and status checks come from GitHub's REST API (through go-github), and
// webhooks tell shipbot when to look again.
//
// shipbot never asks GitHub to merge: it pushes the approved commit onto
// the base branch and the proposal branch itself, and GitHub marks the pull
// request merged when its head reaches its base (Forge.Merged checks that).
package github

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/shipbot/shipbot/gitops"
)

// Forge is gitops.Forge on GitHub (github.com or GitHub Enterprise Server).
type Forge struct {
	o      Options
	api    *gh.Client
	token  func(context.Context) (string, error) // what git over HTTPS authenticates with
	logins map[string]string                     // lower-case GitHub login -> chat user
	log    *slog.Logger
}

var _ gitops.Forge = (*Forge)(nil)

// New returns the GitHub forge of o.Owner/o.Repo. It makes no call.
func New(o Options) (*Forge, error) {
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("github forge: %w", err)
	}
	f := &Forge{o: o, logins: map[string]string{}, log: o.Logger.With("forge", "github", "repo", o.Owner+"/"+o.Repo)}
	for user, login := range o.Logins {
		f.logins[strings.ToLower(login)] = user
	}
	base := o.HTTPClient.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	client := func(token func(context.Context) (string, error), reject func(string)) (*gh.Client, error) {
		hc := *o.HTTPClient
		hc.Transport = &limiter{
			base:    &authTransport{base: base, token: token, reject: reject},
			now:     o.Now,
			maxWait: o.MaxWait,
			log:     f.log,
		}
		return withBaseURL(gh.NewClient(&hc), o.BaseURL)
	}
	var err error
	if o.App == nil {
		tok := o.Token
		f.token = func(context.Context) (string, error) { return tok, nil }
		f.api, err = client(f.token, nil)
		if err != nil {
			return nil, err
		}
		return f, nil
	}
	key, err := parsePrivateKey(o.App.PrivateKeyPEM)
	if err != nil {
		return nil, fmt.Errorf("github forge: %w", err)
	}
	tokens := &appTokens{app: *o.App, key: key, now: o.Now, log: f.log}
	if tokens.client, err = client(tokens.JWT, nil); err != nil {
		return nil, err
	}
	if f.api, err = client(tokens.Token, tokens.Reject); err != nil {
		return nil, err
	}
	f.token = tokens.Token
	return f, nil
}

// withBaseURL points c at baseURL: "" keeps github.com; a URL ending in
// /api/v3/ is a GitHub Enterprise Server; any other is the API root as is.
func withBaseURL(c *gh.Client, baseURL string) (*gh.Client, error) {
	if baseURL == "" {
		return c, nil
	}
	if !strings.HasSuffix(baseURL, "/") {
		baseURL += "/"
	}
	if strings.HasSuffix(baseURL, "/api/v3/") {
		upload := strings.TrimSuffix(baseURL, "api/v3/") + "api/uploads/"
		c, err := c.WithEnterpriseURLs(baseURL, upload)
		if err != nil {
			return nil, fmt.Errorf("github forge: base URL: %w", err)
		}
		return c, nil
	}
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("github forge: base URL: %w", err)
	}
	c.BaseURL, c.UploadURL = u, u
	return c, nil
}

// Name is "github".
func (f *Forge) Name() string { return "github" }

// Open opens a pull request of spec.Branch into spec.Base (Options.BaseBranch
// when empty), or returns the open one of that branch. Labels (Options.Labels
// and spec.Labels) and review requests (the mapped logins of spec.Reviewers,
// and the team of spec.Group) are best effort: once the pull request
// exists, a failure to add them is logged and Open succeeds.
func (f *Forge) Open(ctx context.Context, spec gitops.ProposalSpec) (gitops.ForgeProposal, error) {
	if !strings.HasPrefix(spec.Branch, gitops.ProposalBranchPrefix) {
		return gitops.ForgeProposal{}, fmt.Errorf("github: open a pull request of %q: not a proposal branch", spec.Branch)
	}
	base := spec.Base
	if base == "" {
		base = f.o.BaseBranch
	}
	log := f.log.With("branch", spec.Branch, "request", spec.RequestID)
	pr, err := f.findOpen(ctx, spec.Branch)
	if err != nil {
		return gitops.ForgeProposal{}, fmt.Errorf("github: look for a pull request of %s: %w", spec.Branch, err)
	}
	created := pr == nil
	if pr == nil {
		pr, _, err = f.api.PullRequests.Create(ctx, f.o.Owner, f.o.Repo, &gh.NewPullRequest{
			Title: gh.String(spec.Title),
			Body:  gh.String(spec.Body),
			Head:  gh.String(spec.Branch),
			Base:  gh.String(base),
		})
		if err != nil && statusOf(err) == http.StatusUnprocessableEntity {
			// Perhaps a concurrent Open won the race: take its pull request.
			if again, err2 := f.findOpen(ctx, spec.Branch); err2 == nil && again != nil {
				pr, err, created = again, nil, false
			}
		}
		if err != nil {
			return gitops.ForgeProposal{}, fmt.Errorf("github: open a pull request of %s into %s: %w", spec.Branch, base, f.translate(err))
		}
		log.InfoContext(ctx, "pull request opened", "number", pr.GetNumber())
	} else {
		log.InfoContext(ctx, "pull request exists", "number", pr.GetNumber())
	}
	p := proposalOf(pr)
	f.addLabels(ctx, log, pr, append(slices.Clone(f.o.Labels), spec.Labels...))
	if created || f.noReviewActivity(ctx, log, pr) {
		f.requestReviewers(ctx, log, pr, spec)
	}
	return p, nil
}

func proposalOf(pr *gh.PullRequest) gitops.ForgeProposal {
	return gitops.ForgeProposal{
		Branch: pr.GetHead().GetRef(),
		Number: pr.GetNumber(),
		URL:    pr.GetHTMLURL(),
		Via:    pr.GetHTMLURL(),
	}
}

// findOpen returns the open pull request whose head is branch of this
// repository, or nil.
func (f *Forge) findOpen(ctx context.Context, branch string) (*gh.PullRequest, error) {
	opts := &gh.PullRequestListOptions{
		State:       "open",
		Head:        f.o.Owner + ":" + branch,
		ListOptions: gh.ListOptions{PerPage: 100},
	}
	for {
		prs, resp, err := f.api.PullRequests.List(ctx, f.o.Owner, f.o.Repo, opts)
		if err != nil {
			return nil, f.translate(err)
		}
		for _, pr := range prs {
			if pr.GetHead().GetRef() == branch && f.sameRepo(pr.GetHead().GetRepo()) {
				return pr, nil
			}
		}
		if resp.NextPage == 0 {
			return nil, nil
		}
		opts.Page = resp.NextPage
	}
}

func (f *Forge) sameRepo(r *gh.Repository) bool {
	if r == nil {
		return true // GitHub leaves it out when the head repo was deleted; the head filter already matched
	}
	return strings.EqualFold(r.GetFullName(), f.o.Owner+"/"+f.o.Repo)
}

func (f *Forge) addLabels(ctx context.Context, log *slog.Logger, pr *gh.PullRequest, want []string) {
	have := map[string]bool{}
	for _, l := range pr.Labels {
		have[strings.ToLower(l.GetName())] = true
	}
	var add []string
	for _, l := range want {
		if l != "" && !have[strings.ToLower(l)] {
			have[strings.ToLower(l)] = true
			add = append(add, l)
		}
	}
	if len(add) == 0 {
		return
	}
	if _, _, err := f.api.Issues.AddLabelsToIssue(ctx, f.o.Owner, f.o.Repo, pr.GetNumber(), add); err != nil {
		log.WarnContext(ctx, "could not label the pull request", "number", pr.GetNumber(), "labels", add, "err", f.translate(err))
	}
}

// noReviewActivity: an existing pull request nobody was asked to review
// and nobody reviewed (an earlier Open stopped before asking).
func (f *Forge) noReviewActivity(ctx context.Context, log *slog.Logger, pr *gh.PullRequest) bool {
	if len(pr.RequestedReviewers) > 0 || len(pr.RequestedTeams) > 0 {
		return false
	}
	reviews, _, err := f.api.PullRequests.ListReviews(ctx, f.o.Owner, f.o.Repo, pr.GetNumber(), &gh.ListOptions{PerPage: 1})
	if err != nil {
		log.WarnContext(ctx, "could not list reviews", "number", pr.GetNumber(), "err", f.translate(err))
		return false
	}
	return len(reviews) == 0
}

// requestReviewers asks the mapped logins of spec.Reviewers and the team of
// spec.Group to review. GitHub refuses the whole request when one of them
// can't review (422, e.g. not a collaborator): then each is asked alone,
// and the refusals are logged.
func (f *Forge) requestReviewers(ctx context.Context, log *slog.Logger, pr *gh.PullRequest, spec gitops.ProposalSpec) {
	author := strings.ToLower(pr.GetUser().GetLogin())
	seen := map[string]bool{}
	var logins []string
	for _, user := range spec.Reviewers {
		login, ok := f.o.Logins[user]
		if !ok {
			log.DebugContext(ctx, "no GitHub login for reviewer; not requested", "user", user)
			continue
		}
		k := strings.ToLower(login)
		if seen[k] || k == author {
			continue
		}
		seen[k] = true
		logins = append(logins, login)
	}
	var teams []string
	if spec.Group != "" && spec.Group != "*" {
		if team, ok := f.o.Teams[spec.Group]; ok && team != "" {
			teams = []string{team}
		}
	}
	if len(logins)+len(teams) == 0 {
		return
	}
	req := gh.ReviewersRequest{Reviewers: logins, TeamReviewers: teams}
	_, _, err := f.api.PullRequests.RequestReviewers(ctx, f.o.Owner, f.o.Repo, pr.GetNumber(), req)
	if err == nil {
		return
	}
	if statusOf(err) != http.StatusUnprocessableEntity || len(logins)+len(teams) == 1 {
		log.WarnContext(ctx, "GitHub refused the review request", "number", pr.GetNumber(), "reviewers", logins, "teams", teams, "err", f.translate(err))
		return
	}
	var one []gh.ReviewersRequest
	for _, l := range logins {
		one = append(one, gh.ReviewersRequest{Reviewers: []string{l}})
	}
	for _, t := range teams {
		one = append(one, gh.ReviewersRequest{TeamReviewers: []string{t}})
	}
	for _, r := range one {
		if _, _, err := f.api.PullRequests.RequestReviewers(ctx, f.o.Owner, f.o.Repo, pr.GetNumber(), r); err != nil {
			log.WarnContext(ctx, "GitHub refused the review request", "number", pr.GetNumber(), "reviewers", r.Reviewers, "teams", r.TeamReviewers, "err", f.translate(err))
			if statusOf(err) != http.StatusUnprocessableEntity {
				return
			}
		}
	}
}

// Status reads the pull request, its reviews (oldest first) and the checks
// of its head.
func (f *Forge) Status(ctx context.Context, p gitops.ForgeProposal) (gitops.ForgeStatus, error) {
	pr, err := f.pull(ctx, p)
	if err != nil {
		return gitops.ForgeStatus{}, err
	}
	st := gitops.ForgeStatus{State: gitops.ForgeOpen, Head: pr.GetHead().GetSHA()}
	switch {
	case pr.GetMerged():
		st.State = gitops.ForgeMerged
	case pr.GetState() == "closed":
		st.State = gitops.ForgeClosed
	default:
		st.Conflict = (pr.Mergeable != nil && !*pr.Mergeable) || pr.GetMergeableState() == "dirty"
	}
	if st.Reviews, err = f.reviews(ctx, pr.GetNumber()); err != nil {
		return gitops.ForgeStatus{}, fmt.Errorf("github: reviews of pull request #%d: %w", pr.GetNumber(), err)
	}
	base := pr.GetBase().GetRef()
	if base == "" {
		base = f.o.BaseBranch
	}
	if st.Checks, st.Failing, err = f.checks(ctx, base, st.Head); err != nil {
		return gitops.ForgeStatus{}, fmt.Errorf("github: checks of pull request #%d: %w", pr.GetNumber(), err)
	}
	return st, nil
}

// pull reads p's pull request (found by branch when p has no number).
func (f *Forge) pull(ctx context.Context, p gitops.ForgeProposal) (*gh.PullRequest, error) {
	if p.Number == 0 {
		if p.Branch == "" {
			return nil, fmt.Errorf("github: a proposal with neither number nor branch: %w", gitops.ErrProposalNotFound)
		}
		pr, err := f.findOpen(ctx, p.Branch)
		if err != nil {
			return nil, fmt.Errorf("github: look for a pull request of %s: %w", p.Branch, err)
		}
		if pr == nil {
			return nil, fmt.Errorf("github: no open pull request of %s: %w", p.Branch, gitops.ErrProposalNotFound)
		}
		return pr, nil
	}
	pr, _, err := f.api.PullRequests.Get(ctx, f.o.Owner, f.o.Repo, p.Number)
	if err != nil {
		return nil, f.prError("read", p.Number, err)
	}
	return pr, nil
}

func (f *Forge) prError(what string, number int, err error) error {
	if statusOf(err) == http.StatusNotFound {
		return fmt.Errorf("github: %s pull request #%d: %w", what, number, gitops.ErrProposalNotFound)
	}
	return fmt.Errorf("github: %s pull request #%d: %w", what, number, f.translate(err))
}

func (f *Forge) translate(err error) error { return translate(err, f.o.Now()) }

var reviewStates = map[string]gitops.ReviewState{
	"APPROVED":          gitops.ReviewApproved,
	"CHANGES_REQUESTED": gitops.ReviewChangesRequested,
	"DISMISSED":         gitops.ReviewDismissed,
	"COMMENTED":         gitops.ReviewCommented,
}

// reviews lists every submitted review (all pages), oldest first.
func (f *Forge) reviews(ctx context.Context, number int) ([]gitops.ForgeReview, error) {
	var out []gitops.ForgeReview
	opts := &gh.ListOptions{PerPage: 100}
	for {
		page, resp, err := f.api.PullRequests.ListReviews(ctx, f.o.Owner, f.o.Repo, number, opts)
		if err != nil {
			return nil, f.translate(err)
		}
		for _, r := range page {
			state, ok := reviewStates[strings.ToUpper(r.GetState())]
			if !ok {
				continue // PENDING: not submitted
			}
			login := r.GetUser().GetLogin()
			out = append(out, gitops.ForgeReview{
				User:   f.logins[strings.ToLower(login)],
				Login:  login,
				State:  state,
				Commit: r.GetCommitID(),
				At:     r.GetSubmittedAt().Time,
				URL:    r.GetHTMLURL(),
			})
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out, nil
}

// Merged waits (about 5 s at most) for GitHub to mark the pull request
// merged after shipbot pushed commit onto its base. The change stands
// either way; an error says GitHub did not record it.
func (f *Forge) Merged(ctx context.Context, p gitops.ForgeProposal, commit string) error {
	delays := []time.Duration{0, 250 * time.Millisecond, 500 * time.Millisecond, time.Second, time.Second, time.Second, time.Second}
	var last *gh.PullRequest
	for _, d := range delays {
		if d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("github: wait for pull request #%d to show merged: %w", p.Number, ctx.Err())
			case <-t.C:
			}
		}
		pr, err := f.pull(ctx, p)
		if err != nil {
			return err
		}
		last = pr
		if pr.GetMerged() {
			f.log.InfoContext(ctx, "pull request merged", "number", pr.GetNumber(), "commit", commit, "merge_commit", pr.GetMergeCommitSHA())
			return nil
		}
		if pr.GetState() == "closed" {
			break // closed without merging: it won't become merged by itself
		}
	}
	return fmt.Errorf("github: GitHub did not mark pull request #%d merged (state %s, head %s; commit %s is on the base branch regardless)",
		last.GetNumber(), last.GetState(), last.GetHead().GetSHA(), commit)
}

// Close comments reason, closes the pull request and deletes its branch.
func (f *Forge) Close(ctx context.Context, p gitops.ForgeProposal, reason string) error {
	number := p.Number
	if number == 0 {
		pr, err := f.pull(ctx, p)
		if err != nil {
			return err
		}
		number = pr.GetNumber()
	}
	if reason != "" {
		if _, _, err := f.api.Issues.CreateComment(ctx, f.o.Owner, f.o.Repo, number, &gh.IssueComment{Body: gh.String(reason)}); err != nil {
			return f.prError("comment on", number, err)
		}
	}
	pr, _, err := f.api.PullRequests.Edit(ctx, f.o.Owner, f.o.Repo, number, &gh.PullRequest{State: gh.String("closed")})
	if err != nil {
		return f.prError("close", number, err)
	}
	branch := pr.GetHead().GetRef()
	if branch == "" {
		branch = p.Branch
	}
	if !strings.HasPrefix(branch, gitops.ProposalBranchPrefix) {
		return nil // never delete a branch shipbot did not make
	}
	if _, err := f.api.Git.DeleteRef(ctx, f.o.Owner, f.o.Repo, "heads/"+branch); err != nil {
		switch statusOf(err) {
		case http.StatusNotFound, http.StatusUnprocessableEntity:
		default:
			return fmt.Errorf("github: delete branch %s: %w", branch, f.translate(err))
		}
	}
	f.log.InfoContext(ctx, "pull request closed", "number", number, "branch", branch)
	return nil
}

// Comment posts text on the pull request.
func (f *Forge) Comment(ctx context.Context, p gitops.ForgeProposal, text string) error {
	number := p.Number
	if number == 0 {
		pr, err := f.pull(ctx, p)
		if err != nil {
			return err
		}
		number = pr.GetNumber()
	}
	if _, _, err := f.api.Issues.CreateComment(ctx, f.o.Owner, f.o.Repo, number, &gh.IssueComment{Body: gh.String(text)}); err != nil {
		return f.prError("comment on", number, err)
	}
	return nil
}

// List returns the open pull requests of proposal branches of this
// repository (forks' branches left out), by number.
func (f *Forge) List(ctx context.Context) ([]gitops.ForgeProposal, error) {
	var out []gitops.ForgeProposal
	opts := &gh.PullRequestListOptions{State: "open", ListOptions: gh.ListOptions{PerPage: 100}}
	for {
		prs, resp, err := f.api.PullRequests.List(ctx, f.o.Owner, f.o.Repo, opts)
		if err != nil {
			return nil, fmt.Errorf("github: list pull requests: %w", f.translate(err))
		}
		for _, pr := range prs {
			head := pr.GetHead()
			if strings.HasPrefix(head.GetRef(), gitops.ProposalBranchPrefix) && head.GetRepo() != nil && f.sameRepo(head.GetRepo()) {
				out = append(out, proposalOf(pr))
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Number < out[j].Number })
	return out, nil
}
