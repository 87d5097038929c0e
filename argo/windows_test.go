package argo

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shipbot/shipbot/gitops"
)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// Hold against hand-worked cases of Argo CD's CanSync rules.
func TestHold(t *testing.T) {
	deny := func(sched, dur, tz string, manual bool) SyncWindow {
		return SyncWindow{Kind: "deny", Schedule: sched, Duration: dur, TimeZone: tz, ManualSync: manual}
	}
	allow := func(sched, dur, tz string, manual bool) SyncWindow {
		return SyncWindow{Kind: "allow", Schedule: sched, Duration: dur, TimeZone: tz, ManualSync: manual}
	}
	for _, tc := range []struct {
		name    string
		windows []SyncWindow
		manual  bool
		now     string
		held    bool
		until   string // "" with held: beyond the horizon
	}{
		{"no windows", nil, false, "2026-03-02T16:30:00Z", false, ""},
		{"deny active", []SyncWindow{deny("0 16 * * *", "2h", "", false)}, false, "2026-03-02T16:30:00Z", true, "2026-03-02T18:00:00Z"},
		{"deny not yet", []SyncWindow{deny("0 16 * * *", "2h", "", false)}, false, "2026-03-02T15:59:00Z", false, ""},
		{"deny over", []SyncWindow{deny("0 16 * * *", "2h", "", false)}, false, "2026-03-02T18:00:30Z", false, ""},
		{"deny in Berlin (UTC+1 in March)", []SyncWindow{deny("0 17 * * *", "2h", "Europe/Berlin", false)}, false, "2026-03-02T16:30:00Z", true, "2026-03-02T18:00:00Z"},
		{"deny in Berlin in summer (UTC+2)", []SyncWindow{deny("0 17 * * *", "2h", "Europe/Berlin", false)}, false, "2026-07-01T15:30:00Z", true, "2026-07-01T17:00:00Z"},
		{"manual sync passes a deny with manualSync", []SyncWindow{deny("0 16 * * *", "2h", "", true)}, true, "2026-03-02T16:30:00Z", false, ""},
		{"automated sync does not", []SyncWindow{deny("0 16 * * *", "2h", "", true)}, false, "2026-03-02T16:30:00Z", true, "2026-03-02T18:00:00Z"},
		{"one deny without manualSync holds manual syncs", []SyncWindow{deny("0 16 * * *", "2h", "", true), deny("30 16 * * *", "1h", "", false)}, true, "2026-03-02T16:45:00Z", true, "2026-03-02T17:30:00Z"},
		{"overlapping denies: the later end", []SyncWindow{deny("0 16 * * *", "2h", "", false), deny("0 17 * * *", "2h", "", false)}, false, "2026-03-02T17:30:00Z", true, "2026-03-02T19:00:00Z"},
		{"outside the allow window", []SyncWindow{allow("0 6 * * 1-5", "14h", "", false)}, false, "2026-03-02T21:00:00Z", true, "2026-03-03T06:00:00Z"},
		{"outside the allow window on Friday night", []SyncWindow{allow("0 6 * * 1-5", "14h", "", false)}, false, "2026-03-06T21:00:00Z", true, "2026-03-09T06:00:00Z"},
		{"inside the allow window", []SyncWindow{allow("0 6 * * 1-5", "14h", "", false)}, false, "2026-03-02T12:00:00Z", false, ""},
		{"manual passes inactive allows with manualSync", []SyncWindow{allow("0 6 * * 1-5", "14h", "", true)}, true, "2026-03-02T21:00:00Z", false, ""},
		{"deny wins over allow", []SyncWindow{allow("0 6 * * 1-5", "14h", "", true), deny("0 16 * * *", "2h", "", false)}, true, "2026-03-02T16:30:00Z", true, "2026-03-02T18:00:00Z"},
		{"deny ending outside the allow window", []SyncWindow{allow("0 6 * * 1-5", "14h", "", false), deny("0 19 * * *", "2h", "", false)}, false, "2026-03-02T19:30:00Z", true, "2026-03-03T06:00:00Z"},
		{"monthly allow window", []SyncWindow{allow("0 2 1 * *", "3h", "", false)}, false, "2026-03-02T12:00:00Z", true, "2026-04-01T02:00:00Z"},
		{"always denied", []SyncWindow{deny("* * * * *", "1h", "", false)}, false, "2026-03-02T12:00:00Z", true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := Hold(tc.windows, tc.manual, at(tc.now))
			if err != nil {
				t.Fatal(err)
			}
			if h.Held != tc.held {
				t.Fatalf("held %v, want %v (%+v)", h.Held, tc.held, h)
			}
			var want time.Time
			if tc.until != "" {
				want = at(tc.until)
			}
			if !h.Until.Equal(want) {
				t.Errorf("until %s, want %s", h.Until, want)
			}
			if h.Held && len(h.By) == 0 {
				t.Error("held by no window")
			}
		})
	}
}

func TestHoldRejectsBadWindows(t *testing.T) {
	for _, w := range []SyncWindow{
		{Kind: "deny", Schedule: "0 16 * *", Duration: "1h"},
		{Kind: "deny", Schedule: "@daily", Duration: "1h"}, // Argo CD's parser takes no descriptors
		{Kind: "deny", Schedule: "0 16 * * *", Duration: "1d"},
	} {
		if _, err := Hold([]SyncWindow{w}, false, at("2026-03-02T16:30:00Z")); err == nil {
			t.Errorf("%s: no error", w)
		}
	}
}

// The plan's question: the application's syncwindows answer names the
// windows, the project gives their time zone.
func TestSyncHold(t *testing.T) {
	forbidden := func(w http.ResponseWriter, r *http.Request) {
		grpcError(w, http.StatusForbidden, 7, "permission denied: projects, get, payments, sub: shipbot")
	}
	for _, tc := range []struct {
		name      string
		project   http.HandlerFunc
		now       string
		until     string
		assumed   bool
		describes string
	}{
		{"project readable", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, testdata(t, "project-payments.json")) },
			"17:30", "2026-03-02T18:00:00Z", false, "an Argo CD sync window holds syncs of payments-prod until 18:00 UTC"},
		{"project forbidden: UTC assumed", forbidden,
			"17:30", "2026-03-02T19:00:00Z", true, "an Argo CD sync window holds syncs of payments-prod until 19:00 UTC (if its schedule is in UTC)"},
		// In UTC the window would not have started: Argo CD's canSync wins.
		{"Argo CD's canSync disagrees", forbidden,
			"16:30", "", true, "an Argo CD sync window holds syncs of payments-prod now (shipbot can't tell until when)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, map[string]http.HandlerFunc{
				"GET /api/v1/applications/payments-prod": getApp(t, nil, testdata(t, "payments-prod-outofsync.json")),
				"GET /api/v1/applications/payments-prod/syncwindows": func(w http.ResponseWriter, r *http.Request) {
					writeJSON(w, testdata(t, "payments-prod-syncwindows.json"))
				},
				"GET /api/v1/projects/payments": tc.project,
			})
			w, err := NewWatcher(f.client(t), WatcherOptions{})
			if err != nil {
				t.Fatal(err)
			}
			now := at("2026-03-02T" + tc.now + ":00Z")
			var until time.Time
			if tc.until != "" {
				until = at(tc.until)
			}
			h, err := w.SyncHold(context.Background(), gitops.Target{App: "payments", Env: "prod", ArgoApp: "payments-prod"}, now)
			if err != nil {
				t.Fatal(err)
			}
			if !h.Held || !h.Manual || h.App != "payments-prod" || h.ZoneAssumed != tc.assumed || !h.Until.Equal(until) {
				t.Errorf("hold %+v", h)
			}
			if got := h.Describe(now); got != tc.describes {
				t.Errorf("Describe = %q\nwant       %q", got, tc.describes)
			}
			if !tc.assumed && !cmp.Equal(h.Windows, []string{`deny "0 17 * * *" for 2h (Europe/Berlin): evening batch: no deploys`}) {
				t.Errorf("windows %q", h.Windows)
			}
		})
	}
}

// A sync refused by a window is reported as the window, with until when,
// never as a permission problem — on every spelling Argo CD has used.
func TestWatchSyncRefusedBySyncWindow(t *testing.T) {
	for _, msg := range []string{
		"cannot sync: blocked by sync window", // v2.14, v3
		"Cannot sync: Blocked by sync window", // older servers
	} {
		t.Run(msg, func(t *testing.T) {
			f := newFake(t, map[string]http.HandlerFunc{
				"GET /api/v1/applications/payments-prod": getApp(t, testdata(t, "payments-prod-outofsync.json"), testdata(t, "payments-prod-outofsync.json")),
				"POST /api/v1/applications/payments-prod/sync": func(w http.ResponseWriter, r *http.Request) {
					grpcError(w, http.StatusForbidden, 7, msg)
				},
				"GET /api/v1/applications/payments-prod/syncwindows": func(w http.ResponseWriter, r *http.Request) {
					writeJSON(w, testdata(t, "payments-prod-syncwindows.json"))
				},
				"GET /api/v1/projects/payments": func(w http.ResponseWriter, r *http.Request) {
					writeJSON(w, testdata(t, "project-payments.json"))
				},
			})
			res := watch(t, f, gitops.Target{App: "payments", Env: "prod", ArgoApp: "payments-prod"}, func(o *WatcherOptions) {
				o.SyncManual = true
				o.Now = func() time.Time { return at("2026-03-02T16:30:00Z") }
			})
			wantUserError(t, res.err, gitops.ErrSyncHeld, "payments-prod is not synced to c2a6b03: an Argo CD sync window holds syncs of payments-prod until 18:00 UTC")
			if errors.Is(res.err, ErrPermissionDenied) || strings.Contains(res.err.Error(), "needs get and sync") {
				t.Errorf("reported as a permission problem: %v", res.err)
			}
			if !errors.Is(res.err, ErrSyncWindow) {
				t.Errorf("%v does not wrap ErrSyncWindow", res.err)
			}
			var held *gitops.SyncHeldError
			if !errors.As(res.err, &held) || held.ServerMessage != msg || len(held.Hold.Windows) != 1 {
				t.Errorf("held %+v", held)
			}
			if n := len(f.requests("POST", "")); n != 1 {
				t.Errorf("%d sync POSTs", n)
			}
		})
	}
}

// An app with automated sync whose sync a window holds: Argo CD has the
// commit OutOfSync and starts nothing; the watch says why at once instead
// of timing out.
func TestWatchAutomatedSyncHeldByWindow(t *testing.T) {
	windows := `{"assignedWindows":[{"kind":"deny","schedule":"0 16 * * *","duration":"2h","manualSync":true}],` +
		`"activeWindows":[{"kind":"deny","schedule":"0 16 * * *","duration":"2h","manualSync":true}],"canSync":true}`
	f := newFake(t, map[string]http.HandlerFunc{
		"GET /api/v1/applications/checkout-prod": getApp(t, testdata(t, "checkout-prod-outofsync.json"), testdata(t, "checkout-prod-outofsync.json")),
		"GET /api/v1/applications/checkout-prod/syncwindows": func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, []byte(windows))
		},
		"GET /api/v1/projects/shop": func(w http.ResponseWriter, r *http.Request) {
			grpcError(w, http.StatusForbidden, 7, "permission denied")
		},
		"GET /api/v1/stream/applications": streamThenHold(event(t, "ADDED", testdata(t, "checkout-prod-outofsync.json"))),
	})
	res := watch(t, f, gitops.Target{App: "checkout", Env: "prod", ArgoApp: "checkout-prod"}, func(o *WatcherOptions) {
		o.Now = func() time.Time { return at("2026-03-02T16:30:00Z") }
	})
	wantUserError(t, res.err, gitops.ErrSyncHeld,
		"an Argo CD sync window holds syncs of checkout-prod until 18:00 UTC (if its schedule is in UTC); a manual sync may pass")
	if res.status.Sync != "OutOfSync" || res.status.Revision != newRev {
		t.Errorf("status %+v", res.status)
	}
}

// Within the watch's time, a hold is said in the progress and the watch
// goes on.
func TestWatchManualAppHeldBrieflyShowsIt(t *testing.T) {
	windows := `{"assignedWindows":[{"kind":"deny","schedule":"0 16 * * *","duration":"2h"}],` +
		`"activeWindows":[{"kind":"deny","schedule":"0 16 * * *","duration":"2h"}],"canSync":false}`
	f := newFake(t, map[string]http.HandlerFunc{
		"GET /api/v1/applications/payments-prod": getApp(t, testdata(t, "payments-prod-outofsync.json"), testdata(t, "payments-prod-outofsync.json")),
		"GET /api/v1/applications/payments-prod/syncwindows": func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, []byte(windows))
		},
		"GET /api/v1/stream/applications": streamThenHold(
			event(t, "ADDED", testdata(t, "payments-prod-outofsync.json")),
			event(t, "MODIFIED", testdata(t, "payments-prod-healthy.json")),
		),
	})
	res := watch(t, f, gitops.Target{App: "payments", Env: "prod", ArgoApp: "payments-prod"}, func(o *WatcherOptions) {
		o.Now = func() time.Time { return at("2026-03-02T17:59:58Z") } // 2 s before the window ends
		o.Timeout = time.Hour                                          // never reached: the app gets healthy
	})
	if res.err != nil {
		t.Fatal(res.err)
	}
	var said bool
	for _, p := range res.progress {
		said = said || strings.HasPrefix(p.Message, "an Argo CD sync window holds syncs of payments-prod until 18:00 UTC (if its schedule is in UTC); no automated sync: waiting for someone to sync it")
	}
	if !said {
		t.Errorf("progress %+v does not say the window nor that someone has to sync", res.progress)
	}
}

func TestSyncWindowErrorIsNotPermissionDenied(t *testing.T) {
	for _, tc := range []struct {
		e            APIError
		window, perm bool
	}{
		{APIError{StatusCode: 403, Code: 7, Message: "cannot sync: blocked by sync window"}, true, false},
		{APIError{StatusCode: 403, Code: 7, Message: "Cannot sync: Blocked by sync window"}, true, false},
		{APIError{StatusCode: 403, Code: 7, Message: "cannot sync: invalid sync window: cannot parse schedule '0 16 * *'"}, true, false},
		{APIError{StatusCode: 403, Code: 7, Message: "permission denied: applications, sync, payments/payments-prod, sub: shipbot"}, false, true},
	} {
		if errors.Is(&tc.e, ErrSyncWindow) != tc.window || errors.Is(&tc.e, ErrPermissionDenied) != tc.perm {
			t.Errorf("%q: window %v permission %v", tc.e.Message, errors.Is(&tc.e, ErrSyncWindow), errors.Is(&tc.e, ErrPermissionDenied))
		}
	}
}

// The project's windows decode with v3's fields (description, andOperator,
// syncOverrun), which change nothing for Hold.
func TestProjectDecodesV3WindowFields(t *testing.T) {
	f := newFake(t, map[string]http.HandlerFunc{
		"GET /api/v1/projects/payments": func(w http.ResponseWriter, r *http.Request) { writeJSON(w, testdata(t, "project-payments.json")) },
	})
	p, err := f.client(t).Project(context.Background(), "payments")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Spec.SyncWindows) != 3 || p.Spec.SyncWindows[0].TimeZone != "Europe/Berlin" || p.Spec.SyncWindows[0].Description != "evening batch: no deploys" {
		t.Errorf("windows %+v", p.Spec.SyncWindows)
	}
}

func BenchmarkHoldEveryMinuteDeny(b *testing.B) {
	ws := []SyncWindow{{Kind: "deny", Schedule: "* * * * *", Duration: "1h"}}
	now := at("2026-03-02T12:00:00Z")
	for b.Loop() {
		if h, err := Hold(ws, false, now); err != nil || !h.Held {
			b.Fatal(h, err)
		}
	}
}
