package templates

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test ./templates -update)", err)
	}
	if d := cmp.Diff(string(want), got); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", name, d)
	}
}

var now = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

func rollbackCommit() Commit {
	return Commit{
		Action: "rollback", App: "checkout", Env: "prod", From: "1.4.2", To: "1.4.1",
		RequestedBy: "alice", Channel: "#ops", Reason: "https://acme.pagerduty.com/incidents/P1X2Y3Z",
		Trailers: []Trailer{
			{"Shipbot-Request", "shp-abcdefghij"}, {"Shipbot-Action", "rollback"}, {"Shipbot-App", "checkout"},
			{"Shipbot-Env", "prod"}, {"Shipbot-From", "1.4.2"}, {"Shipbot-To", "1.4.1"},
			{"Requested-by", "alice <alice@shop.example.com>"},
			{"Justification", "https://acme.pagerduty.com/incidents/P1X2Y3Z"}, {"Chat-Channel", "#ops"},
		},
	}
}

func TestCommitMessages(t *testing.T) {
	rb := rollbackCommit()
	restart := rb
	restart.Action, restart.From, restart.To, restart.Reason = "restart", "", "2026-11-21T10:00:00Z", ""
	restart.Trailers = []Trailer{{"Shipbot-Request", "shp-1"}, {"Shipbot-Action", "restart"}}
	promote := rb
	promote.Action, promote.FromEnv, promote.Env, promote.From, promote.To = "promote", "staging", "prod", "1.4.2", "1.5.0"
	promote.Trailers = []Trailer{
		{"Shipbot-Request", "shp-2"}, {"Shipbot-Action", "promote"}, {"Shipbot-App", "checkout"}, {"Shipbot-Env", "prod"},
		{"Shipbot-From", "1.4.2"}, {"Shipbot-To", "1.5.0"}, {"Requested-by", "carol <carol@shop.example.com>"},
	}
	promote.RequestedBy, promote.Reason = "carol", "CHG-1234"
	for name, c := range map[string]Commit{"commit_rollback": rb, "commit_restart": restart, "commit_promote": promote} {
		got, err := CommitMessage(c)
		if err != nil {
			t.Fatal(err)
		}
		golden(t, name, got)
	}
}

// The trailer block must be what git itself parses as trailers.
func TestCommitTrailersParseWithGit(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	msg, err := CommitMessage(rollbackCommit())
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("git", "interpret-trailers", "--parse")
	cmd.Stdin = strings.NewReader(msg)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 9 || lines[0] != "Shipbot-Request: shp-abcdefghij" || lines[8] != "Chat-Channel: #ops" {
		t.Fatalf("git parsed trailers:\n%s", out)
	}
}

func TestReplies(t *testing.T) {
	plan, err := PlanReply(Plan{
		RequestID: "shp-abcdefghij", Summary: "rollback checkout in prod: 1.4.2 -> 1.4.1",
		Diff: "--- a/k.yaml\n+++ b/k.yaml\n@@ -1 +1 @@\n-    newTag: 1.4.2\n+    newTag: 1.4.1\n",
		Why:  "https://acme.pagerduty.com/incidents/P1X2Y3Z", Timeout: 2 * time.Minute, Protected: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "reply_plan", plan)

	done, err := DoneReply(Done{RequestID: "shp-abcdefghij", Summary: "rollback checkout in prod: 1.4.2 -> 1.4.1", Commit: "0123456789abcdef0123456789abcdef01234567", Branch: "main", Attempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "reply_done", done)

	last := &Change{Commit: "89abcdef0123456789abcdef0123456789abcdef", When: now.Add(-3 * time.Hour), Action: "promote", To: "1.4.2", Who: "bob", Why: "CHG-112"}
	status, err := StatusReply(Status{App: "checkout", Now: now, Envs: []EnvStatus{
		{Env: "dev", Tag: "1.4.2", Last: last},
		{Env: "prod", Tag: "1.4.2", Restarted: "2026-11-20T09:00:00Z", Last: last},
		{Env: "staging", Err: "image not found"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "reply_status", status)

	hist, err := HistoryReply(History{App: "checkout", Env: "prod", Now: now, Changes: []Change{
		*last,
		{Commit: "fedcba9876543210fedcba9876543210fedcba98", When: now.Add(-72 * time.Hour), Action: "manual", From: "1.4.0", To: "1.4.1", Who: "dave", Why: "hotfix by hand"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "reply_history", hist)
	empty, err := HistoryReply(History{App: "search", Env: "dev", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "reply_history_empty", empty)
}

func TestHealthReply(t *testing.T) {
	got, err := HealthReply(Health{Env: "prod", Apps: []HealthApp{
		{App: "search", Tag: "1.0.0", Live: &Live{Sync: "Synced", Health: "Degraded", Revision: "0123456789abcdef", Message: "Deployment/search: progress deadline exceeded"}},
		{App: "payments", Tag: "2.6.0", Live: &Live{Err: "argo: connection refused"}},
		{App: "checkout", Tag: "1.4.1", Live: &Live{Sync: "Synced", Health: "Healthy", Revision: "fedcba9876543210"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "reply_health", got)
	none, err := HealthReply(Health{Env: "qa", Note: "Argo CD is not configured (argo: in shipbot.yaml): tags are from git only."})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "reply_health_empty", none)
}

func TestAgo(t *testing.T) {
	for d, want := range map[time.Duration]string{10 * time.Second: "just now", 5 * time.Minute: "5m ago", 3 * time.Hour: "3h ago", 72 * time.Hour: "3d ago"} {
		if got := ago(now, now.Add(-d)); got != want {
			t.Errorf("ago(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestProposalReplies(t *testing.T) {
	open := Proposal{
		RequestID: "shp-abcde23456", Headline: "bob approved", Summary: "promote checkout from staging to prod: 1.4.2 -> 1.5.0",
		Requester: "alice", Via: "git:shipbot/shp-abcde23456", Needed: 2, Group: "sre",
		Approvals: []string{"bob (chat #ops)"}, Missing: 1, Approvers: []string{"carol", "dave"},
		Notes:   []string{"@stranger reviewed on github but has no chat identity in shipbot's mapping, so it doesn't count"},
		Expires: now.Add(7 * 24 * time.Hour),
	}
	got, err := ProposalReply(open)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "reply_proposal", got)

	gh := open
	gh.Headline, gh.URL, gh.Via, gh.Approvals, gh.Missing = "", "https://github.com/acme/env/pull/7", "https://github.com/acme/env/pull/7", nil, 2
	gh.Blocked, gh.Notes, gh.Approvers = "failing check: ci/validate", nil, nil
	list, err := ProposalsReply(Proposals{Filter: "checkout in prod", Items: []Proposal{open, gh}})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "reply_proposals", list)
	none, err := ProposalsReply(Proposals{})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "reply_proposals_empty", none)

	review, err := PlanReply(Plan{RequestID: "shp-abcde23456", Summary: open.Summary, Diff: "-a\n+b\n", Why: "CHG-42", Timeout: 2 * time.Minute,
		Review: "2 approvals from sre (the requester does not count); who may approve: bob, carol, dave"})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "reply_plan_review", review)
}

// The pull request body keeps hostile text in its place: a justification
// can't break the table, a diff containing ``` can't end its code block.
func TestPullRequestBody(t *testing.T) {
	got, err := PullRequestBody(PullRequest{
		RequestID: "shp-abcde23456", Summary: "promote checkout from staging to prod: 1.4.2 -> 1.5.0",
		Diff:      "--- a/k.yaml\n+++ b/k.yaml\n@@ -1,2 +1,2 @@\n # note: ``` fenced\n-    newTag: 1.4.2\n+    newTag: 1.5.0\n",
		Requester: "alice <alice@shop.example.com>", Channel: "#releases", Justification: "CHG-42 | <script>",
		Checked: "jira Approved 2026-11-21T09:14:03Z", Rule: "p, team-checkout, prod, checkout, promote, *",
		Needed: 2, Group: "sre", Approvers: []string{"bob", "carol", "dave"}, Expires: now.Add(7 * 24 * time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "pr_body", got)
	if !strings.Contains(got, "````diff\n") || !strings.Contains(got, "CHG-42 \\| <script>") {
		t.Errorf("hostile text not contained:\n%s", got)
	}
}

// A plan that needs more than a plain yes, and one that breaks glass: the
// warnings come right under the summary, before the diff.
func TestPlanWarnings(t *testing.T) {
	never, err := PlanReply(Plan{
		RequestID: "shp-abcdefghij", Summary: "rollback checkout in prod: 1.4.2 -> v1.4.1 (v1.4.1: NEVER DEPLOYED in any environment)",
		Diff: "-    newTag: 1.4.2\n+    newTag: v1.4.1\n", Why: "OPS-1", Timeout: 2 * time.Minute,
		Warnings: []string{"NEVER DEPLOYED: v1.4.1 is not in the repo's history of checkout in any environment (tags seen: 1.4.2, 1.4.1, 1.4.0). Did you mean 1.4.1? `rollback checkout prod to 1.4.1 --why ...`."},
		Confirm:  "yes, deploy v1.4.1",
	})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "reply_plan_never_deployed", never)
	bg, err := PlanReply(Plan{
		RequestID: "shp-abcdefghij", Summary: "promote checkout from staging to prod: 1.4.2 -> 1.5.0 [BREAK-GLASS: overrides a freeze of prod]",
		Diff: "-    newTag: 1.4.2\n+    newTag: 1.5.0\n", Why: "OPS-1", Timeout: 2 * time.Minute,
		Warnings: []string{"BREAK-GLASS: this promote overrides a freeze: prod was frozen by carol until 2026-11-23 10:00 UTC (release week). On yes it lands anyway and is recorded as a break-glass change."},
		Review:   "2 approvals from sre (the requester does not count); who may approve: bob, carol, dave",
	})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "reply_plan_break_glass", bg)
	ran, err := PlanReply(Plan{
		RequestID: "shp-abcdefghij", Summary: "rollback checkout in prod: 1.4.2 -> 1.4.0",
		Diff: "-    newTag: 1.4.2\n+    newTag: 1.4.0\n", Why: "OPS-1", Timeout: 2 * time.Minute,
		Notes: []string{"1.4.0 ran in prod before: deployed 2026-11-18 09:14 UTC, 3d ago."},
	})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "reply_plan_tag_ran_before", ran)
}

func TestFreezeReplies(t *testing.T) {
	frozen := Freeze{Env: "prod", By: "carol", Why: "release week", Request: "shp-freeze0000", Since: now.Add(-time.Hour), Until: now.Add(47 * time.Hour), Blocks: []string{"promote"}, Now: now}
	open := Freeze{Env: "staging", By: "bob", Why: "migration", Since: now.Add(-72 * time.Hour), Blocks: []string{"promote", "restart"}, Now: now}
	weekend := Freeze{Env: "prod", Window: "weekend", Envs: []string{"prod"}, Schedule: "Fri 16:00 to Mon 08:00, Europe/Berlin", Active: true, Until: now.Add(45 * time.Hour), Blocks: []string{"promote"}, Now: now}
	nightly := Freeze{Window: "nightly", Envs: []string{"dev", "staging"}, Schedule: "Mon 22:00 to Tue 06:00, UTC", Next: now.Add(60 * time.Hour), Blocks: []string{"promote"}, Now: now}
	list, err := FreezesReply(Freezes{Now: now, Active: []Freeze{frozen, weekend, open}, Windows: []Freeze{weekend, nightly},
		Hidden: "not shown: qa (the policy doesn't let alice see the status of any app there)"})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "reply_freezes", list)
	none, err := FreezesReply(Freezes{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "reply_freezes_empty", none)

	status, err := StatusReply(Status{App: "checkout", Now: now, Envs: []EnvStatus{
		{Env: "staging", Tag: "1.5.0"},
		{Env: "prod", Tag: "1.4.2", Freezes: []Freeze{frozen, weekend}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "reply_status_frozen", status)
	health, err := HealthReply(Health{Env: "prod", Freezes: []Freeze{frozen}, Apps: []HealthApp{{App: "checkout", Tag: "1.4.2"}}})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "reply_health_frozen", health)
}

// Pins: a rollback's commit says the pin and what it holds; an unpin's
// what it lifts and restores; status, health and pins show them.
func TestPinReplies(t *testing.T) {
	rb := rollbackCommit()
	rb.Pin = "Pins checkout in prod to 1.4.1 until `unpin checkout prod`: promotions into it are refused meanwhile."
	rb.Held = []string{"Holds back Flux image automation of ImagePolicy flux-system:checkout (apps/checkout/overlays/prod/kustomization.yaml)."}
	rb.Trailers = append(rb.Trailers[:len(rb.Trailers)-1], Trailer{"Shipbot-Pin", "pinned to 1.4.1"}, Trailer{"Chat-Channel", "#ops"})
	unpin := Commit{
		Action: "unpin", App: "checkout", Env: "prod", To: "1.4.1", RequestedBy: "carol", Channel: "#ops", Reason: "fixed in 1.4.3",
		Pin:  "Lifts the pin of checkout in prod (pinned to 1.4.1 by alice since 2026-11-21 09:00 UTC).",
		Held: []string{"Restores Flux image automation of ImagePolicy flux-system:checkout (apps/checkout/overlays/prod/kustomization.yaml)."},
		Trailers: []Trailer{{"Shipbot-Request", "shp-3"}, {"Shipbot-Action", "unpin"}, {"Shipbot-App", "checkout"}, {"Shipbot-Env", "prod"},
			{"Shipbot-To", "1.4.1"}, {"Requested-by", "carol <carol@shop.example.com>"}, {"Justification", "fixed in 1.4.3"}, {"Shipbot-Pin", "unpinned (was pinned to 1.4.1)"}},
	}
	bg := rollbackCommit()
	bg.Action, bg.FromEnv, bg.From, bg.To, bg.Trailers = "promote", "staging", "1.4.1", "1.5.0", nil
	bg.BreakGlass = "checkout in prod is pinned to 1.4.1 by alice since 2026-11-21 09:00 UTC (OPS-7) [shp-abcdefghij]"
	for name, c := range map[string]Commit{"commit_rollback_pin": rb, "commit_unpin": unpin, "commit_promote_pin_break_glass": bg} {
		got, err := CommitMessage(c)
		if err != nil {
			t.Fatal(err)
		}
		golden(t, name, got)
	}
	pin := Pin{App: "checkout", Env: "prod", Tag: "1.4.1", By: "alice", Why: "OPS-7 checkout errors", Request: "shp-abcdefghij", Since: now.Add(-time.Hour), Now: now,
		Held: []string{"Flux image automation of ImagePolicy flux-system:checkout (apps/checkout/overlays/prod/kustomization.yaml)"}}
	expired := Pin{App: "search", Env: "staging", Tag: "0.9.0", By: "bob", Why: "bad index", Since: now.Add(-72 * time.Hour), Until: now.Add(-time.Hour), Now: now, Expired: true}
	list, err := PinsReply(Pins{Now: now, Pins: []Pin{pin, expired}, Hidden: "not shown: the pins of 2 app(s) and environment(s) whose status the policy doesn't let alice see"})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "reply_pins", list)
	none, err := PinsReply(Pins{Env: "prod", Now: now, Note: ".shipbot/pins.yaml can't be read (bad YAML): pins are not shown, and promotions are refused while it can't be read."})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "reply_pins_empty", none)
	status, err := StatusReply(Status{App: "checkout", Now: now, Envs: []EnvStatus{{Env: "staging", Tag: "1.5.0"}, {Env: "prod", Tag: "1.4.1", Pin: &pin}}})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "reply_status_pinned", status)
	health, err := HealthReply(Health{Env: "prod", Apps: []HealthApp{{App: "checkout", Tag: "1.4.1", Pin: &pin, Live: &Live{Sync: "Synced", Health: "Healthy"}}, {App: "cart", Tag: "2.0.3"}}})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "reply_health_pinned", health)
	done, err := DoneReply(Done{RequestID: "shp-bg", Summary: "promote checkout from staging to prod: 1.4.1 -> 1.5.0 [BREAK-GLASS: overrides the pin of checkout in prod]", Commit: "0123456789abcdef", Branch: "main", Attempts: 1, BreakGlass: bg.BreakGlass})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "reply_done_pin_break_glass", done)
}

func TestOverrode(t *testing.T) {
	for reason, want := range map[string]string{
		"prod was frozen by carol until 2026-11-23 10:00 UTC (release week)":                                        "a freeze",
		"prod is in the \"weekend\" freeze window (Fri 16:00 to Mon 08:00, UTC)":                                    "a freeze",
		"checkout in prod is pinned to 1.4.1 by alice since 2026-11-21 09:00 UTC (OPS-7)":                           "a pin",
		"prod was frozen by carol (x); and checkout in prod is pinned to 1.4.1 by alice since 2026-11-21 09:00 UTC": "a freeze and a pin",
	} {
		if got := overrode(reason); got != want {
			t.Errorf("overrode(%q) = %q, want %q", reason, got, want)
		}
	}
}
