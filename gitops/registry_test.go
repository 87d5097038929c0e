package gitops_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/shipbot/shipbot/gitops"
	"github.com/shipbot/shipbot/gitops/gittest"
)

// FakeRegistry answers with a function and records what it was asked.
type FakeRegistry struct {
	ResolveFunc func(image, tag string) (string, error)

	mu    sync.Mutex
	Asked []string // image:tag, in order
}

var _ gitops.Registry = (*FakeRegistry)(nil)

func (f *FakeRegistry) Resolve(_ context.Context, image, tag string) (string, error) {
	f.mu.Lock()
	f.Asked = append(f.Asked, image+":"+tag)
	f.mu.Unlock()
	return f.ResolveFunc(image, tag)
}

func (f *FakeRegistry) asked() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.Asked...)
}

// tags is a registry that holds these tags of registry.example.com/checkout.
func tags(known ...string) *FakeRegistry {
	return &FakeRegistry{ResolveFunc: func(image, tag string) (string, error) {
		for _, k := range known {
			if image == "registry.example.com/checkout" && tag == k {
				return digestOf(tag), nil
			}
		}
		return "", fmt.Errorf("%s:%s: %w", image, tag, gitops.ErrTagNotFound)
	}}
}

// digestOf is a made-up digest, different per tag.
func digestOf(tag string) string {
	return fmt.Sprintf("sha256:%064x", len(tag)*1000003+int(tag[len(tag)-1]))
}

func withRegistry(reg gitops.Registry, onError gitops.RegistryOnError) func(*gitops.ServiceOptions) {
	return func(o *gitops.ServiceOptions) {
		o.Registry = reg
		o.RegistryOnError = onError
	}
}

func rollbackTo(tag string) gitops.Request {
	r := rollback("alice", "checkout", "INC-7 "+tag)
	r.Tag = tag
	return r
}

func promoteToProd() gitops.Request {
	return gitops.Request{ID: gitops.NewRequestID("alice", "promote"), Action: gitops.ActionPromote, App: "checkout",
		FromEnv: "staging", Env: "prod", Why: "CHG-42", User: "alice", Channel: "#releases"}
}

func TestRollbackToATagTheRegistryDoesNotHaveIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  gitops.Request
		ref  string
	}{
		{"rollback to TAG", rollbackTo("1.3.9"), "registry.example.com/checkout:1.3.9"},
		// Without a tag, the previous one from the history (1.4.1) is checked.
		{"rollback", rollback("alice", "checkout", "INC-7"), "registry.example.com/checkout:1.4.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := tags("1.4.2", "1.4.0")
			f := newFixtureWith(t, 0, withRegistry(reg, ""))
			before := f.head(t)
			resp := f.svc.Handle(context.Background(), tc.req)
			if resp.Outcome != gitops.OutcomeRejected || resp.Plan != nil {
				t.Fatalf("outcome %s, want rejected: %s", resp.Outcome, resp.Text)
			}
			want := tc.ref + " does not exist in the registry; the tags deployed in prod were 1.4.2, 1.4.1, 1.4.0. Nothing was written."
			if !strings.Contains(resp.Text, want) {
				t.Errorf("reply = %q\nwant it to contain %q", resp.Text, want)
			}
			if got := reg.asked(); len(got) != 1 || got[0] != tc.ref {
				t.Errorf("registry asked %q, want [%s]", got, tc.ref)
			}
			if f.head(t) != before {
				t.Error("something was written")
			}
		})
	}
}

func TestPromoteShowsTheDigestAndCommits(t *testing.T) {
	reg := tags("1.5.0")
	f := newFixtureWith(t, 0, withRegistry(reg, ""))
	ctx := context.Background()
	resp := f.svc.Handle(ctx, promoteToProd())
	if resp.Outcome != gitops.OutcomeConfirm || resp.Plan == nil {
		t.Fatalf("outcome %s: %s", resp.Outcome, resp.Text)
	}
	p := resp.Plan
	if p.Digest != digestOf("1.5.0") {
		t.Errorf("Plan.Digest = %q, want %s", p.Digest, digestOf("1.5.0"))
	}
	short := digestOf("1.5.0")[:len("sha256:")+12]
	wantSummary := "promote checkout from staging to prod: 1.4.2 -> 1.5.0 (1.5.0 found in the registry: " + short + "; never deployed in prod before)"
	if p.Summary != wantSummary {
		t.Errorf("summary = %q\nwant      %q", p.Summary, wantSummary)
	}
	if !strings.HasPrefix(resp.Text, "["+p.Request.ID+"] "+wantSummary+"\n") {
		t.Errorf("the plan reply does not show what the registry said:\n%s", resp.Text)
	}

	// Someone else's commit lands before yes: the plan is recomputed on the
	// new tip, and the tag is not looked up again.
	gittest.Seed(t, f.bare, map[string]string{"README.md": "moved\n"}, "docs")
	done := f.svc.Confirm(ctx, p)
	if done.Outcome != gitops.OutcomeCommitted {
		t.Fatalf("confirm: %s: %s", done.Outcome, done.Text)
	}
	if got := gittest.Git(t, f.bare, "show", "main:apps/checkout/overlays/prod/kustomization.yaml"); got+"\n" != overlay("1.5.0") {
		t.Errorf("file after promote:\n%s", got)
	}
	if got := reg.asked(); len(got) != 1 || got[0] != "registry.example.com/checkout:1.5.0" {
		t.Errorf("registry asked %q, want the one plan-time lookup", got)
	}
}

func TestRollbackToATagDeployedBeforeIsNotMarkedNew(t *testing.T) {
	f := newFixtureWith(t, 0, withRegistry(tags("1.4.0"), ""))
	resp := f.svc.Handle(context.Background(), rollbackTo("1.4.0"))
	if resp.Outcome != gitops.OutcomeConfirm {
		t.Fatalf("outcome %s: %s", resp.Outcome, resp.Text)
	}
	// The registry's digest, then what the history says (it ran in prod):
	// not marked as never deployed, and no explicit answer needed.
	want := "rollback checkout in prod: 1.4.2 -> 1.4.0 (1.4.0 found in the registry: " + digestOf("1.4.0")[:19] + ")"
	if resp.Plan.Summary != want || resp.Plan.Confirmation != "" || len(resp.Plan.Notes) != 2 || !strings.HasPrefix(resp.Plan.Notes[0], "1.4.0 ran in prod before: deployed ") ||
		resp.Plan.Notes[1] != "pins checkout in prod to 1.4.0 until `unpin checkout prod --why TEXT`: promotions into it are refused meanwhile" {
		t.Errorf("summary = %q, want %q; notes %q; confirmation %q", resp.Plan.Summary, want, resp.Plan.Notes, resp.Plan.Confirmation)
	}
}

func TestRegistryThatCantTell(t *testing.T) {
	down := errors.New(`head registry.example.com/checkout:1.4.0: Get "https://registry.example.com/v2/": dial tcp 10.0.0.9:443: connect: connection refused`)
	broken := func() *FakeRegistry {
		return &FakeRegistry{ResolveFunc: func(string, string) (string, error) { return "", down }}
	}
	ctx := context.Background()

	t.Run("refuse", func(t *testing.T) {
		for _, onError := range []gitops.RegistryOnError{"", gitops.RegistryRefuse} {
			f := newFixtureWith(t, 0, withRegistry(broken(), onError))
			before := f.head(t)
			resp := f.svc.Handle(ctx, rollbackTo("1.4.0"))
			if resp.Outcome != gitops.OutcomeRejected || resp.Plan != nil {
				t.Fatalf("onError %q: outcome %s, want rejected: %s", onError, resp.Outcome, resp.Text)
			}
			if !strings.Contains(resp.Text, "can't check that registry.example.com/checkout:1.4.0 exists: the registry did not answer") ||
				!strings.Contains(resp.Text, "connection refused") || !strings.Contains(resp.Text, "Nothing was written") {
				t.Errorf("reply: %s", resp.Text)
			}
			if f.head(t) != before {
				t.Error("something was written")
			}
		}
	})
	t.Run("warn", func(t *testing.T) {
		f := newFixtureWith(t, 0, withRegistry(broken(), gitops.RegistryWarn))
		resp := f.svc.Handle(ctx, rollbackTo("1.4.0"))
		if resp.Outcome != gitops.OutcomeConfirm {
			t.Fatalf("outcome %s: %s", resp.Outcome, resp.Text)
		}
		want := "rollback checkout in prod: 1.4.2 -> 1.4.0 (1.4.0 could not be checked in the registry)"
		if resp.Plan.Summary != want || !strings.Contains(resp.Text, want) || resp.Plan.Digest != "" {
			t.Errorf("summary %q, digest %q; want %q and no digest; reply:\n%s", resp.Plan.Summary, resp.Plan.Digest, want, resp.Text)
		}
		if done := f.svc.Confirm(ctx, resp.Plan); done.Outcome != gitops.OutcomeCommitted {
			t.Fatalf("confirm: %s: %s", done.Outcome, done.Text)
		}
		if got := gittest.Git(t, f.bare, "show", "main:apps/checkout/overlays/prod/kustomization.yaml"); got+"\n" != overlay("1.4.0") {
			t.Errorf("file after rollback:\n%s", got)
		}
	})
}

func TestWithoutARegistryNothingIsChecked(t *testing.T) {
	f := newFixture(t, 0)
	resp := f.svc.Handle(context.Background(), rollbackTo("9.9.9"))
	// No registry to ask; the history alone says the tag never ran.
	if resp.Outcome != gitops.OutcomeConfirm || resp.Plan.Summary != "rollback checkout in prod: 1.4.2 -> 9.9.9 (9.9.9: NEVER DEPLOYED in any environment)" || resp.Plan.Digest != "" {
		t.Fatalf("%s: %s", resp.Outcome, resp.Text)
	}
}

func TestServiceOptionsRegistryOnError(t *testing.T) {
	var o gitops.ServiceOptions
	newFixtureWith(t, 0, func(fo *gitops.ServiceOptions) { o = *fo })
	o.RegistryOnError = "ignore"
	if _, err := gitops.NewService(o); err == nil || !strings.Contains(err.Error(), "use refuse or warn") {
		t.Errorf("NewService with onError ignore: err = %v", err)
	}
	o.RegistryOnError = ""
	if err := o.Validate(); err != nil || o.RegistryOnError != gitops.RegistryRefuse {
		t.Errorf("default: %q, %v; want refuse", o.RegistryOnError, err)
	}
}

// An approved proposal is merged even when the registry is down at merge
// time: its tag was checked when it was proposed, and an outage must not
// close it.
func TestProposalMergesWhileTheRegistryIsDown(t *testing.T) {
	rf := newReviewFixture(t)
	ctx := context.Background()
	reg := tags("1.5.0")
	rf.opts.Registry = reg
	rf.restart(t)
	id := rf.open(t, "alice")
	if got := reg.asked(); len(got) != 1 {
		t.Fatalf("registry asked %q at plan time, want one lookup", got)
	}
	rf.svc.Handle(ctx, review(gitops.ActionApprove, "bob", id, ""))
	reg.ResolveFunc = func(string, string) (string, error) { return "", errors.New("connection refused") }
	gittest.Seed(t, rf.bare, map[string]string{"README.md": "someone else's change\n"}, "docs")

	r := rf.svc.Handle(ctx, review(gitops.ActionApprove, "carol", id, ""))
	if r.Outcome != gitops.OutcomeCommitted {
		t.Fatalf("carol: %s: %s", r.Outcome, r.Text)
	}
	if got := gittest.Git(t, rf.bare, "show", "main:apps/checkout/overlays/prod/kustomization.yaml"); got+"\n" != overlay("1.5.0") {
		t.Errorf("merged file:\n%s", got)
	}
	if got := reg.asked(); len(got) < 2 {
		t.Errorf("registry asked %q: the merge did not check the tag again", got)
	}
}

// A tag deleted from the registry after the proposal was opened is not
// merged.
func TestProposalOfADeletedTagIsNotMerged(t *testing.T) {
	rf := newReviewFixture(t)
	ctx := context.Background()
	reg := tags("1.5.0")
	rf.opts.Registry = reg
	rf.restart(t)
	before := rf.head(t)
	id := rf.open(t, "alice")
	rf.svc.Handle(ctx, review(gitops.ActionApprove, "bob", id, ""))
	reg.ResolveFunc = tags().ResolveFunc

	r := rf.svc.Handle(ctx, review(gitops.ActionApprove, "carol", id, ""))
	if r.Outcome == gitops.OutcomeCommitted || !strings.Contains(r.Text, "registry.example.com/checkout:1.5.0 does not exist in the registry") {
		t.Fatalf("carol: %s: %s", r.Outcome, r.Text)
	}
	if rf.head(t) != before {
		t.Error("a tag the registry does not have was merged")
	}
}
