package gitops_test

import (
	"context"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/gitops"
	"github.com/shipbot/shipbot/gitops/gittest"
)

// `rollback ... to TAG` with a tag the history of the app never shows (the
// repo's tags have no "v"): the plan says so loudly, suggests the tag that
// ran, and a plain yes is not enough; the explicit answer lands it.
func TestRollbackToATagNeverDeployedNeedsTheExplicitAnswer(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	before := f.head(t)
	resp := f.svc.Handle(ctx, rollbackTo("v1.4.1"))
	if resp.Outcome != gitops.OutcomeConfirm || resp.Plan == nil {
		t.Fatalf("%s: %s", resp.Outcome, resp.Text)
	}
	p := resp.Plan
	if p.Summary != "rollback checkout in prod: 1.4.2 -> v1.4.1 (v1.4.1: NEVER DEPLOYED in any environment)" {
		t.Errorf("summary = %q", p.Summary)
	}
	if p.Confirmation != "yes, deploy v1.4.1" {
		t.Errorf("confirmation = %q", p.Confirmation)
	}
	for _, want := range []string{
		"\nNEVER DEPLOYED: v1.4.1 is not in the repo's history of checkout in any environment (tags seen: ",
		"Did you mean 1.4.1? `rollback checkout prod to 1.4.1 --why ...`.",
		"Reply `yes, deploy v1.4.1` (a plain `yes` is not enough here) to commit and push this change anyway, or `no` to cancel",
	} {
		if !strings.Contains(resp.Text, want) {
			t.Errorf("plan reply lacks %q:\n%s", want, resp.Text)
		}
	}
	// The warning comes before the diff: it is read before the answer.
	if strings.Index(resp.Text, "NEVER DEPLOYED: ") > strings.Index(resp.Text, "```") {
		t.Errorf("the warning is not above the diff:\n%s", resp.Text)
	}

	// A front end that passes a plain yes (or nothing: a button) is refused.
	for _, answer := range []string{"", "yes", "y", "yes, deploy 1.4.1"} {
		p.Answer = answer
		got := f.svc.Confirm(ctx, p)
		if got.Outcome != gitops.OutcomeRejected || !strings.Contains(got.Text, "not confirmed: this plan needs the answer `yes, deploy v1.4.1`") {
			t.Errorf("answer %q: %s: %s", answer, got.Outcome, got.Text)
		}
		if f.head(t) != before {
			t.Fatalf("answer %q wrote", answer)
		}
	}
	p.Answer = "  Yes,  deploy v1.4.1 "
	got := f.svc.Confirm(ctx, p)
	if got.Outcome != gitops.OutcomeCommitted {
		t.Fatalf("explicit answer: %s: %s", got.Outcome, got.Text)
	}
	if tr := parseTrailersWithGit(t, gittest.Git(t, f.bare, "log", "-1", "--format=%B")); tr["Shipbot-To"] != "v1.4.1" {
		t.Errorf("Shipbot-To = %q", tr["Shipbot-To"])
	}
}

// A tag that ran in the environment, or elsewhere, is said with when; a
// plain yes lands it.
func TestRollbackToATagSaysWhereAndWhenItRan(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	resp := f.svc.Handle(ctx, rollbackTo("1.4.0"))
	if resp.Plan == nil || resp.Plan.Summary != "rollback checkout in prod: 1.4.2 -> 1.4.0" || resp.Plan.Confirmation != "" || len(resp.Plan.Warnings) != 0 ||
		!strings.Contains(resp.Text, "rollback checkout in prod: 1.4.2 -> 1.4.0\n1.4.0 ran in prod before: deployed 20") {
		t.Fatalf("%s: %+v", resp.Text, resp.Plan)
	}
	// 1.5.0 runs in staging (its first commit), never in prod.
	resp = f.svc.Handle(ctx, rollbackTo("1.5.0"))
	if resp.Plan == nil || !strings.HasPrefix(resp.Plan.Summary, "rollback checkout in prod: 1.4.2 -> 1.5.0 (1.5.0 never ran in prod; it ran in staging (deployed 20") || resp.Plan.Confirmation != "" {
		t.Fatalf("%s", resp.Text)
	}
	if got := f.svc.Confirm(ctx, resp.Plan); got.Outcome != gitops.OutcomeCommitted {
		t.Fatalf("plain yes: %s: %s", got.Outcome, got.Text)
	}
}

// A rollback to a moving tag is refused: it would not bring back a known
// release.
func TestRollbackToAMovingTagIsRefused(t *testing.T) {
	f := newFixture(t, 0)
	before := f.head(t)
	for _, tag := range []string{"latest", "Stable", "main", "1.4-latest"} {
		resp := f.svc.Handle(context.Background(), rollbackTo(tag))
		if resp.Outcome != gitops.OutcomeRejected || resp.Plan != nil ||
			!strings.Contains(resp.Text, "is a moving tag") || !strings.Contains(resp.Text, "(prod ran 1.4.2, 1.4.1, 1.4.0): `rollback checkout prod to TAG --why ...`") || !strings.Contains(resp.Text, "Nothing was written.") {
			t.Errorf("%s: %s: %s", tag, resp.Outcome, resp.Text)
		}
	}
	if f.head(t) != before {
		t.Error("something was written")
	}
	if gitops.MovingTag("1.4.1") || gitops.MovingTag("v2-rc1") {
		t.Error("a release tag taken for a moving one")
	}
}

func TestPlanConfirms(t *testing.T) {
	plain := &gitops.Plan{}
	explicit := &gitops.Plan{Confirmation: "yes, deploy v1.4.1"}
	for _, tc := range []struct {
		p      *gitops.Plan
		answer string
		want   bool
	}{
		{plain, "yes", true}, {plain, "Y", true}, {plain, " confirm ", true}, {plain, "no", false}, {plain, "yes please", false},
		{explicit, "yes", false}, {explicit, "", false}, {explicit, "yes, deploy v1.4.1", true}, {explicit, "YES, DEPLOY V1.4.1", true},
		{explicit, "yes deploy v1.4.1", true}, {explicit, "`yes, deploy v1.4.1`", true}, {explicit, "yes, deploy v1.4.2", false},
	} {
		if got := tc.p.Confirms(tc.answer); got != tc.want {
			t.Errorf("confirmation %q, answer %q: %v, want %v", tc.p.Confirmation, tc.answer, got, tc.want)
		}
	}
}
