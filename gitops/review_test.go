package gitops_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/gitops"
	"github.com/shipbot/shipbot/gitops/forge/gitonly"
	"github.com/shipbot/shipbot/gitops/gitopstest"
	"github.com/shipbot/shipbot/gitops/gittest"
	"github.com/shipbot/shipbot/gitops/repo"
)

// reviewFixture is the service fixture with a plain-git forge and a policy
// that asks two approvals from sre for promotions into prod.
type reviewFixture struct {
	*fixture
	opts     gitops.ServiceOptions
	notifier *gitopstest.FakeNotifier
	now      time.Time
}

func newReviewFixture(t *testing.T) *reviewFixture {
	t.Helper()
	rf := &reviewFixture{notifier: &gitopstest.FakeNotifier{}, now: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)}
	rf.fixture = newFixtureWith(t, 1, func(o *gitops.ServiceOptions) {
		inner := o.Authorizer
		o.Authorizer = &FakeAuthorizer{AuthorizeFunc: func(q gitops.AuthzQuery) gitops.Decision {
			d, _ := inner.Authorize(context.Background(), q)
			if d.Allowed && q.Action == gitops.ActionPromote && q.Env == "prod" {
				d.Review = gitops.Review{Approvals: 2, Group: "sre"}
			}
			return d
		}}
		o.Forge = gitonly.New(o.Repo)
		o.Approvers = &gitopstest.FakeApprovers{Members: []string{"bob", "carol", "dave"}}
		o.Notifier = rf.notifier
		o.Now = func() time.Time { return rf.now }
		rf.opts = *o
	})
	return rf
}

// restart is a new shipbot process: a fresh clone of the same remote,
// nothing in memory.
func (rf *reviewFixture) restart(t *testing.T) {
	t.Helper()
	url := gittest.Git(t, rf.opts.Repo.Dir(), "config", "remote.origin.url")
	r, err := repo.Open(context.Background(), repo.Options{URL: url, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	o := rf.opts
	o.Repo = r
	o.Forge = gitonly.New(r)
	if rf.svc, err = gitops.NewService(o); err != nil {
		t.Fatal(err)
	}
}

func promote(user string) gitops.Request {
	return gitops.Request{ID: gitops.NewRequestID(user, "promote", "CHG-42"), Action: gitops.ActionPromote, App: "checkout",
		FromEnv: "staging", Env: "prod", Why: "CHG-42", User: user, Channel: "#releases", Thread: "local:1"}
}

func review(action gitops.Action, user, id, why string) gitops.Request {
	return gitops.Request{ID: gitops.NewRequestID(user, string(action), id), Action: action, Proposal: id, Why: why, User: user, Channel: "#ops"}
}

// open asks for the promotion, confirms it and returns the proposal's id.
func (rf *reviewFixture) open(t *testing.T, user string) string {
	t.Helper()
	ctx := context.Background()
	resp := rf.svc.Handle(ctx, promote(user))
	if resp.Outcome != gitops.OutcomeConfirm {
		t.Fatalf("plan: %s: %s", resp.Outcome, resp.Text)
	}
	if !strings.Contains(resp.Text, "needs review: 2 approvals from sre (the requester does not count); who may approve: bob, carol, dave") ||
		!strings.Contains(resp.Text, "Reply `yes` to open a proposal") {
		t.Errorf("plan reply does not say the change needs review:\n%s", resp.Text)
	}
	got := rf.svc.Confirm(ctx, resp.Plan)
	if got.Outcome != gitops.OutcomeProposed || got.Proposal == nil {
		t.Fatalf("confirm: %s: %s", got.Outcome, got.Text)
	}
	return resp.Plan.Request.ID
}

func TestProposalMergesOnQuorumOfTwoAcrossARestart(t *testing.T) {
	rf := newReviewFixture(t)
	ctx := context.Background()
	before := rf.head(t)
	id := rf.open(t, "alice")

	if rf.head(t) != before {
		t.Fatal("opening a proposal wrote to main")
	}
	branchHead := gittest.Git(t, rf.bare, "rev-parse", "refs/heads/shipbot/"+id)
	if parent := gittest.Git(t, rf.bare, "rev-parse", branchHead+"~1"); parent != before {
		t.Errorf("proposal commit's parent = %s, want main %s", parent, before)
	}
	if ns := gittest.Git(t, rf.bare, "diff", "--numstat", before, branchHead); ns != "1\t1\tapps/checkout/overlays/prod/kustomization.yaml" {
		t.Errorf("proposal diff = %q", ns)
	}
	if ev := strings.Fields(gittest.Git(t, rf.bare, "log", "--reverse", "--format=%(trailers:key=Shipbot-Event,valueonly)", "refs/shipbot/proposals/"+id)); !slices.Equal(ev, []string{"opened", "forge"}) {
		t.Errorf("records = %q, want opened, forge", ev)
	}

	// The requester never counts; someone outside the group neither.
	if r := rf.svc.Handle(ctx, review(gitops.ActionApprove, "alice", id, "")); r.Outcome != gitops.OutcomeDenied || !strings.Contains(r.Text, "requester never counts") {
		t.Errorf("alice's own approval: %s: %s", r.Outcome, r.Text)
	}
	if r := rf.svc.Handle(ctx, review(gitops.ActionApprove, "mallory", id, "")); r.Outcome != gitops.OutcomeDenied || !strings.Contains(r.Text, "mallory is not in sre") {
		t.Errorf("mallory's approval: %s: %s", r.Outcome, r.Text)
	}

	r := rf.svc.Handle(ctx, review(gitops.ActionApprove, "bob", id, ""))
	if r.Outcome != gitops.OutcomeApproved || !strings.Contains(r.Text, "approvals: 1 of 2 from sre") || !strings.Contains(r.Text, "bob (chat #ops)") {
		t.Fatalf("bob's approval: %s: %s", r.Outcome, r.Text)
	}
	// One person counts once.
	r = rf.svc.Handle(ctx, review(gitops.ActionApprove, "bob", id, ""))
	if r.Outcome != gitops.OutcomeApproved || !strings.Contains(r.Text, "approvals: 1 of 2") || !strings.Contains(r.Text, "approved already") {
		t.Fatalf("bob again: %s: %s", r.Outcome, r.Text)
	}
	if rf.head(t) != before {
		t.Fatal("one approval merged")
	}
	if len(rf.notifier.Updates()) == 0 || rf.notifier.Updates()[0].Thread != "local:1" {
		t.Errorf("the requester's thread was not told of bob's approval: %+v", rf.notifier.Updates())
	}

	// shipbot restarts between the two approvals: nothing is lost.
	rf.restart(t)
	if l := rf.svc.Handle(ctx, gitops.Request{ID: "shp-list", Action: gitops.ActionProposals, User: "carol"}); !strings.Contains(l.Text, id) || !strings.Contains(l.Text, "1 more approval needed") {
		t.Errorf("proposals after a restart:\n%s", l.Text)
	}
	r = rf.svc.Handle(ctx, review(gitops.ActionApprove, "carol", id, ""))
	if r.Outcome != gitops.OutcomeCommitted || r.Plan == nil || r.Commit == "" {
		t.Fatalf("carol's approval: %s: %s", r.Outcome, r.Text)
	}
	if rf.head(t) != r.Commit || gittest.Git(t, rf.bare, "rev-parse", "main~1") != before {
		t.Fatal("want exactly one new commit on main")
	}
	if ns := gittest.Git(t, rf.bare, "diff", "--numstat", "main~1", "main"); ns != "1\t1\tapps/checkout/overlays/prod/kustomization.yaml" {
		t.Errorf("merged diff = %q", ns)
	}
	if a, b := gittest.Git(t, rf.bare, "rev-parse", "main^{tree}"), gittest.Git(t, rf.bare, "rev-parse", branchHead+"^{tree}"); a != b {
		t.Errorf("merged tree %s is not the approved tree %s", a, b)
	}
	msg := gittest.Git(t, rf.bare, "log", "-1", "--format=%B", "main")
	approved := gittest.Git(t, rf.bare, "log", "-1", "--format=%(trailers:key=Approved-by,valueonly)", "main")
	if approved != "bob <bob@example.com> (chat #ops)\ncarol <carol@example.com> (chat #ops)" {
		t.Errorf("Approved-by trailers = %q in\n%s", approved, msg)
	}
	tr := gitops.ParseTrailers(msg)
	if tr["Shipbot-Proposal"] != "git:shipbot/"+id || tr["Shipbot-Request"] != id || tr["Shipbot-To"] != "1.5.0" {
		t.Errorf("trailers: %v", tr)
	}
	if ev := gittest.Git(t, rf.bare, "log", "--reverse", "--format=%(trailers:key=Shipbot-Event,valueonly)", "refs/shipbot/proposals/"+id); strings.Fields(ev)[len(strings.Fields(ev))-1] != "merged" {
		t.Errorf("records = %q, want merged last", ev)
	}
	// Approving a merged proposal says so.
	if r := rf.svc.Handle(ctx, review(gitops.ActionApprove, "dave", id, "")); !strings.Contains(r.Text, "merged already") {
		t.Errorf("approve after merge: %s", r.Text)
	}
}

func TestProposalMainMovedSameDiffApprovalsStand(t *testing.T) {
	rf := newReviewFixture(t)
	ctx := context.Background()
	id := rf.open(t, "alice")
	rf.svc.Handle(ctx, review(gitops.ActionApprove, "bob", id, ""))
	foreign := gittest.Seed(t, rf.bare, map[string]string{"README.md": "someone else's change\n"}, "docs")

	r := rf.svc.Handle(ctx, review(gitops.ActionApprove, "carol", id, ""))
	if r.Outcome != gitops.OutcomeCommitted {
		t.Fatalf("carol: %s: %s", r.Outcome, r.Text)
	}
	if p := gittest.Git(t, rf.bare, "rev-parse", "main~1"); p != foreign {
		t.Errorf("merged on %s, want the moved main %s", p, foreign)
	}
	if got := gittest.Git(t, rf.bare, "show", "main:README.md"); got != "someone else's change" {
		t.Errorf("the foreign change was lost: %q", got)
	}
}

func TestProposalMainMovedDiffChangedResetsApprovals(t *testing.T) {
	rf := newReviewFixture(t)
	ctx := context.Background()
	id := rf.open(t, "alice")
	rf.svc.Handle(ctx, review(gitops.ActionApprove, "bob", id, ""))
	// A human edits the lines around the tag: the diff the approvers saw changes.
	gittest.Seed(t, rf.bare, map[string]string{"apps/checkout/overlays/prod/kustomization.yaml": strings.Replace(overlay("1.4.2"), "../../base", "../../base-v2", 1)}, "rebase the overlay")

	r := rf.svc.Handle(ctx, review(gitops.ActionApprove, "carol", id, ""))
	if !strings.Contains(r.Text, "approvals were reset") || r.Outcome == gitops.OutcomeCommitted {
		t.Fatalf("carol after the diff changed: %s: %s", r.Outcome, r.Text)
	}
	if !strings.Contains(r.Text, "../../base-v2") {
		t.Errorf("the reset does not show the new diff:\n%s", r.Text)
	}
	head := gittest.Git(t, rf.bare, "rev-parse", "refs/heads/shipbot/"+id)
	if p := gittest.Git(t, rf.bare, "rev-parse", head+"~1"); p != rf.head(t) {
		t.Errorf("proposal not rebased on the new main")
	}
	r = rf.svc.Handle(ctx, review(gitops.ActionApprove, "bob", id, ""))
	if r.Outcome != gitops.OutcomeApproved || !strings.Contains(r.Text, "approvals: 1 of 2") {
		t.Fatalf("bob again: %s: %s", r.Outcome, r.Text)
	}
	r = rf.svc.Handle(ctx, review(gitops.ActionApprove, "carol", id, ""))
	if r.Outcome != gitops.OutcomeCommitted {
		t.Fatalf("carol again: %s: %s", r.Outcome, r.Text)
	}
	if got := gittest.Git(t, rf.bare, "show", "main:apps/checkout/overlays/prod/kustomization.yaml"); !strings.Contains(got, "base-v2") || !strings.Contains(got, "newTag: 1.5.0") {
		t.Errorf("merged file:\n%s", got)
	}
}

func TestProposalRejectClosesIt(t *testing.T) {
	rf := newReviewFixture(t)
	ctx := context.Background()
	before := rf.head(t)
	id := rf.open(t, "alice")
	if r := rf.svc.Handle(ctx, review(gitops.ActionReject, "mallory", id, "no")); r.Outcome != gitops.OutcomeDenied {
		t.Errorf("mallory rejects: %s: %s", r.Outcome, r.Text)
	}
	r := rf.svc.Handle(ctx, review(gitops.ActionReject, "bob", id, "wrong tag"))
	if r.Outcome != gitops.OutcomeCancelled || !strings.Contains(r.Text, "rejected: wrong tag") {
		t.Fatalf("bob rejects: %s: %s", r.Outcome, r.Text)
	}
	if _, err := gittest.Run(rf.bare, "rev-parse", "--verify", "refs/heads/shipbot/"+id); err == nil {
		t.Error("the rejected proposal's branch still exists")
	}
	if r := rf.svc.Handle(ctx, review(gitops.ActionApprove, "carol", id, "")); !strings.Contains(r.Text, "rejected: bob rejected it: wrong tag") {
		t.Errorf("approve after reject: %s", r.Text)
	}
	if rf.head(t) != before {
		t.Error("a rejected proposal wrote to main")
	}
}

func TestProposalBranchChangedOutsideShipbotNeverMerges(t *testing.T) {
	rf := newReviewFixture(t)
	ctx := context.Background()
	before := rf.head(t)
	id := rf.open(t, "alice")
	// Someone with push rights slips a commit onto the proposal branch.
	work := t.TempDir()
	gittest.Git(t, "", "clone", "--quiet", "--branch", "shipbot/"+id, rf.bare, work)
	gittest.Git(t, work, "commit", "--quiet", "--allow-empty", "-m", "sneak")
	gittest.Git(t, work, "push", "--quiet", "origin", "HEAD:shipbot/"+id)

	rf.svc.Handle(ctx, review(gitops.ActionApprove, "bob", id, ""))
	r := rf.svc.Handle(ctx, review(gitops.ActionApprove, "carol", id, ""))
	if r.Outcome == gitops.OutcomeCommitted || !strings.Contains(r.Text, "changed outside shipbot") {
		t.Fatalf("merge with a foreign head: %s: %s", r.Outcome, r.Text)
	}
	if rf.head(t) != before {
		t.Error("main moved")
	}
}

func TestNewerRequestSupersedesAndProposalsExpire(t *testing.T) {
	rf := newReviewFixture(t)
	ctx := context.Background()
	first := rf.open(t, "alice")
	second := rf.open(t, "erin")
	if r := rf.svc.Handle(ctx, review(gitops.ActionApprove, "bob", first, "")); !strings.Contains(r.Text, "superseded by "+second) {
		t.Errorf("approve the superseded proposal: %s", r.Text)
	}
	rf.now = rf.now.Add(8 * 24 * time.Hour)
	if err := rf.svc.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if r := rf.svc.Handle(ctx, review(gitops.ActionApprove, "bob", second, "")); !strings.Contains(r.Text, "expired") {
		t.Errorf("approve an expired proposal: %s", r.Text)
	}
}

// Anyone who can push to the repo could forge a record: an approval, or a
// whole proposal for shipbot to sign and merge. Records shipbot did not
// commit are never acted on.
func TestForgedApprovalRecordIsNotTrusted(t *testing.T) {
	rf := newReviewFixture(t)
	ctx := context.Background()
	before := rf.head(t)
	id := rf.open(t, "alice")
	rf.svc.Handle(ctx, review(gitops.ActionApprove, "bob", id, ""))

	// A forged "carol approved" record, a copy of bob's, on top of the chain.
	ref := "refs/shipbot/proposals/" + id
	work := rf.bare // as good as a push: objects and the ref, written on the remote
	bobs := gittest.Git(t, work, "show", ref+":record.json")
	forged := strings.NewReplacer(`"by": "bob"`, `"by": "carol"`, "bob <bob@example.com>", "carol <carol@example.com>").Replace(bobs)
	blob := gittest.GitIn(t, work, forged+"\n", "hash-object", "-w", "--stdin")
	tree := gittest.GitIn(t, work, "100644 blob "+blob+"\trecord.json\n", "mktree")
	commit := gittest.Git(t, work, "commit-tree", tree, "-p", ref, "-m", "approved "+id+" by carol")
	gittest.Git(t, work, "update-ref", ref, commit)

	r := rf.svc.Handle(ctx, review(gitops.ActionApprove, "dave", id, ""))
	if r.Outcome == gitops.OutcomeCommitted || rf.head(t) != before {
		t.Fatalf("a forged approval merged the change: %s: %s", r.Outcome, r.Text)
	}
	if err := rf.svc.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if rf.head(t) != before {
		t.Fatal("reconcile merged on a forged approval")
	}
	if l := rf.svc.Handle(ctx, gitops.Request{ID: "shp-list", Action: gitops.ActionProposals, User: "carol"}); strings.Contains(l.Text, id) {
		t.Errorf("a proposal with a forged record is listed:\n%s", l.Text)
	}
}

// A review group that is a chat group: the policy can't count its members,
// so the proposal opens (and the plan names the group) instead of being
// refused as unmergeable.
func TestChatGroupApproversLetAProposalOpen(t *testing.T) {
	rf := newReviewFixture(t)
	rf.opts.Approvers = &gitopstest.FakeApprovers{Members: []string{"bob"}, Chat: []string{"slack:sre-oncall"}}
	rf.restart(t)
	resp := rf.svc.Handle(context.Background(), promote("alice"))
	if resp.Outcome != gitops.OutcomeConfirm || !strings.Contains(resp.Text, "who may approve: bob, members of slack:sre-oncall") {
		t.Fatalf("%s: %s", resp.Outcome, resp.Text)
	}
	rf.opts.Approvers = &gitopstest.FakeApprovers{Members: []string{"bob"}}
	rf.restart(t)
	resp = rf.svc.Handle(context.Background(), promote("alice"))
	if resp.Outcome != gitops.OutcomeRejected || !strings.Contains(resp.Text, "could never merge") {
		t.Fatalf("one approver for two approvals: %s: %s", resp.Outcome, resp.Text)
	}
}
