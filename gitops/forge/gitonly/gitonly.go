// Package gitonly is the forge of a plain git host: the proposal branch is
// the proposal. There is no web page, no review and no status check on such
// a host; approvals are given in chat and kept by the core as signed records
// in the environment repo (refs/shipbot/proposals/<request-id>), and the
// core merges on quorum with an atomic compare-and-swap push. This adapter
// reads the proposal branches from the core's clone.
package gitonly

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/shipbot/shipbot/gitops"
	"github.com/shipbot/shipbot/gitops/repo"
)

// Refs is the part of the core's clone this forge reads: the remote refs as
// of the last fetch or push (*repo.Repo).
type Refs interface {
	Ref(name string) (plumbing.Hash, bool)
	Refs(prefix string) (map[string]plumbing.Hash, error)
}

var _ Refs = (*repo.Repo)(nil)

// Forge is a plain git host as a forge.
type Forge struct{ refs Refs }

var _ gitops.Forge = (*Forge)(nil)

// New returns the forge of the git host behind refs.
func New(refs Refs) *Forge { return &Forge{refs: refs} }

// Name is "git".
func (f *Forge) Name() string { return "git" }

func proposal(branch string) gitops.ForgeProposal {
	return gitops.ForgeProposal{Branch: branch, Via: "git:" + branch}
}

// Open checks that the proposal branch exists: on a plain git host the
// pushed branch is the proposal.
func (f *Forge) Open(_ context.Context, spec gitops.ProposalSpec) (gitops.ForgeProposal, error) {
	if !strings.HasPrefix(spec.Branch, gitops.ProposalBranchPrefix) {
		return gitops.ForgeProposal{}, fmt.Errorf("git: %q is not a proposal branch", spec.Branch)
	}
	if _, ok := f.refs.Ref("refs/heads/" + spec.Branch); !ok {
		return gitops.ForgeProposal{}, fmt.Errorf("git: branch %s: %w", spec.Branch, gitops.ErrProposalNotFound)
	}
	return proposal(spec.Branch), nil
}

// Status is the branch's head: open while it exists, closed once deleted.
// A plain git host has no reviews and no checks.
func (f *Forge) Status(_ context.Context, p gitops.ForgeProposal) (gitops.ForgeStatus, error) {
	h, ok := f.refs.Ref("refs/heads/" + p.Branch)
	if !ok {
		return gitops.ForgeStatus{State: gitops.ForgeClosed, Checks: gitops.ChecksNone}, nil
	}
	return gitops.ForgeStatus{State: gitops.ForgeOpen, Head: h.String(), Checks: gitops.ChecksNone}, nil
}

// Merged checks that the core's push moved the proposal branch to commit.
func (f *Forge) Merged(_ context.Context, p gitops.ForgeProposal, commit string) error {
	if h, ok := f.refs.Ref("refs/heads/" + p.Branch); !ok || h.String() != commit {
		return fmt.Errorf("git: branch %s does not point at the merged commit %s", p.Branch, commit)
	}
	return nil
}

// Close does nothing more: the core deletes the branch in the push that
// records the closing.
func (f *Forge) Close(context.Context, gitops.ForgeProposal, string) error { return nil }

// Comment has nowhere to go on a plain git host; the chat thread and the
// records carry the news.
func (f *Forge) Comment(context.Context, gitops.ForgeProposal, string) error { return nil }

// List returns the proposal branches, sorted.
func (f *Forge) List(context.Context) ([]gitops.ForgeProposal, error) {
	refs, err := f.refs.Refs(repo.ProposalHeads)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(refs))
	for name := range refs {
		names = append(names, strings.TrimPrefix(name, "refs/heads/"))
	}
	sort.Strings(names)
	out := make([]gitops.ForgeProposal, len(names))
	for i, n := range names {
		out[i] = proposal(n)
	}
	return out, nil
}
