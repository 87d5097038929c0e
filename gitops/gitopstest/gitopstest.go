// Package gitopstest holds fakes of the core's ports for tests of the core
// and of its adapters.
package gitopstest

import (
	"context"
	"slices"
	"sync"

	"github.com/shipbot/shipbot/gitops"
)

// FakeApprovers is a policy where the members of one group may approve.
type FakeApprovers struct {
	Members []string // the review group, e.g. bob, carol, dave
	Chat    []string // chat groups whose members may approve too
}

var _ gitops.ApproverPolicy = (*FakeApprovers)(nil)

// MayApprove allows the members.
func (f *FakeApprovers) MayApprove(_ context.Context, q gitops.AuthzQuery, r gitops.Review) (gitops.Decision, error) {
	if !slices.Contains(f.Members, q.Subject.User) {
		return gitops.Decision{Reason: q.Subject.User + " is not in " + r.Group + ", whose approvals this change needs"}, nil
	}
	return gitops.Decision{Allowed: true, Rule: "p, sre, *, *, approve, *", Reason: q.Subject.User + " is in sre"}, nil
}

// Approvers are the members but the requester.
func (f *FakeApprovers) Approvers(_ context.Context, _, _ string, _ gitops.Review, requester string) ([]string, error) {
	return slices.DeleteFunc(slices.Clone(f.Members), func(u string) bool { return u == requester }), nil
}

// ChatApprovers are the chat groups.
func (f *FakeApprovers) ChatApprovers(string, string, gitops.Review) ([]string, error) {
	return slices.Clone(f.Chat), nil
}

// FakeNotifier records proposal updates.
type FakeNotifier struct {
	mu      sync.Mutex
	updates []gitops.ProposalUpdate
}

var _ gitops.Notifier = (*FakeNotifier)(nil)

// ProposalUpdated records u.
func (f *FakeNotifier) ProposalUpdated(_ context.Context, u gitops.ProposalUpdate) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.updates = append(f.updates, u)
}

// Updates returns the updates so far.
func (f *FakeNotifier) Updates() []gitops.ProposalUpdate {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.updates)
}
