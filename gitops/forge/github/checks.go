package github

import (
	"context"
	"errors"
	"net/http"
	"sort"

	gh "github.com/google/go-github/v60/github"

	"github.com/shipbot/shipbot/gitops"
)

// outcome is where one check stands. The worst report of a name wins.
type outcome int

const (
	passed outcome = iota + 1
	running
	failed
)

// checks sums up the checks of head against the required checks of base's
// branch protection.
func (f *Forge) checks(ctx context.Context, base, head string) (gitops.CheckState, []string, error) {
	required, err := f.requiredChecks(ctx, base)
	if err != nil {
		return "", nil, err
	}
	reported := map[string]outcome{}
	report := func(name string, o outcome) {
		if o > reported[name] {
			reported[name] = o
		}
	}
	sopts := &gh.ListOptions{PerPage: 100}
	for {
		combined, resp, err := f.api.Repositories.GetCombinedStatus(ctx, f.o.Owner, f.o.Repo, head, sopts)
		if err != nil {
			return "", nil, f.translate(err)
		}
		for _, s := range combined.Statuses {
			report(s.GetContext(), statusOutcome(s.GetState()))
		}
		if resp.NextPage == 0 {
			break
		}
		sopts.Page = resp.NextPage
	}
	copts := &gh.ListCheckRunsOptions{ListOptions: gh.ListOptions{PerPage: 100}}
	for {
		runs, resp, err := f.api.Checks.ListCheckRunsForRef(ctx, f.o.Owner, f.o.Repo, head, copts)
		if err != nil {
			return "", nil, f.translate(err)
		}
		for _, r := range runs.CheckRuns {
			report(r.GetName(), checkRunOutcome(r.GetStatus(), r.GetConclusion()))
		}
		if resp.NextPage == 0 {
			break
		}
		copts.Page = resp.NextPage
	}
	state, names := summarize(required, reported)
	return state, names, nil
}

// requiredChecks reads the contexts base's branch protection requires;
// none when the branch is not protected (404) or shipbot may not read its
// protection (403, logged).
func (f *Forge) requiredChecks(ctx context.Context, base string) ([]string, error) {
	rsc, _, err := f.api.Repositories.GetRequiredStatusChecks(ctx, f.o.Owner, f.o.Repo, base)
	if err != nil {
		if errors.Is(err, gh.ErrBranchNotProtected) {
			return nil, nil
		}
		if rl := f.translate(err); errors.Is(rl, gitops.ErrForgeRateLimited) {
			return nil, rl
		}
		switch statusOf(err) {
		case http.StatusNotFound:
			return nil, nil
		case http.StatusForbidden:
			f.log.WarnContext(ctx, "may not read the branch protection; judging by the reported checks", "branch", base)
			return nil, nil
		}
		return nil, f.translate(err)
	}
	seen := map[string]bool{}
	var out []string
	add := func(c string) {
		if c != "" && !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	if rsc.Contexts != nil {
		for _, c := range *rsc.Contexts {
			add(c)
		}
	}
	if rsc.Checks != nil {
		for _, c := range *rsc.Checks {
			add(c.Context)
		}
	}
	return out, nil
}

func statusOutcome(state string) outcome {
	switch state {
	case "success":
		return passed
	case "pending":
		return running
	default: // failure, error
		return failed
	}
}

func checkRunOutcome(status, conclusion string) outcome {
	if status != "completed" {
		return running // queued, in_progress, waiting, requested, pending
	}
	switch conclusion {
	case "success", "neutral", "skipped":
		return passed
	default: // failure, cancelled, timed_out, action_required, stale, startup_failure
		return failed
	}
}

// summarize: with required checks, failure if one of them failed, pending
// if one is missing or running, success when all passed. With none
// required, the same over what was reported, and none when nothing was.
// The names are the failing (or, when pending, the unfinished) checks.
func summarize(required []string, reported map[string]outcome) (gitops.CheckState, []string) {
	names := required
	if len(required) == 0 {
		if len(reported) == 0 {
			return gitops.ChecksNone, nil
		}
		for n := range reported {
			names = append(names, n)
		}
	}
	var failing, unfinished []string
	for _, n := range names {
		switch reported[n] {
		case failed:
			failing = append(failing, n)
		case passed:
		default: // running, or missing
			unfinished = append(unfinished, n)
		}
	}
	sort.Strings(failing)
	sort.Strings(unfinished)
	switch {
	case len(failing) > 0:
		return gitops.ChecksFailure, failing
	case len(unfinished) > 0:
		return gitops.ChecksPending, unfinished
	}
	return gitops.ChecksSuccess, nil
}
