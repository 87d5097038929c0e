package slack

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// httpEnv is an env with an adapter behind its HTTP handler.
func httpEnv(t *testing.T, confirmTimeout time.Duration, mod ...func(*Options)) (*env, *Adapter, *httptest.Server, *countingMetrics) {
	t.Helper()
	e := newEnv(t, confirmTimeout)
	m := newCountingMetrics()
	a := e.adapter(t, append([]func(*Options){func(o *Options) { o.Metrics = m }}, mod...)...)
	srv := httptest.NewServer(a.HTTPHandler(secret))
	t.Cleanup(srv.Close)
	return e, a, srv, m
}

func slash(t *testing.T, srv *httptest.Server, user, text, trigger string) {
	t.Helper()
	if code, _ := signedPost(t, srv, PathCommands, formType, form(slashPayload(user, "COPS", text, trigger)), secret, time.Now(), nil); code != http.StatusOK {
		t.Fatalf("slash command: status %d", code)
	}
}

func clickHTTP(t *testing.T, srv *httptest.Server, user string, plan fakeMsg, action, actionTS string) {
	t.Helper()
	body := interactionForm(t, clickPayload(user, "COPS", plan.TS, action, requestIDOf(t, plan), actionTS, "trig-"+actionTS))
	if code, _ := signedPost(t, srv, PathInteractive, formType, body, secret, time.Now(), nil); code != http.StatusOK {
		t.Fatalf("click: status %d", code)
	}
}

func waitEphemeral(t *testing.T, fs *fakeSlack, user, want string) {
	t.Helper()
	waitFor(t, "ephemeral to "+user+": "+want, func() bool {
		for _, e := range fs.ephemeralsFor(user) {
			if strings.Contains(e.Shown(), want) {
				return true
			}
		}
		return false
	})
}

func TestParseErrorsAndHelpAreEphemeral(t *testing.T) {
	e, _, srv, m := httpEnv(t, time.Minute)
	slash(t, srv, "UALICE", "rollbak checkout prod", "t1")
	waitEphemeral(t, e.fs, "UALICE", "rollback")
	slash(t, srv, "UALICE", "help", "t2")
	waitEphemeral(t, e.fs, "UALICE", "shipbot commands:")
	slash(t, srv, "UALICE", "/ship help rollback", "t3")
	waitEphemeral(t, e.fs, "UALICE", "usage: rollback APP ENV")
	if e.core.handles.Load() != 0 || len(e.fs.messages()) != 0 {
		t.Fatal("parse errors and help reached the core or the channel")
	}
	if m.get(func(m *countingMetrics) int { return m.requests["invalid/rejected"] }) != 1 {
		t.Errorf("metrics: %v", m.requests)
	}
}

func TestPolicyDenialShownInPlace(t *testing.T) {
	e, _, srv, m := httpEnv(t, time.Minute)
	before := e.head(t)
	slash(t, srv, "UMALLORY", "rollback checkout prod --why "+pdLink, "t1")
	waitFor(t, "the denial", func() bool {
		for _, msg := range e.fs.messages() {
			if strings.Contains(msg.Shown(), "denied: no policy rule lets mallory rollback checkout in prod (from channel #ops)") {
				return len(msg.History) == 2 // the "working on it" message, updated
			}
		}
		return false
	})
	if e.head(t) != before {
		t.Fatal("a denied request wrote")
	}
	if m.get(func(m *countingMetrics) int { return m.denied["policy"] }) != 1 || m.get(func(m *countingMetrics) int { return m.requests["rollback/denied"] }) != 1 {
		t.Errorf("metrics: denied %v requests %v", m.denied, m.requests)
	}
}

func TestCancelButton(t *testing.T) {
	e, _, srv, m := httpEnv(t, time.Minute)
	before := e.head(t)
	slash(t, srv, "UALICE", "rollback checkout prod --why "+pdLink, "t1")
	plan := planMessageFor(t, e.fs, "COPS")
	clickHTTP(t, srv, "UBOB", plan, actionCancel, "1.1")
	waitEphemeral(t, e.fs, "UBOB", "Only <@UALICE>, who asked, can cancel request")
	clickHTTP(t, srv, "UALICE", plan, actionCancel, "1.2")
	waitFor(t, "the cancelled message", func() bool {
		return strings.Contains(messageAt(e.fs, "COPS", plan.TS).Shown(), "cancelled: alice said no; nothing was written.")
	})
	if strings.Contains(messageAt(e.fs, "COPS", plan.TS).Blocks, actionConfirm) || e.head(t) != before {
		t.Fatal("cancelled plan kept its buttons or wrote")
	}
	if m.get(func(m *countingMetrics) int { return m.denied["not_requester"] }) != 1 {
		t.Errorf("denials %v", m.denied)
	}
}

func TestPlanExpires(t *testing.T) {
	e, _, srv, m := httpEnv(t, 300*time.Millisecond)
	before := e.head(t)
	slash(t, srv, "UALICE", "rollback checkout prod --why "+pdLink, "t1")
	plan := planMessageFor(t, e.fs, "COPS")
	waitFor(t, "the expiry", func() bool {
		return strings.Contains(messageAt(e.fs, "COPS", plan.TS).Shown(), "cancelled: no answer within 300ms")
	})
	clickHTTP(t, srv, "UALICE", plan, actionConfirm, "2.1")
	waitEphemeral(t, e.fs, "UALICE", "is no longer waiting for an answer")
	if e.head(t) != before || e.core.confirms.Load() != 0 {
		t.Fatal("an expired plan was confirmed")
	}
	if m.get(func(m *countingMetrics) int { return m.requests["rollback/expired"] }) != 1 {
		t.Errorf("requests %v", m.requests)
	}
}

func TestTooManyPending(t *testing.T) {
	e, _, srv, m := httpEnv(t, time.Minute, func(o *Options) { o.MaxPendingPerUser = 1 })
	slash(t, srv, "UALICE", "rollback checkout prod --why "+pdLink, "t1")
	planMessageFor(t, e.fs, "COPS")
	slash(t, srv, "UALICE", "rollback checkout prod --why "+pdLink, "t2")
	waitEphemeral(t, e.fs, "UALICE", "you have 1 plans waiting for your answer")
	if e.core.handles.Load() != 1 || m.get(func(m *countingMetrics) int { return m.denied["busy"] }) != 1 {
		t.Fatalf("handles %d, denied %v", e.core.handles.Load(), m.denied)
	}
}

// TestShutdownFinishesWork: SIGTERM while a confirmed change is being
// written lets it land and updates its message; plans still waiting are
// cancelled with a message; new deliveries get 503.
func TestShutdownFinishesWork(t *testing.T) {
	e, a, srv, m := httpEnv(t, time.Minute)
	before := e.head(t)
	e.core.confirmGate = make(chan struct{})

	slash(t, srv, "UALICE", "rollback checkout prod --why "+pdLink, "t1")
	first := planMessageFor(t, e.fs, "COPS")
	e.fs.addChannel("CDEV", "dev", false)
	if code, _ := signedPost(t, srv, PathCommands, formType, form(slashPayload("UBOB", "CDEV", "rollback checkout prod --why "+pdLink, "t2")), secret, time.Now(), nil); code != 200 {
		t.Fatal(code)
	}
	second := planMessageFor(t, e.fs, "CDEV")

	clickHTTP(t, srv, "UALICE", first, actionConfirm, "3.1")
	waitFor(t, "the confirm to reach the core", func() bool { return e.core.confirms.Load() == 1 })

	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		stopped <- a.Shutdown(ctx)
	}()
	waitFor(t, "shutdown to refuse new work", func() bool { return !a.Accepting() })
	if code, _ := signedPost(t, srv, PathCommands, formType, form(slashPayload("UALICE", "COPS", "status checkout", "t3")), secret, time.Now(), nil); code != http.StatusServiceUnavailable {
		t.Errorf("during shutdown: status %d, want 503", code)
	}
	select {
	case err := <-stopped:
		t.Fatalf("Shutdown returned (%v) while a confirmed change was being written", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(e.core.confirmGate)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if e.commitsSince(t, before) != 1 {
		t.Fatal("the in-flight change did not land")
	}
	if !strings.Contains(messageAt(e.fs, "COPS", first.TS).Shown(), ":white_check_mark:") {
		t.Error("the in-flight change's message was not updated")
	}
	if !strings.Contains(messageAt(e.fs, "CDEV", second.TS).Shown(), "cancelled: shipbot is shutting down") {
		t.Errorf("the waiting plan was not cancelled:\n%s", messageAt(e.fs, "CDEV", second.TS).Shown())
	}
	if m.get(func(m *countingMetrics) int { return m.committed }) != 1 {
		t.Error("time to commit not recorded")
	}
}

func TestShutdownDeadline(t *testing.T) {
	e, a, srv, _ := httpEnv(t, time.Minute)
	e.core.confirmGate = make(chan struct{})
	defer close(e.core.confirmGate)
	slash(t, srv, "UALICE", "rollback checkout prod --why "+pdLink, "t1")
	plan := planMessageFor(t, e.fs, "COPS")
	clickHTTP(t, srv, "UALICE", plan, actionConfirm, "4.1")
	waitFor(t, "the confirm to reach the core", func() bool { return e.core.confirms.Load() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := a.Shutdown(ctx); err == nil {
		t.Fatal("Shutdown should report work it had to abandon")
	}
}
