package github_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/gitops"
	"github.com/shipbot/shipbot/gitops/gittest"
)

// The review flow's two user-visible waits, measured against the GitHub
// double on 127.0.0.1 with the real adapter and a real service (see
// review_e2e_test.go): from `yes` to an open pull request, and from the
// last approval to the change on main. Setup (seeding, the first
// approval, closing or undoing the previous iteration) runs with the timer
// stopped. Run with
//
//	go test -run '^$' -bench 'ProposalOpen|LastApprovalMerges' -benchtime 5x ./gitops/forge/github/

// reportSeconds adds seconds per operation next to ns/op.
func reportSeconds(b *testing.B) {
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/op")
}

// BenchmarkProposalOpen: alice asks to promote checkout into prod and says
// yes; the proposal branch is pushed, recorded and opened as a pull
// request. Each iteration is a new request; the previous proposal is
// rejected first (untimed), so that no iteration pays for superseding it.
func BenchmarkProposalOpen(b *testing.B) {
	e := newE2E(b, e2eOptions{})
	ctx := context.Background()
	prev := ""
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if prev != "" {
			if r := e.svc.Handle(ctx, review(gitops.ActionReject, "carol", prev, "benchmark")); r.Outcome != gitops.OutcomeCancelled {
				b.Fatalf("reject %s: %s: %s", prev, r.Outcome, r.Text)
			}
		}
		req := promote("alice", fmt.Sprintf("BENCH-open-%d", i))
		b.StartTimer()

		resp := e.svc.Handle(ctx, req)
		if resp.Plan == nil {
			b.Fatalf("plan: %s: %s", resp.Outcome, resp.Text)
		}
		got := e.svc.Confirm(ctx, resp.Plan)

		b.StopTimer()
		if got.Outcome != gitops.OutcomeProposed || got.Proposal == nil || !strings.Contains(got.Proposal.URL, "/pull/") {
			b.Fatalf("confirm: %s: %s", got.Outcome, got.Text)
		}
		prev = resp.Plan.Request.ID
		if pr := e.pr(e.prOf(prev)); pr.GetState() != "open" {
			b.Fatalf("pull request of %s is %s", prev, pr.GetState())
		}
		b.StartTimer()
	}
	b.StopTimer()
	reportSeconds(b)
}

// BenchmarkLastApprovalMerges: bob approved on GitHub; carol's approval in
// chat is the last one. Timed: her approve, from the fetch through the
// compare-and-swap push of main, the proposal branch and the record, to
// GitHub showing the pull request merged. Untimed: prod is set back to
// 1.4.2 so that there is something to promote, the proposal is opened and
// bob approves.
func BenchmarkLastApprovalMerges(b *testing.B) {
	e := newE2E(b, e2eOptions{})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if i > 0 {
			gittest.Seed(b, e.bare, map[string]string{prodOverlay: overlay("1.4.2")}, "back to 1.4.2")
		}
		id, number := e.open(fmt.Sprintf("BENCH-merge-%d", i))
		e.gh.AddReview(number, "bobby", "APPROVED", "")
		b.StartTimer()

		r := e.approve("carol", id)

		b.StopTimer()
		if r.Outcome != gitops.OutcomeCommitted || r.Commit != e.main() {
			b.Fatalf("carol: %s: %s", r.Outcome, r.Text)
		}
		if pr := e.pr(number); !pr.GetMerged() {
			b.Fatalf("pull request #%d not merged", number)
		}
		b.StartTimer()
	}
	b.StopTimer()
	reportSeconds(b)
}
