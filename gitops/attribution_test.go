package gitops_test

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/shipbot/shipbot/gitops"
	"github.com/shipbot/shipbot/gitops/edit"
	"github.com/shipbot/shipbot/gitops/gittest"
	"github.com/shipbot/shipbot/gitops/repo"
)

// Issue 12, item 7: apps that share a file are told apart by their own
// fields (image tag, restart annotation), never lumped together by file.

// A raw manifest file with the Deployments of two apps. web's target is
// the directory, api's the file itself: both read the same file.
const sharedManifest = `# web and api of the shop, one file
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
        - name: web
          image: registry.example.com/shop/web:1.0.0
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
spec:
  template:
    metadata:
      labels:
        app: api
    spec:
      containers:
        - name: api
          image: registry.example.com/shop/api:2.0.0
`

// A Helm values file with both apps' image blocks under their own keys.
const sharedValues = `# umbrella chart values of the shop
web:
  image:
    repository: registry.example.com/shop/web
    tag: 1.0.0
  podAnnotations: {}
api:
  image:
    repository: registry.example.com/shop/api
    tag: 2.0.0
  podAnnotations: {}
`

// sharedLayout is one way two apps share one file.
type sharedLayout struct {
	name    string
	file    string // the shared file
	content string
	web     edit.Location
	api     edit.Location
	// tag returns the text that holds an app's tag in the file (unique:
	// web's tags are 1.x, api's 2.x), for hand-made edits.
	tag func(app, tag string) string
}

var sharedLayouts = []sharedLayout{
	{
		name: "manifest", file: "manifests/prod/shop.yaml", content: sharedManifest,
		web: edit.Location{Layout: edit.LayoutManifest, Path: "manifests/prod", Image: "registry.example.com/shop/web"},
		api: edit.Location{Layout: edit.LayoutManifest, Path: "manifests/prod/shop.yaml", Image: "registry.example.com/shop/api"},
		tag: func(app, tag string) string { return "registry.example.com/shop/" + app + ":" + tag },
	},
	{
		name: "helm", file: "helm/prod/values.yaml", content: sharedValues,
		web: edit.Location{Layout: edit.LayoutHelm, Path: "helm/prod/values.yaml", TagPath: "web.image.tag", AnnotationsPath: "web.podAnnotations"},
		api: edit.Location{Layout: edit.LayoutHelm, Path: "helm/prod/values.yaml", TagPath: "api.image.tag", AnnotationsPath: "api.podAnnotations"},
		tag: func(_, tag string) string { return "tag: " + tag },
	},
}

// sharedFixture is an environment repo where web and api share a file, a
// service on it, and the commits of a history both apps wrote into it.
type sharedFixture struct {
	layout  sharedLayout
	bare    string
	svc     *gitops.Service
	shipbot map[string]bool // commits shipbot made
	c       map[string]string

	mu  sync.Mutex
	now time.Time
}

func (f *sharedFixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *sharedFixture) tick() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(time.Minute)
}

func newSharedFixture(t *testing.T, l sharedLayout) *sharedFixture {
	t.Helper()
	f := &sharedFixture{layout: l, bare: gittest.InitBare(t), shipbot: map[string]bool{}, c: map[string]string{},
		now: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)}
	f.c["bootstrap"] = gittest.Seed(t, f.bare, map[string]string{"README.md": "env\n", l.file: l.content}, "bootstrap")
	url := gittest.Serve(t, filepath.Dir(f.bare)) + "/env.git"
	r, err := repo.Open(context.Background(), repo.Options{URL: url, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	target := func(app string, loc edit.Location) map[string]gitops.Target {
		return map[string]gitops.Target{"prod": {App: app, Env: "prod", Location: loc}}
	}
	f.svc, err = gitops.NewService(gitops.ServiceOptions{
		Catalog: &gitops.Catalog{
			Envs: []gitops.Environment{{Name: "prod"}},
			Apps: map[string]map[string]gitops.Target{"web": target("web", l.web), "api": target("api", l.api)},
		},
		Repo: r,
		Authorizer: &FakeAuthorizer{AuthorizeFunc: func(gitops.AuthzQuery) gitops.Decision {
			return gitops.Decision{Allowed: true, Rule: "p, *"}
		}},
		Justifier: FakeJustifier{}, Directory: directory{},
		Committer: gitops.Person{Name: "shipbot", Email: "shipbot@example.com"},
		Now:       f.clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// hand commits an edit of the shared file by hand: each pair replaces one
// app's tag (app, from, to).
func (f *sharedFixture) hand(t *testing.T, name string, edits ...[3]string) {
	t.Helper()
	content := gittest.Git(t, f.bare, "show", "main:"+f.layout.file) + "\n"
	for _, e := range edits {
		old, repl := f.layout.tag(e[0], e[1]), f.layout.tag(e[0], e[2])
		if strings.Count(content, old) != 1 {
			t.Fatalf("%s: %q is not once in\n%s", name, old, content)
		}
		content = strings.Replace(content, old, repl, 1)
	}
	f.c[name] = gittest.Seed(t, f.bare, map[string]string{f.layout.file: content}, name+" by hand")
}

// ship makes shipbot plan and commit req.
func (f *sharedFixture) ship(t *testing.T, name string, req gitops.Request) *gitops.Plan {
	t.Helper()
	f.tick()
	ctx := context.Background()
	req.ID, req.Env, req.User = gitops.NewRequestID("alice", name), "prod", "alice"
	req.Why = "OPS-" + name
	resp := f.svc.Handle(ctx, req)
	if resp.Outcome != gitops.OutcomeConfirm {
		t.Fatalf("%s: %s: %s", name, resp.Outcome, resp.Text)
	}
	done := f.svc.Confirm(ctx, resp.Plan)
	if done.Outcome != gitops.OutcomeCommitted {
		t.Fatalf("%s: %s: %s", name, done.Outcome, done.Text)
	}
	f.c[name] = done.Commit
	f.shipbot[done.Commit] = true
	return resp.Plan
}

// write gives the repo the history both apps wrote:
//
//	bootstrap  web 1.0.0, api 2.0.0                   (hand)
//	web1       web 1.0.0 -> 1.1.0                     (hand)
//	api1       api 2.0.0 -> 2.1.0                     (hand)
//	apiRB      api rolled back 2.1.0 -> 2.0.0         (shipbot)
//	web2       web 1.1.0 -> 1.2.0                     (hand)
//	apiRS      api restarted                          (shipbot)
//	webRB      web rolled back 1.2.0 -> 1.1.0         (shipbot)
//	both       web 1.1.0 -> 1.3.0, api 2.0.0 -> 2.2.0 (hand, one commit)
//	apiRS2     api restarted again                    (shipbot)
//	apiRB2     api rolled back 2.2.0 -> 2.0.0         (shipbot)
func (f *sharedFixture) write(t *testing.T) {
	t.Helper()
	rb := func(app string) gitops.Request { return gitops.Request{Action: gitops.ActionRollback, App: app} }
	rs := func(app string) gitops.Request { return gitops.Request{Action: gitops.ActionRestart, App: app} }
	f.hand(t, "web1", [3]string{"web", "1.0.0", "1.1.0"})
	f.hand(t, "api1", [3]string{"api", "2.0.0", "2.1.0"})
	if p := f.ship(t, "apiRB", rb("api")); p.From != "2.1.0" || p.To != "2.0.0" {
		t.Fatalf("api's rollback: %s -> %s", p.From, p.To)
	}
	f.hand(t, "web2", [3]string{"web", "1.1.0", "1.2.0"})
	f.ship(t, "apiRS", rs("api"))
	if p := f.ship(t, "webRB", rb("web")); p.From != "1.2.0" || p.To != "1.1.0" {
		t.Fatalf("web's rollback: %s -> %s", p.From, p.To)
	}
	f.hand(t, "both", [3]string{"web", "1.1.0", "1.3.0"}, [3]string{"api", "2.0.0", "2.2.0"})
	f.ship(t, "apiRS2", rs("api"))
	if p := f.ship(t, "apiRB2", rb("api")); p.From != "2.2.0" || p.To != "2.0.0" {
		t.Fatalf("api's second rollback: %s -> %s", p.From, p.To)
	}
}

// Each app's own changes, newest first.
var sharedHistory = map[string][]string{
	"web": {"both", "webRB", "web2", "web1", "bootstrap"},
	"api": {"apiRB2", "apiRS2", "both", "apiRS", "apiRB", "api1", "bootstrap"},
}

var shortHash = regexp.MustCompile(`\b[0-9a-f]{10}\b`)

// names maps the short commit ids in a reply back to the fixture's names.
func (f *sharedFixture) names(text string) []string {
	var out []string
	for _, h := range shortHash.FindAllString(text, -1) {
		name := h
		for n, c := range f.c {
			if strings.HasPrefix(c, h) {
				name = n
			}
		}
		out = append(out, name)
	}
	return out
}

func TestSharedFileHistoryIsPerApp(t *testing.T) {
	for _, l := range sharedLayouts {
		t.Run(l.name, func(t *testing.T) {
			f := newSharedFixture(t, l)
			f.write(t)
			ctx := context.Background()
			for app, want := range sharedHistory {
				resp := f.svc.Handle(ctx, gitops.Request{ID: "shp-h-" + app, Action: gitops.ActionHistory, App: app, Env: "prod", User: "alice", Limit: 50})
				if resp.Outcome != gitops.OutcomeAnswered {
					t.Fatalf("history %s: %s", app, resp.Text)
				}
				if got := f.names(resp.Text); !slices.Equal(got, want) {
					t.Errorf("history of %s = %v, want %v\n%s", app, got, want, resp.Text)
				}
			}
			// The restart annotation is a field of its own: api's restarts
			// read as restarts of api, at api's tag.
			resp := f.svc.Handle(ctx, gitops.Request{ID: "shp-h-api", Action: gitops.ActionHistory, App: "api", Env: "prod", User: "alice", Limit: 2})
			if lines := strings.Split(strings.TrimSpace(resp.Text), "\n"); len(lines) != 3 || !strings.Contains(lines[1], "rollback 2.2.0 -> 2.0.0") || !strings.Contains(lines[2], "restart  2.2.0") {
				t.Errorf("api's last two changes:\n%s", resp.Text)
			}
		})
	}
}

func TestSharedFileStatusShowsOwnLastChange(t *testing.T) {
	for _, l := range sharedLayouts {
		t.Run(l.name, func(t *testing.T) {
			f := newSharedFixture(t, l)
			f.write(t)
			for app, last := range map[string]string{"web": "both", "api": "apiRB2"} {
				resp := f.svc.Handle(context.Background(), gitops.Request{ID: "shp-s-" + app, Action: gitops.ActionStatus, App: app, User: "alice"})
				if got := f.names(resp.Text); !slices.Equal(got, []string{last}) {
					t.Errorf("status of %s names %v, want its own last change %s\n%s", app, got, last, resp.Text)
				}
			}
			// web's last change is the hand-made 1.3.0, not api's rollback
			// after it, and web was not restarted.
			resp := f.svc.Handle(context.Background(), gitops.Request{ID: "shp-s-web2", Action: gitops.ActionStatus, App: "web", User: "alice"})
			if !strings.Contains(resp.Text, "1.3.0  — last: manual 1.3.0 by ") || strings.Contains(resp.Text, "restarted") {
				t.Errorf("status of web:\n%s", resp.Text)
			}
		})
	}
}

func TestSharedFilePreviousTag(t *testing.T) {
	for _, l := range sharedLayouts {
		t.Run(l.name, func(t *testing.T) {
			f := newSharedFixture(t, l)
			f.write(t)
			ctx := context.Background()
			// web runs 1.3.0, came from 1.1.0 (its rollback from 1.2.0 is
			// skipped); api's rollbacks and restarts in between are not web's.
			if got, err := f.svc.PreviousTag(ctx, "web", "prod"); err != nil || got != "1.1.0" {
				t.Errorf("previous tag of web = %q, %v; want 1.1.0", got, err)
			}
			// Rolling web back twice walks further back: to 1.0.0, never to
			// 1.2.0 (rolled back from) nor to a tag of api.
			f.tick()
			p := f.ship(t, "webRB2", gitops.Request{Action: gitops.ActionRollback, App: "web"})
			if p.From != "1.3.0" || p.To != "1.1.0" {
				t.Fatalf("web's rollback: %s -> %s", p.From, p.To)
			}
			f.ship(t, "apiRS3", gitops.Request{Action: gitops.ActionRestart, App: "api"})
			if got, err := f.svc.PreviousTag(ctx, "web", "prod"); err != nil || got != "1.0.0" {
				t.Errorf("previous tag of web after two rollbacks = %q, %v; want 1.0.0", got, err)
			}
			// api has rolled back from every tag it ran after 2.0.0.
			if got, err := f.svc.PreviousTag(ctx, "api", "prod"); !errors.Is(err, gitops.ErrNoPrevious) {
				t.Errorf("previous tag of api = %q, %v; want none", got, err)
			}
		})
	}
}

// checker trusts exactly shipbot's commits.
func (f *sharedFixture) checker() gitops.SignatureChecker {
	return &FakeChecker{CheckFunc: func(c *object.Commit) (string, string) {
		if f.shipbot[c.Hash.String()] {
			return gitops.SignatureGood, "SHA256:shipbot"
		}
		return gitops.SignatureUnsigned, ""
	}}
}

func TestSharedFileAuditIsPerApp(t *testing.T) {
	for _, l := range sharedLayouts {
		t.Run(l.name, func(t *testing.T) {
			f := newSharedFixture(t, l)
			f.write(t)
			ctx := context.Background()
			// Each app alone, and both in one audit (one history reader).
			all, err := f.svc.Audit(ctx, gitops.AuditOptions{Checker: f.checker()})
			if err != nil {
				t.Fatal(err)
			}
			for app, want := range sharedHistory {
				recs, err := f.svc.Audit(ctx, gitops.AuditOptions{App: app, Checker: f.checker()})
				if err != nil {
					t.Fatal(err)
				}
				var inAll []gitops.AuditRecord
				for _, r := range all {
					if r.App == app {
						inAll = append(inAll, r)
					}
				}
				for _, got := range [][]gitops.AuditRecord{recs, inAll} {
					var names []string
					for _, r := range got {
						if r.Action == "pin" {
							// A rollback pins, in its own commit: its pin record
							// follows the rollback's.
							if names == nil || r.RequestID == "" || f.names(r.Commit[:10])[0] != names[len(names)-1] {
								t.Errorf("%s: a pin record without its rollback just before: %+v", app, r)
							}
							continue
						}
						names = append(names, f.names(r.Commit[:10])...)
						flags := strings.Join(r.Flags, ",")
						switch {
						case r.App != app:
							t.Errorf("audit --app %s lists %s", app, r.App)
						case f.shipbot[r.Commit] && flags != "":
							t.Errorf("%s: shipbot's signed commit %s flagged %s: %+v", app, f.names(r.Commit[:10]), flags, r)
						case !f.shipbot[r.Commit] && flags != "not-via-shipbot,signature-unsigned":
							t.Errorf("%s: hand-made commit %s flagged %s", app, f.names(r.Commit[:10]), flags)
						}
					}
					if !slices.Equal(names, want) {
						t.Errorf("audit of %s lists %v, want %v", app, names, want)
					}
				}
			}
			// The commit that changed both is in both records, each with
			// its own app's tags.
			got := map[string]string{}
			for _, r := range all {
				if r.Commit == f.c["both"] {
					got[r.App] = r.From + " -> " + r.To
				}
			}
			if got["web"] != "1.1.0 -> 1.3.0" || got["api"] != "2.0.0 -> 2.2.0" || len(got) != 2 {
				t.Errorf("the commit that changed both: %v", got)
			}
		})
	}
}

// The flag stays where the trailers say another change than the app's
// field shows, and a change of the shared file that no app's field
// explains is still audited, for every app that reads the file.
func TestSharedFileAuditFlagsWhatFieldsDoNotShow(t *testing.T) {
	for _, l := range sharedLayouts {
		t.Run(l.name, func(t *testing.T) {
			f := newSharedFixture(t, l)
			f.hand(t, "web1", [3]string{"web", "1.0.0", "1.1.0"})
			// Committed as shipbot, trailers claim web, content changes api.
			work := filepath.Join(t.TempDir(), "w")
			gittest.Git(t, "", "clone", "--quiet", f.bare, work)
			content := gittest.Git(t, work, "show", "HEAD:"+l.file) + "\n"
			content = strings.Replace(content, l.tag("api", "2.0.0"), l.tag("api", "6.6.6"), 1)
			if err := writeFile(filepath.Join(work, l.file), content); err != nil {
				t.Fatal(err)
			}
			// Its Shipbot-To is web's tag: only the content tells the lie.
			cmd := exec.Command("git", "commit", "--quiet", "-am",
				"rollback web in prod: 1.0.0 -> 1.1.0\n\nShipbot-Request: shp-liar\nShipbot-Action: rollback\nShipbot-App: web\nShipbot-Env: prod\nShipbot-From: 1.0.0\nShipbot-To: 1.1.0")
			cmd.Dir = work
			cmd.Env = append(gittest.Env(t.TempDir()), "GIT_COMMITTER_NAME=shipbot", "GIT_COMMITTER_EMAIL=shipbot@example.com")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			liar := gittest.Git(t, work, "rev-parse", "HEAD")
			// By hand, a change of the file that is neither app's field.
			if err := writeFile(filepath.Join(work, l.file), "# reviewed by ops\n"+content); err != nil {
				t.Fatal(err)
			}
			gittest.Git(t, work, "commit", "--quiet", "-am", "comment")
			comment := gittest.Git(t, work, "rev-parse", "HEAD")
			gittest.Git(t, work, "push", "--quiet", "origin", "HEAD:main")

			good := &FakeChecker{CheckFunc: func(*object.Commit) (string, string) { return gitops.SignatureGood, "k" }}
			recs, err := f.svc.Audit(context.Background(), gitops.AuditOptions{Checker: good})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, r := range recs {
				key := r.App + " " + map[string]string{liar: "liar", comment: "comment", f.c["web1"]: "web1", f.c["bootstrap"]: "bootstrap"}[r.Commit]
				got[key] = r.From + " -> " + r.To + " " + strings.Join(r.Flags, ",")
			}
			want := map[string]string{
				"api comment":   "6.6.6 -> 6.6.6 not-via-shipbot",
				"web comment":   "1.1.0 -> 1.1.0 not-via-shipbot",
				"api liar":      "2.0.0 -> 6.6.6 trailers-mismatch", // names web, changed api
				"web liar":      "1.1.0 -> 1.1.0 trailers-mismatch", // claims web, web's tag didn't change
				"web web1":      "1.0.0 -> 1.1.0 not-via-shipbot",
				"web bootstrap": " -> 1.0.0 not-via-shipbot",
				"api bootstrap": " -> 2.0.0 not-via-shipbot",
			}
			if len(got) != len(want) {
				t.Errorf("%d records, want %d: %v", len(got), len(want), got)
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s: %q, want %q", k, got[k], v)
				}
			}
			// None of these is a change of either app's field in history.
			for app, names := range map[string][]string{"web": {"web1", "bootstrap"}, "api": {liar[:10], "bootstrap"}} {
				resp := f.svc.Handle(context.Background(), gitops.Request{ID: "shp-h-" + app, Action: gitops.ActionHistory, App: app, Env: "prod", User: "alice"})
				if got := f.names(resp.Text); !slices.Equal(got, names) {
					t.Errorf("history of %s = %v, want %v", app, got, names)
				}
			}
		})
	}
}
