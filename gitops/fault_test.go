package gitops_test

// The fault suite (issue 13): a git remote on 127.0.0.1 over real smart HTTP
// that refuses connections, answers 503, hangs, applies a push and drops the
// connection, or runs a pre-receive hook that refuses with a message; a
// bot killed with SIGKILL between "yes" and its reply, restarted and handed
// the same request again; trailers copied into commits pushed by hand.
// Every case checks the remote with the git CLI and the reply the
// requester gets.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/shipbot/shipbot/gitops"
	"github.com/shipbot/shipbot/gitops/edit"
	"github.com/shipbot/shipbot/gitops/gittest"
	"github.com/shipbot/shipbot/gitops/repo"
	"github.com/shipbot/shipbot/gitops/sign"
)

// faultPushTimeout bounds one push or look in the fault suite: a hanging
// remote costs this much. Generous for a loaded machine; nothing asserts
// on time.
const faultPushTimeout = 5 * time.Second

// faultFixture is the seeded environment repo behind a Remote that can
// misbehave, with shipbot's SSH signing key and the allowed-signers file
// that trusts it.
type faultFixture struct {
	bare    string
	remote  *gittest.Remote
	url     string
	key     string // shipbot's private key
	signers string // allowed_signers trusting it
	notes   *lateNotes
}

func newFaultFixture(t *testing.T) *faultFixture {
	t.Helper()
	bare := gittest.InitBare(t)
	gittest.Seed(t, bare, map[string]string{
		"README.md": "env\n",
		"apps/checkout/overlays/prod/kustomization.yaml":    overlay("1.4.0"),
		"apps/checkout/overlays/staging/kustomization.yaml": overlay("1.5.0"),
	}, "bootstrap")
	gittest.Seed(t, bare, map[string]string{"apps/checkout/overlays/prod/kustomization.yaml": overlay("1.4.1")}, "deploy 1.4.1")
	gittest.Seed(t, bare, map[string]string{"apps/checkout/overlays/prod/kustomization.yaml": overlay("1.4.2")}, "deploy 1.4.2")
	f := &faultFixture{bare: bare, notes: &lateNotes{ch: make(chan gitops.ProposalUpdate, 16)}}
	f.remote = gittest.ServeFaults(t, filepath.Dir(bare))
	f.url = f.remote.URL + "/env.git"
	keys := t.TempDir()
	f.key = filepath.Join(keys, "shipbot_key")
	pub, err := sign.GenerateSSH(f.key, "shipbot")
	if err != nil {
		t.Fatal(err)
	}
	f.signers = filepath.Join(keys, "allowed_signers")
	if err := os.WriteFile(f.signers, []byte(sign.AllowedSignersLine("shipbot@example.com", pub)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// faultCatalog is checkout in staging and prod.
func faultCatalog() *gitops.Catalog {
	target := func(env string) gitops.Target {
		return gitops.Target{App: "checkout", Env: env, Location: edit.Location{
			Layout: edit.LayoutKustomize, Path: "apps/checkout/overlays/" + env, Image: "registry.example.com/checkout",
		}}
	}
	return &gitops.Catalog{
		Envs: []gitops.Environment{{Name: "staging"}, {Name: "prod", Protected: true}},
		Apps: map[string]map[string]gitops.Target{"checkout": {"staging": target("staging"), "prod": target("prod")}},
	}
}

// verifierChecker trusts the keys of an allowed-signers file.
type verifierChecker struct{ v *sign.Verifier }

func (c verifierChecker) CheckCommit(co *object.Commit) (string, string) {
	st, key := c.v.VerifyCommit(co)
	return string(st), key
}

// lateNotes receives what shipbot reports after its reply.
type lateNotes struct{ ch chan gitops.ProposalUpdate }

func (n *lateNotes) ProposalUpdated(_ context.Context, u gitops.ProposalUpdate) { n.ch <- u }

// next waits for the next late report (the bound only stops a broken test).
func (n *lateNotes) next(t *testing.T) gitops.ProposalUpdate {
	t.Helper()
	select {
	case u := <-n.ch:
		return u
	case <-time.After(2 * time.Minute):
		t.Fatal("no late report")
		return gitops.ProposalUpdate{}
	}
}

// service starts shipbot on cache (a fresh one when ""): the remote, the
// signing key, the trusted keys, the late-report notifier. It stops when
// the test ends.
func (f *faultFixture) service(t testing.TB, cache string, opts ...func(*gitops.ServiceOptions)) *gitops.Service {
	t.Helper()
	if cache == "" {
		cache = t.TempDir()
	}
	r, err := repo.Open(context.Background(), repo.Options{URL: f.url, CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	signer, err := sign.LoadSSH(f.key, "")
	if err != nil {
		t.Fatal(err)
	}
	v, err := sign.NewVerifier(nil, []string{f.signers})
	if err != nil {
		t.Fatal(err)
	}
	o := gitops.ServiceOptions{
		Catalog: faultCatalog(), Repo: r,
		Authorizer: &FakeAuthorizer{AuthorizeFunc: func(gitops.AuthzQuery) gitops.Decision {
			return gitops.Decision{Allowed: true, Rule: "p, *"}
		}},
		Justifier: FakeJustifier{}, Directory: directory{},
		Committer:      gitops.Person{Name: "shipbot", Email: "shipbot@example.com"},
		Signer:         signer,
		RecordChecker:  verifierChecker{v},
		Notifier:       f.notes,
		Now:            func() time.Time { return time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC) },
		PushTimeout:    faultPushTimeout,
		ResolveBackoff: 20 * time.Millisecond,
	}
	for _, opt := range opts {
		opt(&o)
	}
	svc, err := gitops.NewService(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		svc.Close()
		r.Close()
	})
	return svc
}

func (f *faultFixture) head(t *testing.T) string { return gittest.Git(t, f.bare, "rev-parse", "main") }

// landed lists the commits of main that carry request id's trailer.
func (f *faultFixture) landed(t *testing.T, id string) []string {
	t.Helper()
	out := gittest.Git(t, f.bare, "log", "--format=%H", "--fixed-strings", "--grep=Shipbot-Request: "+id, "main")
	if out == "" {
		return nil
	}
	return strings.Fields(out)
}

// prodTag is checkout's tag in prod on the remote.
func (f *faultFixture) prodTag(t *testing.T) string {
	t.Helper()
	for _, l := range strings.Split(gittest.Git(t, f.bare, "show", "main:apps/checkout/overlays/prod/kustomization.yaml"), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "newTag: "); ok {
			return strings.TrimSuffix(v, " # live")
		}
	}
	return ""
}

// verifies reports whether git verify-commit accepts c with the trusted keys.
func (f *faultFixture) verifies(t *testing.T, c string) bool {
	_, err := gittest.Run(f.bare, "-c", "gpg.format=ssh", "-c", "gpg.ssh.allowedSignersFile="+f.signers, "verify-commit", c)
	return err == nil
}

// plainForUsers fails when a reply carries what belongs in the log only.
func (f *faultFixture) plainForUsers(t *testing.T, text string) {
	t.Helper()
	for _, bad := range []string{f.remote.URL, "127.0.0.1", "http://", "dial", "tcp", "connection refused", "EOF", "unexpected client error", "context deadline"} {
		if strings.Contains(text, bad) {
			t.Errorf("the reply shows %q, which belongs in the log:\n%s", bad, text)
		}
	}
}

// neverSaysNothingChanged fails when a reply claims what shipbot can't know.
func neverSaysNothingChanged(t *testing.T, text string) {
	t.Helper()
	for _, bad := range []string{"changed nothing", "failed and"} {
		if strings.Contains(text, bad) {
			t.Errorf("the reply says %q:\n%s", bad, text)
		}
	}
}

func (f *faultFixture) plan(t *testing.T, svc *gitops.Service, req gitops.Request) *gitops.Plan {
	t.Helper()
	resp := svc.Handle(context.Background(), req)
	if resp.Outcome != gitops.OutcomeConfirm || resp.Plan == nil {
		t.Fatalf("plan: %s: %s", resp.Outcome, resp.Text)
	}
	return resp.Plan
}

// The remote is down (connections refused): nothing was sent, so shipbot
// says for sure that nothing was written, in a plain sentence with the
// request id; once it is up again the same request lands once.
func TestFaultRemoteDown(t *testing.T) {
	f := newFaultFixture(t)
	svc := f.service(t, "")
	before := f.head(t)
	req := rollback("alice", "checkout", "INC-1")
	p := f.plan(t, svc, req)

	f.remote.Down()
	got := svc.Confirm(context.Background(), p)
	if got.Outcome != gitops.OutcomeFailed || !strings.Contains(got.Text, "["+req.ID+"] not written: the git remote could not be reached") ||
		!strings.Contains(got.Text, "Nothing was changed on main") {
		t.Errorf("confirm with the remote down: %s: %s", got.Outcome, got.Text)
	}
	f.plainForUsers(t, got.Text)
	again := svc.Handle(context.Background(), req)
	if again.Outcome != gitops.OutcomeFailed || !strings.Contains(again.Text, "the git remote could not be reached") || !strings.Contains(again.Text, req.ID) {
		t.Errorf("plan with the remote down: %s: %s", again.Outcome, again.Text)
	}
	f.plainForUsers(t, again.Text)
	if f.head(t) != before {
		t.Fatal("the remote changed while it was down")
	}

	f.remote.Up()
	done := svc.Confirm(context.Background(), f.plan(t, svc, req))
	if done.Outcome != gitops.OutcomeCommitted || f.head(t) != done.Commit || len(f.landed(t, req.ID)) != 1 || f.prodTag(t) != "1.4.1" {
		t.Fatalf("after the remote came back: %s: %s; landed %v", done.Outcome, done.Text, f.landed(t, req.ID))
	}
}

// 503: on the receive-pack advertisement (no push is sent) and on the push
// itself (a 503 is an answer: the request was not processed). Both are
// "not written" for sure.
func TestFaultRemoteAnswers503(t *testing.T) {
	for _, c := range []struct {
		name   string
		match  gittest.Match
		pushes int
	}{{"advertisement", gittest.Pushes, 0}, {"push", gittest.PushPost, 1}} {
		t.Run(c.name, func(t *testing.T) {
			f := newFaultFixture(t)
			svc := f.service(t, "")
			before := f.head(t)
			req := rollback("alice", "checkout", "INC-2")
			p := f.plan(t, svc, req)
			f.remote.Inject(gittest.Fault{Match: c.match, Kind: gittest.Status, Status: 503})
			got := svc.Confirm(context.Background(), p)
			if got.Outcome != gitops.OutcomeFailed || !strings.Contains(got.Text, "["+req.ID+"] not written: the git remote answered HTTP 503 (Service Unavailable)") {
				t.Errorf("%s: %s", got.Outcome, got.Text)
			}
			f.plainForUsers(t, got.Text)
			if f.head(t) != before || f.remote.Pushes() != c.pushes {
				t.Errorf("remote moved: %v; %d pushes reached it, want %d", f.head(t) != before, f.remote.Pushes(), c.pushes)
			}
		})
	}
}

// The push hangs: the client gives up (PushTimeout). The outcome is
// unknown, so shipbot looks: the branch has not moved, so it sends the same
// push again, which lands; the reply says done, once.
func TestFaultPushHangs(t *testing.T) {
	f := newFaultFixture(t)
	svc := f.service(t, "")
	before := f.head(t)
	req := rollback("alice", "checkout", "INC-3")
	p := f.plan(t, svc, req)
	f.remote.Inject(gittest.Fault{Match: gittest.PushPost, Kind: gittest.Hang, Times: 1})
	got := svc.Confirm(context.Background(), p)
	if got.Outcome != gitops.OutcomeCommitted || !strings.Contains(got.Text, "["+req.ID+"] done: rollback checkout in prod: 1.4.2 -> 1.4.1") {
		t.Fatalf("%s: %s", got.Outcome, got.Text)
	}
	neverSaysNothingChanged(t, got.Text)
	landed := f.landed(t, req.ID)
	if len(landed) != 1 || landed[0] != got.Commit || f.head(t) != got.Commit || gittest.Git(t, f.bare, "rev-parse", "main^") != before {
		t.Errorf("want exactly one commit for the request on top of %s: landed %v, head %s, reply %s", before, landed, f.head(t), got.Commit)
	}
	if f.remote.Pushes() != 2 || !f.verifies(t, got.Commit) {
		t.Errorf("%d pushes reached the remote, want 2 (the hung one, the same one again); signature verifies: %v", f.remote.Pushes(), f.verifies(t, got.Commit))
	}
}

// The remote applies the push and drops the connection before answering
// (the fault behind "two rollbacks instead of one"). shipbot fetches, finds
// its commit and says done, with that commit; it never pushes twice.
func TestFaultDropAfterApply(t *testing.T) {
	f := newFaultFixture(t)
	svc := f.service(t, "")
	before := f.head(t)
	req := rollback("alice", "checkout", "INC-4")
	p := f.plan(t, svc, req)
	f.remote.Inject(gittest.Fault{Match: gittest.PushPost, Kind: gittest.DropAfterApply, Times: 1})
	got := svc.Confirm(context.Background(), p)
	if got.Outcome != gitops.OutcomeCommitted || !strings.Contains(got.Text, "["+req.ID+"] done: rollback checkout in prod: 1.4.2 -> 1.4.1") ||
		!strings.Contains(got.Text, "a fetch found the commit") {
		t.Fatalf("%s: %s", got.Outcome, got.Text)
	}
	neverSaysNothingChanged(t, got.Text)
	if f.remote.Dropped() != 1 || f.remote.Pushes() != 1 {
		t.Errorf("%d pushes dropped, %d reached the remote; want 1 and 1", f.remote.Dropped(), f.remote.Pushes())
	}
	landed := f.landed(t, req.ID)
	if len(landed) != 1 || f.head(t) != got.Commit || landed[0] != got.Commit || !strings.Contains(got.Text, got.Commit[:10]) ||
		gittest.Git(t, f.bare, "rev-parse", "main^") != before || f.prodTag(t) != "1.4.1" {
		t.Errorf("landed %v, head %s, reply commit %s, tag %s", landed, f.head(t), got.Commit, f.prodTag(t))
	}
	// Asked again (the user retries): the same commit, no second rollback.
	again := svc.Handle(context.Background(), req)
	if again.Plan != nil || !strings.Contains(again.Text, "already done") || !strings.Contains(again.Text, got.Commit[:10]) || len(f.landed(t, req.ID)) != 1 || f.prodTag(t) != "1.4.1" {
		t.Errorf("asked again: %s: %s", again.Outcome, again.Text)
	}
}

// The remote applies the push, drops the connection and goes down: shipbot
// can't look, so it says it could not tell yet — do not retry — and reports
// the commit once the remote is back.
func TestFaultDropAfterApplyThenDown(t *testing.T) {
	f := newFaultFixture(t)
	svc := f.service(t, "")
	req := rollback("alice", "checkout", "INC-5")
	p := f.plan(t, svc, req)
	f.remote.Inject(gittest.Fault{Match: gittest.PushPost, Kind: gittest.DropAfterApply, Times: 1, Then: f.remote.Down})
	got := svc.Confirm(context.Background(), p)
	if got.Outcome != gitops.OutcomeUnknown || !strings.Contains(got.Text, "["+req.ID+"] could not tell yet whether rollback checkout in prod: 1.4.2 -> 1.4.1 landed") ||
		!strings.Contains(got.Text, "Do not retry; I will report here once I know.") {
		t.Fatalf("%s: %s", got.Outcome, got.Text)
	}
	neverSaysNothingChanged(t, got.Text)
	f.plainForUsers(t, got.Text)
	landed := f.landed(t, req.ID)
	if len(landed) != 1 || f.head(t) != landed[0] {
		t.Fatalf("the remote applied the push: want its commit on main, landed %v", landed)
	}

	f.remote.Up()
	late := f.notes.next(t)
	if late.RequestID != req.ID || late.Outcome != gitops.OutcomeCommitted || late.Commit != landed[0] || late.Channel != "#ops" ||
		!strings.Contains(late.Text, "["+req.ID+"] landed after all: rollback checkout in prod: 1.4.2 -> 1.4.1") || !strings.Contains(late.Text, landed[0][:10]) {
		t.Errorf("late report: %+v", late)
	}
	if err := svc.Settle(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(f.landed(t, req.ID)); n != 1 || f.remote.Pushes() != 1 {
		t.Errorf("%d commits for the request, %d pushes; want 1 and 1", n, f.remote.Pushes())
	}
}

// The push hangs and so does every fetch: shipbot can tell nothing, says
// so, and keeps looking. When the remote answers again the branch has not
// moved: shipbot sends the same push, it lands, and the requester is told.
func TestFaultRemoteHangsThenRecovers(t *testing.T) {
	f := newFaultFixture(t)
	svc := f.service(t, "")
	before := f.head(t)
	req := rollback("alice", "checkout", "INC-6")
	p := f.plan(t, svc, req)
	f.remote.Inject(gittest.Fault{Match: gittest.PushPost, Kind: gittest.Hang})
	f.remote.Inject(gittest.Fault{Match: gittest.Fetches, Kind: gittest.Hang})
	got := svc.Confirm(context.Background(), p)
	if got.Outcome != gitops.OutcomeUnknown || !strings.Contains(got.Text, "could not tell yet") || !strings.Contains(got.Text, "Do not retry; I will report here once I know.") {
		t.Fatalf("%s: %s", got.Outcome, got.Text)
	}
	neverSaysNothingChanged(t, got.Text)
	f.plainForUsers(t, got.Text)
	if f.head(t) != before {
		t.Fatal("a hung push changed the remote")
	}

	f.remote.Heal()
	late := f.notes.next(t)
	landed := f.landed(t, req.ID)
	if len(landed) != 1 || late.Outcome != gitops.OutcomeCommitted || late.Commit != landed[0] || f.head(t) != landed[0] ||
		!strings.Contains(late.Text, "landed after all: rollback checkout in prod: 1.4.2 -> 1.4.1") {
		t.Fatalf("late report %+v; landed %v", late, landed)
	}
	if gittest.Git(t, f.bare, "rev-parse", "main^") != before || !f.verifies(t, landed[0]) {
		t.Error("the late commit is not shipbot's signed change on the old tip")
	}
}

// A pre-receive hook refuses the push with its own message: the requester
// reads the remote's words (normalised), not "pre-receive hook declined"
// alone, and nothing is written.
func TestFaultPreReceiveHookMessage(t *testing.T) {
	f := newFaultFixture(t)
	svc := f.service(t, "")
	before := f.head(t)
	gittest.PreReceive(t, f.bare, `echo "pushes to prod are frozen" >&2
printf '\033[31mask #release\033[0m \342\200\256 on call\n'
exit 1`)
	req := rollback("alice", "checkout", "INC-7")
	got := svc.Confirm(context.Background(), f.plan(t, svc, req))
	if got.Outcome != gitops.OutcomeRejected ||
		!strings.Contains(got.Text, "["+req.ID+`] not written: the git remote refused the push: "pushes to prod are frozen ask #release on call" (pre-receive hook declined)`) ||
		!strings.Contains(got.Text, "Nothing was changed on main.") {
		t.Errorf("%s: %s", got.Outcome, got.Text)
	}
	if strings.ContainsAny(got.Text, "\x1b\u202e") {
		t.Errorf("the remote's control characters reached the reply: %q", got.Text)
	}
	f.plainForUsers(t, got.Text)
	if f.head(t) != before {
		t.Fatal("a refused push changed the remote")
	}
	gittest.RemovePreReceive(t, f.bare)
	if done := svc.Confirm(context.Background(), f.plan(t, svc, req)); done.Outcome != gitops.OutcomeCommitted || len(f.landed(t, req.ID)) != 1 {
		t.Fatalf("without the hook: %s: %s", done.Outcome, done.Text)
	}
}

// The child process of TestFaultKilledBetweenYesAndReply: shipbot confirming
// a rollback, killed by the test with SIGKILL once the remote applied its
// push, before the answer reaches it.
func TestFaultKillChild(t *testing.T) {
	if os.Getenv("SHIPBOT_FAULT_CHILD") == "" {
		t.Skip("run by TestFaultKilledBetweenYesAndReply")
	}
	f := &faultFixture{url: os.Getenv("SHIPBOT_FAULT_URL"), key: os.Getenv("SHIPBOT_FAULT_KEY"), signers: os.Getenv("SHIPBOT_FAULT_SIGNERS"),
		notes: &lateNotes{ch: make(chan gitops.ProposalUpdate, 16)}}
	svc := f.service(t, os.Getenv("SHIPBOT_FAULT_CACHE"))
	req := rollback("alice", "checkout", os.Getenv("SHIPBOT_FAULT_WHY"))
	resp := svc.Handle(context.Background(), req)
	if resp.Plan == nil {
		t.Fatalf("child: no plan: %s", resp.Text)
	}
	got := svc.Confirm(context.Background(), resp.Plan)
	t.Fatalf("child: not killed before the answer: %s", got.Text)
}

// kill -9 between "yes" and the reply, then a restart on the same cache
// and the request redelivered: the answer is the landed commit with its own
// from and to — at plan time (no new plan under the same id) and at confirm
// time (a plan shown before the crash) — and the remote holds one change.
func TestFaultKilledBetweenYesAndReply(t *testing.T) {
	f := newFaultFixture(t)
	before := f.head(t)
	why := "INC-8"
	req := rollback("alice", "checkout", why)
	// A plan shown before the crash, by another replica, waiting for yes.
	shown := f.plan(t, f.service(t, ""), req)

	cache := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestFaultKillChild$", "-test.v")
	cmd.Env = append(os.Environ(), "SHIPBOT_FAULT_CHILD=1", "SHIPBOT_FAULT_URL="+f.url, "SHIPBOT_FAULT_KEY="+f.key,
		"SHIPBOT_FAULT_SIGNERS="+f.signers, "SHIPBOT_FAULT_CACHE="+cache, "SHIPBOT_FAULT_WHY="+why)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	child := make(chan *os.Process, 1)
	f.remote.Inject(gittest.Fault{Match: gittest.PushPost, Kind: gittest.DropAfterApply, Times: 1, Then: func() {
		_ = (<-child).Kill() // SIGKILL: the push is applied, the answer never arrives
	}})
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	child <- cmd.Process
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ProcessState.String() != "signal: killed" {
		t.Fatalf("the child was not killed by the test: %v\n%s", err, out.String())
	}
	landed := f.landed(t, req.ID)
	if len(landed) != 1 || f.head(t) != landed[0] || f.prodTag(t) != "1.4.1" {
		t.Fatalf("the killed bot's push: landed %v, tag %s", landed, f.prodTag(t))
	}

	// Restart on the same cache; Slack redelivers the message.
	svc := f.service(t, cache)
	again := svc.Handle(context.Background(), req)
	if again.Plan != nil || again.Outcome != gitops.OutcomeAnswered ||
		!strings.Contains(again.Text, "["+req.ID+"] already done: rollback checkout in prod: 1.4.2 -> 1.4.1") ||
		!strings.Contains(again.Text, "commit "+landed[0][:10]+" landed on main for this request earlier; nothing new was planned or written") {
		t.Errorf("redelivery after the restart: %s: %s", again.Outcome, again.Text)
	}
	// The plan shown before the crash is confirmed now.
	done := svc.Confirm(context.Background(), shown)
	if done.Outcome != gitops.OutcomeCommitted || done.Commit != landed[0] ||
		!strings.Contains(done.Text, "["+req.ID+"] done: rollback checkout in prod: 1.4.2 -> 1.4.1") ||
		!strings.Contains(done.Text, "landed on main for this request earlier; nothing new was written") {
		t.Errorf("confirm after the restart: %s: %s", done.Outcome, done.Text)
	}
	if n := len(f.landed(t, req.ID)); n != 1 || f.head(t) != landed[0] || gittest.Git(t, f.bare, "rev-parse", "main^") != before {
		t.Errorf("%d commits for the request, head %s; want the one the killed bot pushed", n, f.head(t))
	}
}

// The same request id planned as another change (a retried message whose
// plan differs): confirmed after the id landed, it is answered with the
// commit that landed and that commit's own from and to.
func TestFaultRetriedIDAnswersWithWhatLanded(t *testing.T) {
	f := newFaultFixture(t)
	svc := f.service(t, "")
	req := rollback("alice", "checkout", "INC-9")
	req.Tag = "1.3.0"
	other := f.plan(t, svc, req) // 1.4.2 -> 1.3.0
	first := req
	first.Tag = ""
	landed := svc.Confirm(context.Background(), f.plan(t, f.service(t, ""), first)) // 1.4.2 -> 1.4.1, by another replica
	if landed.Outcome != gitops.OutcomeCommitted {
		t.Fatal(landed.Text)
	}
	got := svc.Confirm(context.Background(), other)
	if got.Outcome != gitops.OutcomeCommitted || got.Commit != landed.Commit || !strings.Contains(got.Text, "done: rollback checkout in prod: 1.4.2 -> 1.4.1") || strings.Contains(got.Text, "1.3.0") {
		t.Errorf("%s: %s", got.Outcome, got.Text)
	}
	if other.From != "1.4.2" || other.To != "1.4.1" {
		t.Errorf("the plan the front end follows says %s -> %s, want what landed", other.From, other.To)
	}
	if n := len(f.landed(t, req.ID)); n != 1 || f.prodTag(t) != "1.4.1" {
		t.Errorf("%d commits for the request, tag %s", n, f.prodTag(t))
	}
	if again := svc.Handle(context.Background(), req); again.Plan != nil || !strings.Contains(again.Text, "already done: rollback checkout in prod: 1.4.2 -> 1.4.1") {
		t.Errorf("asked again: %s", again.Text)
	}
}

// Commits pushed by hand with a copied Shipbot-Request trailer (the id is
// shown in chat) — by a human, and as "shipbot" without shipbot's
// signature — neither answer the request nor drop it: the redelivered
// message gets a plan, and the confirmed rollback lands as shipbot's own
// signed commit on top of them.
func TestFaultForgedTrailer(t *testing.T) {
	f := newFaultFixture(t)
	svc := f.service(t, "")
	req := rollback("alice", "checkout", "INC-10")
	p := f.plan(t, svc, req)
	trailers := fmt.Sprintf("Shipbot-Request: %s\nShipbot-Action: rollback\nShipbot-App: checkout\nShipbot-Env: prod\nShipbot-From: 1.4.2\nShipbot-To: 1.4.1", req.ID)
	gittest.Seed(t, f.bare, map[string]string{"README.md": "forged by a human\n"}, "docs\n\n"+trailers)
	// As shipbot's committer, unsigned, and with the very change.
	work := filepath.Join(t.TempDir(), "w")
	gittest.Git(t, "", "clone", "--quiet", f.bare, work)
	if err := writeFile(filepath.Join(work, "README.md"), "forged as shipbot\n"); err != nil {
		t.Fatal(err)
	}
	c := exec.Command("git", "commit", "--quiet", "-am", "rollback checkout in prod: 1.4.2 -> 1.4.1\n\n"+trailers)
	c.Dir = work
	c.Env = append(gittest.Env(t.TempDir()), "GIT_COMMITTER_NAME=shipbot", "GIT_COMMITTER_EMAIL=shipbot@example.com")
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	gittest.Git(t, work, "push", "--quiet", "origin", "HEAD:main")
	forged := f.head(t)
	if n := len(f.landed(t, req.ID)); n != 2 {
		t.Fatalf("%d forged commits, want 2", n)
	}

	// Redelivered: a plan, not "already done".
	if again := svc.Handle(context.Background(), req); again.Outcome != gitops.OutcomeConfirm || again.Plan == nil || again.Plan.To != "1.4.1" {
		t.Errorf("redelivered after the forgeries: %s: %s", again.Outcome, again.Text)
	}
	got := svc.Confirm(context.Background(), p)
	if got.Outcome != gitops.OutcomeCommitted || got.Commit == forged || f.head(t) != got.Commit || !strings.Contains(got.Text, "done: rollback checkout in prod: 1.4.2 -> 1.4.1") {
		t.Fatalf("%s: %s (head %s, forged %s)", got.Outcome, got.Text, f.head(t), forged)
	}
	if gittest.Git(t, f.bare, "rev-parse", "main^") != forged || f.prodTag(t) != "1.4.1" || !f.verifies(t, got.Commit) {
		t.Errorf("the rollback is not shipbot's signed change on top of the forgeries")
	}
	if f.verifies(t, forged) {
		t.Error("the forged commit verifies")
	}

	// A tag change pushed by hand with copied trailers is a manual change
	// in history, by its author.
	gittest.Seed(t, f.bare, map[string]string{"apps/checkout/overlays/prod/kustomization.yaml": overlay("1.3.9")},
		"rollback checkout in prod: 1.4.1 -> 1.3.9\n\nShipbot-Request: shp-forged0000\nShipbot-Action: rollback\nShipbot-App: checkout\nShipbot-Env: prod\nRequested-by: bob <bob@example.com>")
	hist := svc.Handle(context.Background(), gitops.Request{ID: "shp-hist", Action: gitops.ActionHistory, App: "checkout", Env: "prod", User: "alice"})
	first := strings.SplitN(strings.TrimSpace(hist.Text), "\n", 3)
	if len(first) < 2 || !strings.Contains(first[1], "manual") || !strings.Contains(first[1], "Test Human") || strings.Contains(hist.Text, "bob") {
		t.Errorf("history believes a copied trailer:\n%s", hist.Text)
	}
}
