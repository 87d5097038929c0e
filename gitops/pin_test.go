package gitops_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/shipbot/shipbot/gitops"
	"github.com/shipbot/shipbot/gitops/gittest"
	"github.com/shipbot/shipbot/gitops/sign"
)

// withSigning makes the fixture's shipbot sign its commits with an SSH key,
// and returns the allowed-signers file trusting it.
func withSigning(t *testing.T) (func(*gitops.ServiceOptions), string) {
	t.Helper()
	keys := t.TempDir()
	key := filepath.Join(keys, "shipbot_key")
	pub, err := sign.GenerateSSH(key, "shipbot")
	if err != nil {
		t.Fatal(err)
	}
	signers := filepath.Join(keys, "allowed_signers")
	if err := os.WriteFile(signers, []byte(sign.AllowedSignersLine("shipbot@example.com", pub)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	signer, err := sign.LoadSSH(key, "")
	if err != nil {
		t.Fatal(err)
	}
	v, err := sign.NewVerifier(nil, []string{signers})
	if err != nil {
		t.Fatal(err)
	}
	return func(o *gitops.ServiceOptions) {
		o.Signer = signer
		o.RecordChecker = verifierChecker{v}
	}, signers
}

// fluxOverlay is the prod overlay with Flux setter markers.
func fluxOverlay(tag string) string {
	return "# checkout prod overlay\nresources:\n  - ../../base\nimages:\n" +
		"  - name: registry.example.com/checkout # {\"$imagepolicy\": \"flux-system:checkout:name\"}\n" +
		"    newTag: " + tag + " # {\"$imagepolicy\": \"flux-system:checkout:tag\"}\n"
}

const updaterApp = `# app of apps: checkout in prod
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: checkout-prod
  annotations:
    argocd-image-updater.argoproj.io/image-list: checkout=registry.example.com/checkout
    argocd-image-updater.argoproj.io/checkout.update-strategy: semver
spec:
  source:
    path: apps/checkout/overlays/prod
`

// A rollback pins the app, in its own signed commit, with the automation
// held back; a promotion is refused until unpin (break-glass lets it
// through, loudly); rollback and restart still work and re-pin; unpin
// needs the policy, lifts the pin and restores the automation byte for
// byte.
func TestRollbackPinsUntilUnpin(t *testing.T) {
	signing, signers := withSigning(t)
	f := newFixtureWith(t, 0, signing)
	ctx := context.Background()
	// Flux markers in the overlay, an Image Updater Application elsewhere.
	gittest.Seed(t, f.bare, map[string]string{
		"apps/checkout/overlays/prod/kustomization.yaml": fluxOverlay("1.4.2"),
		"argocd/checkout-prod.yaml":                      updaterApp,
		"apps/checkout/base/kustomization.yaml":          "resources:\n  - deployment.yaml\n",
		"apps/checkout/base/deployment.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: checkout\nspec:\n  template:\n    spec:\n" +
			"      containers:\n        - name: checkout\n          image: registry.example.com/checkout:1.0.0\n",
	}, "automation for checkout")
	beforeApp := gittest.Git(t, f.bare, "show", "main:argocd/checkout-prod.yaml")

	rbReq := rollback("alice", "checkout", "OPS-7 checkout errors")
	rb := f.confirm(t, rbReq)
	if rb.Outcome != gitops.OutcomeCommitted {
		t.Fatalf("rollback: %s: %s", rb.Outcome, rb.Text)
	}
	// One commit: the tag, the marker held, the updater held, the pin.
	stat := gittest.Git(t, f.bare, "show", "--stat", "--format=", "main")
	for _, want := range []string{".shipbot/pins.yaml", "apps/checkout/overlays/prod/kustomization.yaml", "argocd/checkout-prod.yaml", "3 files changed"} {
		if !strings.Contains(stat, want) {
			t.Errorf("git show --stat lacks %q:\n%s", want, stat)
		}
	}
	if _, err := gittest.Run(f.bare, "-c", "gpg.format=ssh", "-c", "gpg.ssh.allowedSignersFile="+signers, "verify-commit", "main"); err != nil {
		t.Errorf("git verify-commit of the rollback: %v", err)
	}
	msg := gittest.Git(t, f.bare, "log", "-1", "--format=%B")
	if tr := parseTrailersWithGit(t, msg); tr["Shipbot-Pin"] != "pinned to 1.4.1" || tr["Shipbot-Action"] != "rollback" {
		t.Errorf("trailers %v", tr)
	}
	for _, want := range []string{
		"Pins checkout in prod to 1.4.1 until `unpin checkout prod`: promotions into it are refused meanwhile.",
		"Holds back Argo CD Image Updater for image checkout of Application checkout-prod (argocd/checkout-prod.yaml).",
		"Holds back Flux image automation of ImagePolicy flux-system:checkout (apps/checkout/overlays/prod/kustomization.yaml).",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("commit message lacks %q:\n%s", want, msg)
		}
	}
	pins := gittest.Git(t, f.bare, "show", "main:"+gitops.PinsPath)
	for _, want := range []string{"app: checkout", "env: prod", "tag: 1.4.1", "by: alice", "why: OPS-7 checkout errors", "since: 2026-11-21T10:00:00Z", "request: " + rbReq.ID, "tool: flux", "tool: argocd-image-updater"} {
		if !strings.Contains(pins, want) {
			t.Errorf("pins file lacks %q:\n%s", want, pins)
		}
	}
	if strings.Contains(pins, "until:") {
		t.Errorf("a pin without an end has an until:\n%s", pins)
	}
	overlayNow := gittest.Git(t, f.bare, "show", "main:apps/checkout/overlays/prod/kustomization.yaml")
	if strings.Count(overlayNow, `"$imagepolicy-held-by-shipbot"`) != 2 || !strings.Contains(overlayNow, "newTag: 1.4.1 ") {
		t.Errorf("overlay after the rollback:\n%s", overlayNow)
	}
	if app := gittest.Git(t, f.bare, "show", "main:argocd/checkout-prod.yaml"); !strings.Contains(app, "checkout.ignore-tags: \"*\"\n    shipbot.io/held.checkout.ignore-tags: absent\n") {
		t.Errorf("Application after the rollback:\n%s", app)
	}
	pinned := f.head(t)

	// A promotion is refused: who, why, since when, how to unpin.
	promote := gitops.Request{ID: "shp-p1", Action: gitops.ActionPromote, App: "checkout", FromEnv: "staging", Env: "prod", Why: "OPS-8", User: "bob"}
	resp := ask(f, promote)
	want := "checkout in prod is pinned to 1.4.1 by alice since 2026-11-21 10:00 UTC (OPS-7 checkout errors) [" + rbReq.ID + "]: promote into it is refused while it is pinned; lift the pin with `unpin checkout prod --why TEXT`."
	if resp.Outcome != gitops.OutcomeRejected || !strings.Contains(resp.Text, want) {
		t.Fatalf("promote into a pinned app: %s: %s\nwant %s", resp.Outcome, resp.Text, want)
	}
	if f.head(t) != pinned {
		t.Fatal("a refused promotion wrote")
	}
	// Status and health say it; pins lists it.
	st := ask(f, gitops.Request{ID: "shp-st", Action: gitops.ActionStatus, App: "checkout", User: "alice"})
	if !strings.Contains(st.Text, "\n           PINNED to 1.4.1 by alice since 2026-11-21 10:00 UTC: OPS-7 checkout errors ["+rbReq.ID+"]; promotions refused until `unpin checkout prod`") {
		t.Errorf("status:\n%s", st.Text)
	}
	h := ask(f, gitops.Request{ID: "shp-h", Action: gitops.ActionHealth, Env: "prod", User: "alice"})
	if !strings.Contains(h.Text, "checkout   1.4.1      -  PINNED to 1.4.1 by alice") {
		t.Errorf("health:\n%s", h.Text)
	}
	list := ask(f, gitops.Request{ID: "shp-l", Action: gitops.ActionPins, User: "alice"})
	wantList := "Pins in effect (2026-11-21 10:00 UTC):\n" +
		"  prod     checkout   PINNED to 1.4.1 by alice since 2026-11-21 10:00 UTC: OPS-7 checkout errors [" + rbReq.ID + "]; promotions refused until `unpin checkout prod`\n" +
		"             holds back Argo CD Image Updater for image checkout of Application checkout-prod (argocd/checkout-prod.yaml)\n" +
		"             holds back Flux image automation of ImagePolicy flux-system:checkout (apps/checkout/overlays/prod/kustomization.yaml)\n"
	if list.Outcome != gitops.OutcomeAnswered || !strings.HasPrefix(list.Text, wantList) {
		t.Errorf("pins:\n%s\nwant it to start with:\n%s", list.Text, wantList)
	}
	if r := ask(f, gitops.Request{ID: "shp-l2", Action: gitops.ActionPins, Env: "staging", User: "alice"}); !strings.Contains(r.Text, "none: no app is pinned in staging") {
		t.Errorf("pins staging:\n%s", r.Text)
	}
	if r := ask(f, gitops.Request{ID: "shp-l3", Action: gitops.ActionPins, User: "mallory"}); r.Outcome != gitops.OutcomeDenied {
		t.Errorf("pins for mallory: %s: %s", r.Outcome, r.Text)
	}

	// Break glass: needs the right, then lands loudly.
	bg := promote
	bg.ID, bg.BreakGlass = "shp-bg", true
	f.denyAction = map[gitops.Action]bool{gitops.ActionBreakGlass: true}
	if r := ask(f, bg); r.Outcome != gitops.OutcomeRejected || !strings.Contains(r.Text, "bob may not break glass") {
		t.Fatalf("break glass without the right: %s", r.Text)
	}
	f.denyAction = nil
	plan := ask(f, bg)
	if plan.Outcome != gitops.OutcomeConfirm || !strings.Contains(plan.Text, "[BREAK-GLASS: overrides the pin of checkout in prod]") ||
		!strings.Contains(plan.Text, "BREAK-GLASS: this promote overrides a pin: checkout in prod is pinned to 1.4.1 by alice") {
		t.Fatalf("break-glass plan: %s", plan.Text)
	}
	done := f.svc.Confirm(ctx, plan.Plan)
	if done.Outcome != gitops.OutcomeCommitted || !strings.Contains(done.Text, "BREAK-GLASS: this change overrode a pin (checkout in prod is pinned to 1.4.1") {
		t.Fatalf("break glass: %s: %s", done.Outcome, done.Text)
	}
	if tr := parseTrailersWithGit(t, gittest.Git(t, f.bare, "log", "-1", "--format=%B")); !strings.HasPrefix(tr["Break-glass"], "checkout in prod is pinned to 1.4.1") {
		t.Errorf("Break-glass trailer = %q", tr["Break-glass"])
	}
	// The pin stays (a promotion does not lift it); the markers stay held.
	if p := gittest.Git(t, f.bare, "show", "main:"+gitops.PinsPath); !strings.Contains(p, "tag: 1.4.1") {
		t.Errorf("pins after the break-glass promotion:\n%s", p)
	}

	// Restart still works; a further rollback re-pins to its tag and keeps
	// what is held.
	if r := f.confirm(t, gitops.Request{ID: "shp-rs", Action: gitops.ActionRestart, App: "checkout", Env: "prod", Why: "OPS-9", User: "alice"}); r.Outcome != gitops.OutcomeCommitted {
		t.Fatalf("restart of a pinned app: %s", r.Text)
	}
	rb2 := f.confirm(t, gitops.Request{ID: "shp-rb2", Action: gitops.ActionRollback, App: "checkout", Env: "prod", Tag: "1.4.0", Why: "OPS-10", User: "carol"})
	if rb2.Outcome != gitops.OutcomeCommitted {
		t.Fatalf("second rollback: %s", rb2.Text)
	}
	p2 := gittest.Git(t, f.bare, "show", "main:"+gitops.PinsPath)
	if strings.Count(p2, "- app:") != 1 || !strings.Contains(p2, "tag: 1.4.0") || !strings.Contains(p2, "by: carol") || strings.Count(p2, "tool:") != 2 {
		t.Errorf("pins after the second rollback:\n%s", p2)
	}
	if stat := gittest.Git(t, f.bare, "show", "--stat", "--format=", "main"); !strings.Contains(stat, "2 files changed") {
		t.Errorf("the re-pin changes the tag and the pin only:\n%s", stat)
	}

	// Unpin: denied without the policy's unpin; needs a reason.
	unpin := gitops.Request{ID: "shp-unpin", Action: gitops.ActionUnpin, App: "checkout", Env: "prod", Why: "fixed in 1.4.3", User: "carol"}
	f.denyAction = map[gitops.Action]bool{gitops.ActionUnpin: true}
	if r := ask(f, unpin); r.Outcome != gitops.OutcomeDenied {
		t.Fatalf("unpin without the policy: %s: %s", r.Outcome, r.Text)
	}
	f.denyAction = nil
	up := ask(f, unpin)
	if up.Outcome != gitops.OutcomeConfirm || !strings.Contains(up.Text, "[shp-unpin] unpin checkout in prod (pinned to 1.4.0 by carol since 2026-11-21 10:00 UTC (OPS-10) [shp-rb2])") ||
		!strings.Contains(up.Text, "restores Flux image automation of ImagePolicy flux-system:checkout") {
		t.Fatalf("unpin plan: %s", up.Text)
	}
	if u := f.svc.Confirm(ctx, up.Plan); u.Outcome != gitops.OutcomeCommitted {
		t.Fatalf("unpin: %s", u.Text)
	}
	if _, err := gittest.Run(f.bare, "-c", "gpg.format=ssh", "-c", "gpg.ssh.allowedSignersFile="+signers, "verify-commit", "main"); err != nil {
		t.Errorf("git verify-commit of the unpin: %v", err)
	}
	umsg := gittest.Git(t, f.bare, "log", "-1", "--format=%B")
	if tr := parseTrailersWithGit(t, umsg); tr["Shipbot-Action"] != "unpin" || tr["Shipbot-Pin"] != "unpinned (was pinned to 1.4.0)" || tr["Justification"] != "fixed in 1.4.3" {
		t.Errorf("unpin trailers %v", tr)
	}
	if subj := strings.SplitN(umsg, "\n", 2)[0]; subj != "unpin checkout in prod" {
		t.Errorf("unpin subject %q", subj)
	}
	// The automation is back, byte for byte.
	// (The restart added its patch below the images.)
	if got := gittest.Git(t, f.bare, "show", "main:apps/checkout/overlays/prod/kustomization.yaml") + "\n"; !strings.HasPrefix(got, fluxOverlay("1.4.0")+"patches:\n") || strings.Contains(got, "held") {
		t.Errorf("overlay after unpin:\n%s\nwant:\n%s", got, fluxOverlay("1.4.0"))
	}
	if got := gittest.Git(t, f.bare, "show", "main:argocd/checkout-prod.yaml"); got != beforeApp {
		t.Errorf("Application after unpin:\n%s\nwant:\n%s", got, beforeApp)
	}
	if p := gittest.Git(t, f.bare, "show", "main:"+gitops.PinsPath); !strings.Contains(p, "pins: []") {
		t.Errorf("pins after unpin:\n%s", p)
	}
	// Promotions pass again; a second unpin says there is no pin.
	if r := ask(f, gitops.Request{ID: "shp-p2", Action: gitops.ActionPromote, App: "checkout", FromEnv: "staging", Env: "prod", Why: "OPS-11", User: "bob"}); r.Outcome != gitops.OutcomeConfirm {
		t.Errorf("promote after unpin: %s: %s", r.Outcome, r.Text)
	}
	if r := ask(f, gitops.Request{ID: "shp-unpin2", Action: gitops.ActionUnpin, App: "checkout", Env: "prod", Why: "x", User: "carol"}); !strings.Contains(r.Text, "checkout in prod is not pinned") {
		t.Errorf("second unpin: %s", r.Text)
	}
	// The same unpin redelivered is answered with its commit: it landed.
	if r := ask(f, unpin); r.Outcome == gitops.OutcomeConfirm || !strings.Contains(r.Text, "unpin checkout in prod") || strings.Contains(r.Text, "not pinned") {
		t.Errorf("redelivered unpin: %s: %s", r.Outcome, r.Text)
	}

	// The audit lists the pins and the unpin, with the break-glass flag
	// on the promotion.
	recs, err := f.svc.Audit(ctx, gitops.AuditOptions{Checker: &FakeChecker{CheckFunc: func(c *object.Commit) (string, string) {
		if c.Committer.Email == "shipbot@example.com" {
			return gitops.SignatureGood, "k"
		}
		return gitops.SignatureUnsigned, ""
	}}, App: "checkout", Env: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ action, from, to, by, req, flags string }
	var got []row
	for _, r := range recs[:7] {
		got = append(got, row{r.Action, r.From, r.To, r.RequestedBy, r.RequestID, strings.Join(r.Flags, ",")})
	}
	wantRows := []row{
		{"unpin", "pinned to 1.4.0", "unpinned", "carol", "shp-unpin", ""},
		{"rollback", "1.5.0", "1.4.0", "carol", "shp-rb2", ""},
		{"pin", "pinned to 1.4.1", "pinned to 1.4.0", "carol", "shp-rb2", ""},
		{"restart", "", "2026-11-21T10:00:00Z", "alice", "shp-rs", ""},
		{"promote", "1.4.1", "1.5.0", "bob", "shp-bg", "break-glass"},
		{"rollback", "1.4.2", "1.4.1", "alice", rbReq.ID, ""},
		{"pin", "unpinned", "pinned to 1.4.1", "alice", rbReq.ID, ""},
	}
	for i := range wantRows {
		if i >= len(got) || got[i] != wantRows[i] {
			t.Errorf("record %d = %+v\nwant        %+v", i, got[i], wantRows[i])
		}
	}
}

// A pins file that can't be read refuses promotions (like the freezes
// file), never a rollback.
func TestBrokenPinsFile(t *testing.T) {
	f := newFixture(t, 0)
	gittest.Seed(t, f.bare, map[string]string{gitops.PinsPath: "pins: [\n"}, "break the pins file")
	if r := ask(f, gitops.Request{ID: "shp-p", Action: gitops.ActionPromote, App: "checkout", FromEnv: "staging", Env: "prod", Why: "x", User: "bob"}); r.Outcome != gitops.OutcomeFailed {
		t.Errorf("promote with a broken pins file: %s: %s", r.Outcome, r.Text)
	}
	r := ask(f, rollback("alice", "checkout", "OPS-1"))
	if r.Outcome != gitops.OutcomeConfirm || !strings.Contains(r.Text, "PIN NOT SET: .shipbot/pins.yaml can't be read") {
		t.Errorf("rollback with a broken pins file: %s: %s", r.Outcome, r.Text)
	}
}
