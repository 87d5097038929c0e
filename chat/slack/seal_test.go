package slack

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/gitops"
)

// sealingCore is a countingCore whose plans any replica can confirm.
type sealingCore struct {
	*countingCore
	Sealer
}

// sealingEnv is an env whose core has a confirmation key, behind two
// adapters: the replica that shows plans and another one (or the same
// after a restart) that holds no plan in memory.
func sealingEnv(t *testing.T) (e *env, core *sealingCore, shows, other *httptest.Server) {
	t.Helper()
	e = newEnv(t, time.Minute)
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(e.logs.String())
		}
	})
	o := e.opts
	o.ConfirmKey = []byte(strings.Repeat("s", 32))
	svc, err := gitops.NewService(o)
	if err != nil {
		t.Fatal(err)
	}
	core = &sealingCore{countingCore: &countingCore{Core: svc}, Sealer: svc}
	for _, srv := range []**httptest.Server{&shows, &other} {
		a := e.adapter(t, func(o *Options) { o.Core = core })
		*srv = httptest.NewServer(a.HTTPHandler(secret))
		t.Cleanup((*srv).Close)
	}
	return e, core, shows, other
}

// tokenOf is the value of a plan message's Confirm button.
func tokenOf(t *testing.T, m fakeMsg) string {
	t.Helper()
	i := strings.Index(m.Blocks, `"value":"v1.`)
	if i < 0 {
		t.Fatalf("no confirmation token in %s", m.Blocks)
	}
	rest := m.Blocks[i+len(`"value":"`):]
	return rest[:strings.IndexByte(rest, '"')]
}

func clickValue(t *testing.T, srv *httptest.Server, user string, plan fakeMsg, action, value, actionTS string) {
	t.Helper()
	body := interactionForm(t, clickPayload(user, "COPS", plan.TS, action, value, actionTS, "trig-"+actionTS))
	if code, _ := signedPost(t, srv, PathInteractive, formType, body, secret, time.Now(), nil); code != 200 {
		t.Fatalf("click: status %d", code)
	}
}

// The replica that showed the plan is gone: the Confirm reaches another,
// which re-plans from the button's token and writes the change once.
func TestConfirmOnAnotherReplica(t *testing.T) {
	e, core, shows, other := sealingEnv(t)
	before := e.head(t)
	slash(t, shows, "UALICE", "rollback checkout prod --why "+pdLink, "t1")
	plan := planMessageFor(t, e.fs, "COPS")
	token := tokenOf(t, plan)

	clickValue(t, other, "UBOB", plan, actionConfirm, token, "1.1")
	waitEphemeral(t, e.fs, "UBOB", "Only <@UALICE>, who asked, can confirm request")
	clickValue(t, other, "UALICE", plan, actionConfirm, token, "1.2")
	waitFor(t, "the commit reported in the plan's message", func() bool {
		return strings.Contains(messageAt(e.fs, "COPS", plan.TS).Shown(), "done: rollback checkout in prod")
	})
	if e.commitsSince(t, before) != 1 {
		t.Fatalf("%d commits, want 1", e.commitsSince(t, before))
	}
	commit := e.head(t)

	// The replica that showed the plan still holds it: its Confirm finds
	// the request landed, and writes nothing more.
	clickValue(t, shows, "UALICE", plan, actionConfirm, token, "1.3")
	waitFor(t, "the second confirm answered", func() bool { return core.confirms.Load() == 2 })
	waitFor(t, "the landed commit in the reply", func() bool {
		return strings.Contains(messageAt(e.fs, "COPS", plan.TS).Shown(), commit[:7])
	})
	if e.commitsSince(t, before) != 1 {
		t.Fatalf("%d commits after the second confirm, want 1", e.commitsSince(t, before))
	}
}

// A forged or altered token confirms nothing; a Cancel from the token
// closes the plan's message.
func TestForgedTokenConfirmsNothing(t *testing.T) {
	e, core, shows, other := sealingEnv(t)
	before := e.head(t)
	slash(t, shows, "UALICE", "rollback checkout prod --why "+pdLink, "t1")
	plan := planMessageFor(t, e.fs, "COPS")
	token := tokenOf(t, plan)

	// Another request's id, user or diff in the payload: the signature no
	// longer matches, and the value is not a token any more.
	swap := "A"
	if token[10] == 'A' {
		swap = "B"
	}
	forged := token[:10] + swap + token[11:]
	clickValue(t, other, "UALICE", plan, actionConfirm, forged, "2.1")
	waitEphemeral(t, e.fs, "UALICE", "is no longer waiting for an answer")
	if core.confirms.Load() != 0 || e.head(t) != before {
		t.Fatal("a forged token reached Confirm or wrote")
	}

	clickValue(t, other, "UALICE", plan, actionCancel, token, "2.2")
	waitFor(t, "the cancelled message", func() bool {
		return strings.Contains(messageAt(e.fs, "COPS", plan.TS).Shown(), "cancelled by <@UALICE>; nothing was written")
	})
	if e.head(t) != before {
		t.Fatal("cancel wrote")
	}
}

// A replica that shuts down leaves the plans whose buttons carry a token
// waiting (any replica, or this one after its restart, acts on them); the
// Confirm then lands through another replica.
func TestShutdownLeavesSealedPlansWaiting(t *testing.T) {
	e, core, _, other := sealingEnv(t)
	a := e.adapter(t, func(o *Options) { o.Core = core })
	shows := httptest.NewServer(a.HTTPHandler(secret))
	t.Cleanup(shows.Close)
	before := e.head(t)
	slash(t, shows, "UALICE", "rollback checkout prod --why "+pdLink, "t1")
	plan := planMessageFor(t, e.fs, "COPS")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if m := messageAt(e.fs, "COPS", plan.TS); !strings.Contains(m.Blocks, actionConfirm) || strings.Contains(m.Shown(), "cancelled: shipbot is shutting down") {
		t.Fatalf("shutdown cancelled a plan any replica can confirm:\n%s", m.Shown())
	}
	clickValue(t, other, "UALICE", plan, actionConfirm, tokenOf(t, plan), "3.1")
	waitFor(t, "the commit reported in the plan's message", func() bool {
		return strings.Contains(messageAt(e.fs, "COPS", plan.TS).Shown(), "done: rollback checkout in prod")
	})
	if e.commitsSince(t, before) != 1 {
		t.Fatalf("%d commits, want 1", e.commitsSince(t, before))
	}
}
