package argo

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestGetRefreshParam(t *testing.T) {
	for _, refresh := range []string{"", RefreshNormal, RefreshHard} {
		t.Run("refresh="+refresh, func(t *testing.T) {
			f := newFake(t, map[string]http.HandlerFunc{
				"GET /api/v1/applications/checkout-prod": func(w http.ResponseWriter, r *http.Request) {
					writeJSON(w, testdata(t, "checkout-prod-outofsync.json"))
				},
			})
			app, err := f.client(t).Get(context.Background(), "checkout-prod", refresh)
			if err != nil {
				t.Fatal(err)
			}
			reqs := f.requests("GET", "/api/v1/applications/checkout-prod")
			if len(reqs) != 1 {
				t.Fatalf("got %d requests, want 1", len(reqs))
			}
			if reqs[0].Refresh != refresh {
				t.Errorf("refresh query = %q, want %q (raw query %q)", reqs[0].Refresh, refresh, reqs[0].Query)
			}
			if refresh == "" && reqs[0].Query != "" {
				t.Errorf("query = %q, want none", reqs[0].Query)
			}
			if app.Metadata.Name != "checkout-prod" || app.Status.Sync.Status != "OutOfSync" || app.Status.Sync.Revision != newRev {
				t.Errorf("decoded %+v", app.Status.Sync)
			}
		})
	}
}

func TestGetRejectsUnknownRefresh(t *testing.T) {
	f := newFake(t, nil)
	if _, err := f.client(t).Get(context.Background(), "checkout-prod", "soft"); err == nil {
		t.Fatal("Get with refresh=soft: no error")
	}
	if n := len(f.requests("", "")); n != 0 {
		t.Errorf("%d requests sent, want none", n)
	}
}

// listAuth makes a client with o against f and returns the Authorization
// header of its List call.
func listAuth(t *testing.T, f *fakeArgo, o ClientOptions) string {
	t.Helper()
	o.Server = f.URL
	c, err := NewClient(o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.List(context.Background()); err != nil {
		t.Fatal(err)
	}
	reqs := f.requests("GET", "/api/v1/applications")
	return reqs[len(reqs)-1].Auth
}

func newListFake(t *testing.T) *fakeArgo {
	return newFake(t, map[string]http.HandlerFunc{
		"GET /api/v1/applications": func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, testdata(t, "applications.json"))
		},
	})
}

func TestBearerTokenGiven(t *testing.T) {
	// With the newline an environment variable may hold.
	if got := listAuth(t, newListFake(t), ClientOptions{Token: testToken + "\n"}); got != "Bearer "+testToken {
		t.Errorf("Authorization = %q, want the trimmed token", got)
	}
}

func TestBearerTokenFromFile(t *testing.T) {
	f := newListFake(t)
	tokenFile := writeToken(t, "\n\t "+testToken+" \r\n")
	if got := listAuth(t, f, ClientOptions{TokenFile: tokenFile}); got != "Bearer "+testToken {
		t.Errorf("Authorization = %q, want the trimmed token", got)
	}
	c, err := NewClient(ClientOptions{Server: f.URL, TokenFile: tokenFile})
	if err != nil {
		t.Fatal(err)
	}

	// A rotated secret: the next call sends the new token.
	f.mu.Lock()
	f.token = "rotated-token"
	f.mu.Unlock()
	if err := os.WriteFile(tokenFile, []byte("rotated-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(tokenFile, later, later); err != nil {
		t.Fatal(err)
	}
	if _, err := c.List(context.Background()); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
	reqs := f.requests("GET", "/api/v1/applications")
	if got := reqs[len(reqs)-1].Auth; got != "Bearer rotated-token" {
		t.Errorf("after rotation Authorization = %q", got)
	}
}

func TestNewClientChecksOptions(t *testing.T) {
	token := writeToken(t, testToken)
	empty := writeToken(t, " \n")
	for _, tc := range []struct {
		name string
		o    ClientOptions
		want string
	}{
		{"no server", ClientOptions{TokenFile: token}, "no server URL"},
		{"no scheme", ClientOptions{Server: "argocd.example.com", TokenFile: token}, "want https://"},
		{"ftp", ClientOptions{Server: "ftp://argocd.example.com", TokenFile: token}, "want https://"},
		{"credentials in URL", ClientOptions{Server: "https://admin:pw@argocd.example.com", TokenFile: token}, "no credentials"},
		{"no token", ClientOptions{Server: "https://argocd.example.com"}, "no token: set a token file"},
		{"blank token", ClientOptions{Server: "https://argocd.example.com", Token: " \n"}, "no token: set a token file"},
		{"token both ways", ClientOptions{Server: "https://argocd.example.com", Token: "t", TokenFile: "f"}, "a token file and a token: set one"},
		{"token on two lines", ClientOptions{Server: "https://argocd.example.com", Token: "a\nb"}, "spans several lines"},
		{"missing token file", ClientOptions{Server: "https://argocd.example.com", TokenFile: filepath.Join(t.TempDir(), "nope")}, "token file"},
		{"empty token", ClientOptions{Server: "https://argocd.example.com", TokenFile: empty}, "is empty"},
		{"missing CA", ClientOptions{Server: "https://argocd.example.com", TokenFile: token, CAFile: filepath.Join(t.TempDir(), "ca.pem")}, "CA file"},
		{"CA without PEM", ClientOptions{Server: "https://argocd.example.com", TokenFile: token, CAFile: token}, "no PEM certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewClient(tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewClient: %v, want an error containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), testToken) || strings.Contains(err.Error(), "pw@") {
				t.Errorf("error shows a secret: %v", err)
			}
		})
	}
}

func TestSyncBody(t *testing.T) {
	f := newFake(t, map[string]http.HandlerFunc{
		"POST /api/v1/applications/{name}/sync": func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, testdata(t, "payments-prod-sync-response.json"))
		},
	})
	c := f.client(t)
	app, err := c.Sync(context.Background(), "payments-prod", newRev)
	if err != nil {
		t.Fatal(err)
	}
	if app.Metadata.Name != "payments-prod" {
		t.Errorf("answer decoded as %q", app.Metadata.Name)
	}
	if _, err := c.SyncSource(context.Background(), "payments/payments-staging", 1, newRev); err != nil {
		t.Fatal(err)
	}
	reqs := f.requests("POST", "")
	if len(reqs) != 2 {
		t.Fatalf("%d POSTs, want 2", len(reqs))
	}
	for _, r := range reqs {
		if r.ContentType != "application/json" {
			t.Errorf("%s: Content-Type %q, want application/json (Argo CD refuses others)", r.Path, r.ContentType)
		}
		if r.Auth != "Bearer "+testToken {
			t.Errorf("%s: no bearer token", r.Path)
		}
	}
	for i, want := range []struct {
		path string
		body map[string]any
	}{
		{"/api/v1/applications/payments-prod/sync", map[string]any{"revision": newRev}},
		{"/api/v1/applications/payments-staging/sync", map[string]any{
			"revisions": []any{newRev}, "sourcePositions": []any{2.0}, "appNamespace": "payments",
		}},
	} {
		if reqs[i].Path != want.path {
			t.Errorf("POST %d path %s, want %s", i, reqs[i].Path, want.path)
		}
		var got map[string]any
		if err := json.Unmarshal(reqs[i].Body, &got); err != nil {
			t.Fatalf("body %q: %v", reqs[i].Body, err)
		}
		if d := cmp.Diff(want.body, got); d != "" {
			t.Errorf("POST %s body (-want +got):\n%s", want.path, d)
		}
	}
}

func TestDecodeV2AndV3Shapes(t *testing.T) {
	var v2, v3 Application
	for name, into := range map[string]*Application{"checkout-prod-healthy.json": &v2, "checkout-prod-v3-healthy.json": &v3} {
		if err := json.Unmarshal(testdata(t, name), into); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	for name, app := range map[string]*Application{"v2": &v2, "v3": &v3} {
		st, v := assess(app, newRev, func(rev string) bool { return sameRevision(rev, newRev) }, -1)
		if v != healthy {
			t.Errorf("%s: verdict %v (%+v), want healthy", name, v, st)
		}
		if !app.AutomatedSync() {
			t.Errorf("%s: automated sync not seen", name)
		}
		if got := app.Spec.Source.Path; got != "apps/checkout/overlays/prod" {
			t.Errorf("%s: path %q", name, got)
		}
		if len(app.Status.Resources) != 3 || app.Status.Resources[1].Health == nil || app.Status.Resources[1].Health.Status != HealthHealthy {
			t.Errorf("%s: resources %+v", name, app.Status.Resources)
		}
		op := app.Status.OperationState
		if op.SyncResult.Revision != newRev || op.Operation.Sync.Revision != newRev || op.FinishedAt == nil {
			t.Errorf("%s: operation state %+v", name, op)
		}
	}

	var off Application
	if err := json.Unmarshal(testdata(t, "checkout-prod-autosync-disabled.json"), &off); err != nil {
		t.Fatal(err)
	}
	if off.AutomatedSync() {
		t.Error("automated.enabled: false read as automated sync")
	}
}

func TestListDecodes(t *testing.T) {
	f := newFake(t, map[string]http.HandlerFunc{
		"GET /api/v1/applications": func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, testdata(t, "applications.json"))
		},
	})
	apps, err := f.client(t).List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range apps {
		names = append(names, refOf(&a))
	}
	want := []string{
		"argocd/checkout-dev", "argocd/checkout-staging", "argocd/checkout-prod", "argocd/checkout-prod-pinned",
		"argocd/checkout-prod-mirror", "argocd/payments-dev", "argocd/payments-prod", "argocd/payments-staging",
		"argocd/search-prod-eu", "search-apps/search-prod-us", "argocd/search-dev", "argocd/ledger-prod",
	}
	if d := cmp.Diff(want, names); d != "" {
		t.Errorf("apps (-want +got):\n%s", d)
	}
	ms := apps[7]
	if !ms.MultiSource() || len(ms.SourceList()) != 2 || ms.Spec.Sources[1].Ref != "values" || ms.SyncedRevision(1) != newRev {
		t.Errorf("multi-source app decoded as %+v", ms.Spec)
	}
}

func TestAPIErrors(t *testing.T) {
	for _, tc := range []struct {
		name      string
		handler   http.HandlerFunc
		is        error
		temporary bool
		msg       string
	}{
		{"permission denied", func(w http.ResponseWriter, r *http.Request) {
			grpcError(w, http.StatusForbidden, 7, "permission denied")
		}, ErrPermissionDenied, false, "403 permission denied"},
		{"not found", func(w http.ResponseWriter, r *http.Request) {
			grpcError(w, http.StatusNotFound, 5, `applications.argoproj.io "nope" not found`)
		}, ErrNotFound, false, "not found"},
		{"operation in progress", func(w http.ResponseWriter, r *http.Request) {
			grpcError(w, http.StatusBadRequest, 9, "another operation is already in progress")
		}, ErrOperationInProgress, true, "another operation"},
		{"proxy error page", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			fmt.Fprint(w, "<html><body><h1>502 Bad Gateway</h1>"+strings.Repeat("x", 1000)+"</body></html>")
		}, nil, true, "502 <html>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, map[string]http.HandlerFunc{"POST /api/v1/applications/{name}/sync": tc.handler})
			_, err := f.client(t).Sync(context.Background(), "checkout-prod", newRev)
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("error %v is no *APIError", err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.is)
			}
			if ae.Temporary() != tc.temporary {
				t.Errorf("Temporary() = %v, want %v", ae.Temporary(), tc.temporary)
			}
			if !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), "POST /api/v1/applications/checkout-prod/sync") {
				t.Errorf("error %q: want method, path and %q", err, tc.msg)
			}
			if len(err.Error()) > 500 {
				t.Errorf("error is %d bytes long", len(err.Error()))
			}
		})
	}
}

// TestTokenNeverInErrors makes the server (or a proxy in front of it)
// echo the Authorization header everywhere it can.
func TestTokenNeverInErrors(t *testing.T) {
	echo := func(status int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			grpcError(w, status, 2, "bad request from "+r.Header.Get("Authorization"))
		}
	}
	f := newFake(t, map[string]http.HandlerFunc{
		"GET /api/v1/applications/{name}": echo(http.StatusInternalServerError),
		"GET /api/v1/applications": func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "not json %s", r.Header.Get("Authorization"))
		},
		"POST /api/v1/applications/{name}/sync": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusBadGateway)
			fmt.Fprintf(w, "%s upstream said: Authorization: %s", strings.Repeat("p", 250), r.Header.Get("Authorization"))
		},
		"GET /api/v1/stream/applications": func(w http.ResponseWriter, r *http.Request) {
			streamLines(w, fmt.Appendf(nil, `{"error":{"grpc_code":7,"http_code":403,"message":"denied for %s","http_status":"Forbidden"}}`+"\n", r.Header.Get("Authorization")))
		},
	})
	c := f.client(t)
	ctx := context.Background()
	var errs []error
	_, err := c.Get(ctx, "checkout-prod", RefreshNormal)
	errs = append(errs, err)
	_, err = c.List(ctx)
	errs = append(errs, err)
	_, err = c.Sync(ctx, "checkout-prod", newRev)
	errs = append(errs, err)
	s, err := c.Watch(ctx, "checkout-prod")
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Next()
	s.Close()
	errs = append(errs, err)

	// A wrong token, and a server that is gone.
	bad := f.client(t, func(o *ClientOptions) { o.TokenFile = writeToken(t, "wrong-"+testToken) })
	_, err = bad.Get(ctx, "checkout-prod", "")
	if !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("wrong token: %v, want ErrUnauthenticated", err)
	}
	errs = append(errs, err)
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	_, err = f.client(t, func(o *ClientOptions) { o.Server = gone.URL }).Get(ctx, "checkout-prod", "")
	errs = append(errs, err)

	for i, err := range errs {
		if err == nil {
			t.Errorf("call %d: no error", i)
			continue
		}
		for _, secret := range []string{testToken, testToken[:40], testToken[len(testToken)-20:]} {
			if strings.Contains(err.Error(), secret) || strings.Contains(fmt.Sprintf("%+v %#v", err, err), secret) {
				t.Errorf("call %d: error shows the token: %v", i, err)
			}
		}
	}
	if dump := fmt.Sprintf("%+v %#v", *c, c); strings.Contains(dump, testToken) {
		t.Errorf("printing the client shows the token: %s", dump)
	}
}

func TestTLSOptions(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, []byte(`{"metadata":{"resourceVersion":"1"},"items":[]}`))
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
	srv.StartTLS()
	defer srv.Close()
	token := writeToken(t, testToken)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		o      ClientOptions
		wantOK bool
	}{
		{"system roots only", ClientOptions{}, false},
		{"CA file", ClientOptions{CAFile: ca}, true},
		{"insecure", ClientOptions{InsecureSkipVerify: true}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			o.Server, o.TokenFile = srv.URL, token
			c, err := NewClient(o)
			if err != nil {
				t.Fatal(err)
			}
			apps, err := c.List(context.Background())
			if tc.wantOK && (err != nil || apps == nil) {
				t.Fatalf("List: %v", err)
			}
			if !tc.wantOK && (err == nil || !strings.Contains(err.Error(), "certificate")) {
				t.Fatalf("List: %v, want a certificate error", err)
			}
		})
	}
}

func TestCallTimeout(t *testing.T) {
	f := newFake(t, map[string]http.HandlerFunc{
		// A server that never answers.
		"GET /api/v1/applications/{name}": func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
	})
	c := f.client(t, func(o *ClientOptions) { o.Timeout = 20 * time.Millisecond; o.RefreshTimeout = 30 * time.Millisecond })
	for _, refresh := range []string{"", RefreshNormal} {
		_, err := c.Get(context.Background(), "checkout-prod", refresh)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("refresh %q: %v, want a deadline error", refresh, err)
		}
		if permanent(err) {
			t.Errorf("a timeout counts as permanent")
		}
	}
}

func TestRootPathAndNamespace(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.URL.Path+"?"+r.URL.RawQuery)
		writeJSON(w, testdata(t, "checkout-prod-healthy.json"))
	}))
	defer srv.Close()
	c, err := NewClient(ClientOptions{Server: srv.URL + "/argo-cd/", TokenFile: writeToken(t, testToken)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(context.Background(), "shop/checkout-prod", RefreshHard); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ResourceTree(context.Background(), "checkout-prod"); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"/argo-cd/api/v1/applications/checkout-prod?appNamespace=shop&refresh=hard",
		"/argo-cd/api/v1/applications/checkout-prod/resource-tree?",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("requests (-want +got):\n%s", d)
	}
}
