package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/shipbot/shipbot/cmd/shipbot/internal/config"
	"github.com/shipbot/shipbot/cmd/shipbot/internal/demo"
	"github.com/shipbot/shipbot/gitops/forge/github/githubtest"
)

// The review flow (docs/reviews.md) in `shipbot serve`: the demo's
// environment repo served by the GitHub double, a forge: section of type
// github, and alice's promotion into prod (2 approvals from sre, the demo
// policy) reviewed on GitHub and merged by shipbot.

const (
	// reviewToken and reviewHookSecret are the GitHub credentials; neither
	// may appear in serve's log.
	reviewToken      = "ghp_serveReviewToken0123456789abcdef"
	reviewHookSecret = "whsec-serve-review-4f1c9a0b7e"
)

// serveGitHubDemo is the demo with its environment repo on a GitHub
// double: the demo's history in a bare repo the double serves, and the
// demo config with repo.url on the double and a github forge section.
// interval is forge.reconcileInterval.
func serveGitHubDemo(t *testing.T, interval string) (cfg, bare string, double *githubtest.Server) {
	t.Helper()
	cfg, demoRepo := serveDemo(t)
	bare = filepath.Join(t.TempDir(), "env.git")
	serveRun(t, "git", "clone", "--quiet", "--bare", demoRepo, bare)
	serveGit(t, bare, "config", "http.receivepack", "true")
	if got, want := serveGit(t, bare, "rev-parse", "main"), serveGit(t, demoRepo, "rev-parse", "main"); got != want {
		t.Fatalf("the double's repo has main %s, the demo's %s", got, want)
	}
	double = githubtest.New(t, githubtest.Options{BareRepo: bare, Token: reviewToken})

	secrets := t.TempDir()
	tokenFile := filepath.Join(secrets, "github-token")
	hookFile := filepath.Join(secrets, "github-webhook")
	if err := os.WriteFile(tokenFile, []byte(reviewToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hookFile, []byte(reviewHookSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for old, repl := range map[string]string{
		"\n  url: env.git ": "\n  url: " + double.GitURL() + " ",
		"\nforge:\n  type: git ": "\nforge:\n  type: github\n  reconcileInterval: " + interval + "\n  github:\n" +
			"    baseURL: " + double.URL() + "\n" +
			"    owner: shipbot\n    repo: env\n" +
			"    tokenFile: " + tokenFile + "\n" +
			"    webhookSecretFile: " + hookFile + "\n" +
			"    logins: {alice: alice-gh, bob: bobby, carol: carol-gh, dave: dave-gh}\n ",
	} {
		if strings.Count(text, old) != 1 {
			t.Fatalf("the demo config has %d %q, want 1:\n%s", strings.Count(text, old), old, text)
		}
		text = strings.Replace(text, old, repl, 1)
	}
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(cfg)
	if err != nil {
		t.Fatalf("the rewritten config does not load: %v\n%s", err, text)
	}
	if f := c.Forge; c.RepoURL != double.GitURL() || f == nil || f.Type != "github" || f.GitHub == nil ||
		f.GitHub.BaseURL != double.URL() || f.GitHub.Owner != "shipbot" || f.GitHub.Repo != "env" ||
		f.GitHub.Logins["carol"] != "carol-gh" || f.GitHub.WebhookSecretFile != hookFile || !c.Signing.Required {
		t.Fatalf("the rewritten config reads as repo %s, forge %+v, signing %+v", c.RepoURL, c.Forge, c.Signing)
	}
	return cfg, bare, double
}

// serveRun runs a command and fails the test if it fails.
func serveRun(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// postHook posts a GitHub webhook delivery to serve as GitHub would, with
// the given signature.
func (s *served) postHook(t *testing.T, event, delivery string, payload []byte, signature string) (int, string) {
	t.Helper()
	return s.post(t, "/webhooks/github", string(payload), map[string]string{
		"Content-Type":        "application/json",
		"X-GitHub-Event":      event,
		"X-GitHub-Delivery":   delivery,
		"X-Hub-Signature-256": signature,
	})
}

// TestServeGitHubReview runs `shipbot serve` (Socket Mode) with the demo's
// repo on the GitHub double and a github forge. A forged webhook is
// refused with 401 and changes nothing. alice's Confirm of a promotion
// into prod opens a pull request (head shipbot/<id>, base main) instead of
// committing, and her message links it. Two approving reviews on GitHub by
// mapped SREs make serve merge: a signed commit on main with an
// Approved-by trailer per approver and Shipbot-Proposal naming the pull
// request, which the double then shows merged; the request's Slack message
// and thread say so (the Notifier path). The merge is triggered either by
// a signed pull_request_review webhook (the reconcile loop idle, every
// hour) or by the reconcile loop alone (every second, no webhooks).
// Neither GitHub secret appears in the log.
func TestServeGitHubReview(t *testing.T) {
	for _, via := range []string{"webhook", "reconcile"} {
		t.Run(via, func(t *testing.T) { serveGitHubReview(t, via) })
	}
}

func serveGitHubReview(t *testing.T, via string) {
	interval := "1h" // only webhooks make serve look at a proposal again
	if via == "reconcile" {
		interval = "1s"
	}
	cfg, bare, double := serveGitHubDemo(t, interval)
	fs := newServeSlack(t)
	fs.mu.Lock()
	fs.addUser("UCAROL", "carol@shop.example.com", "Carol White")
	fs.addUser("UDAVE", "dave@shop.example.com", "Dave Brown")
	fs.mu.Unlock()
	serveEnv(t, "socket", fs.apiURL())
	s := startServe(t, cfg)
	hookURL := s.base + "/webhooks/github"
	if via == "webhook" {
		double.SetWebhook(hookURL, []byte(reviewHookSecret))
	}
	before := serveGit(t, bare, "rev-parse", "main")
	count := serveCount(t, bare)
	refs := serveGit(t, bare, "for-each-ref", "--format=%(refname) %(objectname)")

	// A forged delivery: refused, and nothing happens.
	forged := []byte(`{"action":"submitted","pull_request":{"number":1,"head":{"ref":"shipbot/shp-forged0001"},"base":{"ref":"main"}}}`)
	for _, sig := range []string{"", "sha256=" + strings.Repeat("0", 64), githubtest.Sign([]byte("not-the-secret"), forged)} {
		if code, body := s.postHook(t, "pull_request_review", "forged-"+sig, forged, sig); code != http.StatusUnauthorized {
			t.Errorf("webhook signed %q: %d %q, want 401", sig, code, body)
		}
	}
	if !strings.Contains(s.log.String(), `"msg":"webhook refused: bad signature"`) {
		t.Error("the log does not show the forged webhooks refused")
	}
	if got := serveGit(t, bare, "for-each-ref", "--format=%(refname) %(objectname)"); got != refs {
		t.Errorf("the forged webhooks changed the repo's refs:\n%s\nwere:\n%s", got, refs)
	}
	if prs := double.PRs(); len(prs) != 0 {
		t.Errorf("%d pull requests after the forged webhooks, want none", len(prs))
	}
	if posts, updates, _ := fs.snapshot(); len(posts)+len(updates) != 0 {
		t.Errorf("the forged webhooks reached Slack: %+v %+v", posts, updates)
	}
	// A correctly signed ping is answered: the route is there, the secret right.
	ping := []byte(`{"zen":"Keep it logically awesome.","hook_id":1}`)
	if code, body := s.postHook(t, "ping", "ping-1", ping, githubtest.Sign([]byte(reviewHookSecret), ping)); code != http.StatusOK || body != "pong\n" {
		t.Errorf("signed ping: %d %q, want 200 pong", code, body)
	}

	// alice asks for the promotion into prod; it needs 2 approvals from sre.
	fs.deliver(t, "slash_commands", "env-gh-slash-1", serveSlash("UALICE", "promote checkout staging to prod --why CHG-42", "trig-gh-1"))
	plan := fs.planMessage(t, serveChannel, 0)
	id := serveRequestID(t, plan)
	if shown := plan.Shown(); !strings.Contains(shown, "promote checkout from staging to prod: ") {
		t.Errorf("the plan is not alice's promotion:\n%s", shown)
	}
	// docs/reviews.md, "What happens" 1: the plan shows the approvals the
	// change needs (the core's templates.Plan.Review, e.g. "2 approvals
	// from sre (the requester does not count); who may approve: ...").
	if shown := plan.Shown(); !strings.Contains(shown, "2 approvals from sre") {
		t.Errorf("the Slack plan does not say the change needs 2 approvals from sre (docs/reviews.md: the plan shows the approvals the change needs):\n%s", shown)
	}
	fs.deliver(t, "interactive", "env-gh-click-1", serveClick("UALICE", plan.TS, id, "1700000003.000001", "trig-gh-2"))

	// A pull request, not a commit.
	branch := "shipbot/" + id
	var pr gh.PullRequest
	serveWaitFor(t, "the pull request of "+branch, func() bool {
		for _, p := range double.PRs() {
			if p.GetHead().GetRef() == branch {
				pr = p
				return true
			}
		}
		return false
	})
	number, prURL := pr.GetNumber(), pr.GetHTMLURL()
	if pr.GetBase().GetRef() != "main" || pr.GetState() != "open" || pr.GetMerged() || prURL == "" {
		t.Errorf("pull request #%d: base %q state %q merged %v url %q, want open into main", number, pr.GetBase().GetRef(), pr.GetState(), pr.GetMerged(), prURL)
	}
	if n := len(double.PRs()); n != 1 {
		t.Errorf("%d pull requests, want 1", n)
	}
	head := pr.GetHead().GetSHA()
	if got := serveGit(t, bare, "rev-parse", "refs/heads/"+branch); got != head {
		t.Errorf("the branch %s is %s, the pull request's head %s", branch, got, head)
	}
	if parent := serveGit(t, bare, "rev-parse", head+"~1"); parent != before {
		t.Errorf("the proposal's head %s has parent %s, want main's tip %s", head, parent, before)
	}
	if ns := serveGit(t, bare, "diff", "--numstat", before, head); ns != "1\t1\t"+serveCheckout {
		t.Errorf("the proposal's diff: numstat %q, want one line of %s", ns, serveCheckout)
	}
	if got := serveGit(t, bare, "rev-parse", "main"); got != before {
		t.Fatalf("main moved to %s at the Confirm of a change that needs review", got)
	}
	link := "<" + prURL + "|the pull request>"
	serveWaitFor(t, "alice's message to link the pull request", func() bool {
		return strings.Contains(fs.current(serveChannel, plan.TS).Shown(), link)
	})
	if m := fs.current(serveChannel, plan.TS); strings.Contains(m.Blocks, `"shipbot_confirm"`) || !strings.Contains(m.Shown(), "approvals: 0 of 2 from group sre") {
		t.Errorf("alice's message after the Confirm:\n%s", m.Shown())
	}

	// bob approves on GitHub: one approval of two, nothing merges.
	double.AddReview(number, "bobby", "APPROVED", head)
	if via == "webhook" {
		sendReviewHook(t, double, number, "bobby")
		serveWaitFor(t, "bob's GitHub approval shown in alice's message", func() bool {
			return strings.Contains(fs.current(serveChannel, plan.TS).Shown(), "bob (github @bobby)")
		})
	} else {
		serveWaitFor(t, "bob's GitHub approval shown in alice's message (reconcile loop)", func() bool {
			return strings.Contains(fs.current(serveChannel, plan.TS).Shown(), "bob (github @bobby)")
		})
	}
	if got := serveGit(t, bare, "rev-parse", "main"); got != before {
		t.Fatalf("main moved to %s after one approval of two", got)
	}

	// carol approves on GitHub: serve merges.
	double.AddReview(number, "carol-gh", "APPROVED", head)
	if via == "webhook" {
		// The same event forged first: refused, no merge.
		payload := reviewHookPayload(t, double, number, "carol-gh")
		if code, _ := s.postHook(t, "pull_request_review", "forged-carol", payload, githubtest.Sign([]byte("not-the-secret"), payload)); code != http.StatusUnauthorized {
			t.Errorf("forged review webhook: %d, want 401", code)
		}
		time.Sleep(time.Second)
		if got := serveGit(t, bare, "rev-parse", "main"); got != before {
			t.Fatalf("a forged webhook made serve merge (main %s)", got)
		}
		sendReviewHook(t, double, number, "carol-gh")
	}
	serveWaitFor(t, "the merge on main", func() bool {
		return serveGit(t, bare, "rev-parse", "main") != before
	})
	merged := serveGit(t, bare, "rev-parse", "main")
	if n := serveCount(t, bare); n != count+1 {
		t.Errorf("%d commits on main after the merge, want %d (exactly one more)", n, count+1)
	}
	if parent := serveGit(t, bare, "rev-parse", "main~1"); parent != before {
		t.Errorf("the merge's parent is %s, want the old tip %s", parent, before)
	}
	if tree, want := serveGit(t, bare, "rev-parse", "main^{tree}"), serveGit(t, bare, "rev-parse", head+"^{tree}"); tree != want {
		t.Errorf("the merge's tree %s is not the approved tree %s", tree, want)
	}
	// An Approved-by names the person as Requested-by does (Slack's name and
	// email, "Name <email>"), then where they approved; bob and carol
	// approved on GitHub only, and never used shipbot in Slack.
	if got, want := serveGit(t, bare, "log", "-1", "--format=%(trailers:key=Approved-by,valueonly)", "main"),
		"Bob Jones <bob@shop.example.com> (github @bobby)\nCarol White <carol@shop.example.com> (github @carol-gh)"; got != want {
		t.Errorf("Approved-by trailers of the merge:\n%s\nwant:\n%s", got, want)
	}
	for key, want := range map[string]string{
		"Shipbot-Proposal": prURL,
		"Shipbot-Request":  id,
		"Requested-by":     "Alice Smith <alice@shop.example.com>",
		"Justification":    "CHG-42",
	} {
		if got := serveGit(t, bare, "log", "-1", "--format=%(trailers:key="+key+",valueonly)", "main"); got != want {
			t.Errorf("trailer %s of the merge: %q, want %q", key, got, want)
		}
	}
	if who := serveGit(t, bare, "log", "-1", "--format=%an <%ae>|%cn <%ce>", "main"); who != "Alice Smith <alice@shop.example.com>|shipbot <shipbot@shipbot.local>" {
		t.Errorf("author|committer of the merge %q, want alice and shipbot", who)
	}
	if _, err := exec.LookPath("ssh-keygen"); err == nil {
		signers := filepath.Join(filepath.Dir(cfg), demo.SignersFile)
		serveGit(t, bare, "-c", "gpg.format=ssh", "-c", "gpg.ssh.allowedSignersFile="+signers, "verify-commit", "main")
	}
	var done gh.PullRequest
	serveWaitFor(t, "the pull request shown merged", func() bool {
		done = double.PR(number)
		return done.GetMerged()
	})
	if done.GetState() != "closed" || done.GetMergeCommitSHA() == "" {
		t.Errorf("pull request #%d after the merge: state %q merge commit %q, want closed and merged", number, done.GetState(), done.GetMergeCommitSHA())
	}

	// Slack is told (ProposalUpdated): the request's message and its thread.
	mergedText := "[" + id + "] approved by bob and carol: merged."
	serveWaitFor(t, "alice's message to say it merged", func() bool {
		return strings.Contains(fs.current(serveChannel, plan.TS).Shown(), mergedText)
	})
	if shown := fs.current(serveChannel, plan.TS).Shown(); !strings.Contains(shown, ":white_check_mark:") || !strings.Contains(shown, link) {
		t.Errorf("alice's message after the merge lacks the check mark or the link:\n%s", shown)
	}
	var inThread bool
	posts, _, _ := fs.snapshot()
	for _, p := range posts {
		inThread = inThread || (p.Thread == plan.TS && strings.Contains(p.PlainText()+p.Shown(), mergedText))
	}
	if !inThread {
		t.Errorf("no message in alice's thread says %q; posts: %+v", mergedText, posts)
	}
	if got := serveGit(t, bare, "rev-parse", "main"); got != merged {
		t.Errorf("main moved again after the merge: %s, was %s", got, merged)
	}

	if err := s.stop(); err != nil {
		t.Fatalf("runServe after cancel: %v, want nil", err)
	}
	log := s.log.String()
	serveNoSecrets(t, log)
	for _, secret := range []string{reviewToken, reviewHookSecret} {
		if strings.Contains(log, secret) {
			t.Errorf("the log contains the GitHub secret %q", secret)
		}
	}
}

// reviewHookPayload is the pull_request_review event GitHub sends when
// login submits a review of pull request number.
func reviewHookPayload(t *testing.T, double *githubtest.Server, number int, login string) []byte {
	t.Helper()
	pr := double.PR(number)
	b, err := json.Marshal(gh.PullRequestReviewEvent{
		Action:      gh.String("submitted"),
		PullRequest: &pr,
		Review:      &gh.PullRequestReview{State: gh.String("approved"), User: &gh.User{Login: gh.String(login)}, CommitID: pr.GetHead().SHA},
		Repo:        pr.GetBase().GetRepo(),
		Sender:      &gh.User{Login: gh.String(login)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sendReviewHook has the double deliver, signed, the pull_request_review
// event of login's review, and checks serve took it.
func sendReviewHook(t *testing.T, double *githubtest.Server, number int, login string) {
	t.Helper()
	resp, err := double.SendWebhook("pull_request_review", reviewHookPayload(t, double, number, login))
	if err != nil {
		t.Fatalf("webhook of %s's review: %v", login, err)
	}
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("webhook of %s's review: %d %q, want 202", login, resp.StatusCode, body.String())
	}
}
