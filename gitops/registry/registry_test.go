package registry_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcr "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/shipbot/shipbot/gitops"
	"github.com/shipbot/shipbot/gitops/registry"
)

const (
	user     = "shipbot-puller"
	password = "s3cret-pull-password"
)

// serve runs an in-process OCI registry on 127.0.0.1; with auth, every
// request needs HTTP basic credentials user:password (as a registry behind
// htpasswd does).
func serve(t *testing.T, auth bool) (host string, srv *httptest.Server) {
	t.Helper()
	h := ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0)))
	if auth {
		next := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != user || p != password {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	srv = httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), srv
}

// push writes img as host/repo:tag and returns its digest.
func push(t *testing.T, host, repo, tag string, img v1.Image, opts ...remote.Option) string {
	t.Helper()
	ref, err := name.NewTag(host+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, opts...); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func randomImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func newClient(t *testing.T, o registry.Options) *registry.Client {
	t.Helper()
	c, err := registry.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestResolve(t *testing.T) {
	host, _ := serve(t, false)
	img := randomImage(t)
	want := push(t, host, "shop/checkout", "1.4.2", img)
	// A second image under another tag: the digest is the tag's, not any.
	other, err := mutate.Config(empty.Image, v1.Config{Labels: map[string]string{"release": "1.4.1"}})
	if err != nil {
		t.Fatal(err)
	}
	otherDigest := push(t, host, "shop/checkout", "1.4.1", other)
	if otherDigest == want {
		t.Fatal("test images must differ")
	}
	c := newClient(t, registry.Options{Insecure: []string{host}})
	ctx := context.Background()

	for _, tc := range []struct {
		tag, want string
	}{{"1.4.2", want}, {"1.4.1", otherDigest}} {
		got, err := c.Resolve(ctx, host+"/shop/checkout", tc.tag)
		if err != nil {
			t.Fatalf("resolve %s: %v", tc.tag, err)
		}
		if got != tc.want {
			t.Errorf("resolve %s = %s, want the pushed image's digest %s", tc.tag, got, tc.want)
		}
	}

	for _, tc := range []struct{ image, tag string }{
		{host + "/shop/checkout", "9.9.9"}, // no such tag
		{host + "/shop/nothing", "1.4.2"},  // no such repository
		{host + "/shop/checkout", "bad tag"},
	} {
		_, err := c.Resolve(ctx, tc.image, tc.tag)
		if !errors.Is(err, gitops.ErrTagNotFound) {
			t.Errorf("resolve %s:%s: err = %v, want ErrTagNotFound", tc.image, tc.tag, err)
		}
	}
}

func TestResolveRegistryDown(t *testing.T) {
	host, srv := serve(t, false)
	srv.Close()
	c := newClient(t, registry.Options{Insecure: []string{host}, Timeout: 5 * time.Second})
	_, err := c.Resolve(context.Background(), host+"/shop/checkout", "1.4.2")
	if err == nil || errors.Is(err, gitops.ErrTagNotFound) {
		t.Fatalf("registry down: err = %v, want an error other than ErrTagNotFound", err)
	}
}

func TestResolveTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	host := strings.TrimPrefix(srv.URL, "http://")
	c := newClient(t, registry.Options{Insecure: []string{host}, Timeout: 300 * time.Millisecond})
	// The test's own deadline only bounds a broken client.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err := c.Resolve(ctx, host+"/shop/checkout", "1.4.2")
	if err == nil || errors.Is(err, gitops.ErrTagNotFound) {
		t.Fatalf("hanging registry: err = %v, want a timeout error", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want it to wrap context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Resolve took %s with a 300ms timeout", d)
	}
}

func TestPlainHTTPOnlyWhenListed(t *testing.T) {
	host, _ := serve(t, false)
	push(t, host, "shop/checkout", "1.4.2", randomImage(t))
	// The library alone would speak HTTP to 127.0.0.1; the client doesn't
	// unless told.
	c := newClient(t, registry.Options{Timeout: 5 * time.Second})
	_, err := c.Resolve(context.Background(), host+"/shop/checkout", "1.4.2")
	if err == nil || errors.Is(err, gitops.ErrTagNotFound) {
		t.Fatalf("unlisted plain-HTTP registry: err = %v, want a refusal", err)
	}
	if !strings.Contains(err.Error(), "registry.insecure") {
		t.Errorf("err = %v, want it to say how to allow the registry", err)
	}
}

func TestResolveTLS(t *testing.T) {
	srv := httptest.NewTLSServer(ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "https://")
	ref, err := name.NewTag(host + "/shop/checkout:1.4.2")
	if err != nil {
		t.Fatal(err)
	}
	img := randomImage(t)
	if err := remote.Write(ref, img, remote.WithTransport(srv.Client().Transport)); err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	c := newClient(t, registry.Options{Transport: srv.Client().Transport})
	got, err := c.Resolve(context.Background(), host+"/shop/checkout", "1.4.2")
	if err != nil || got != want.String() {
		t.Fatalf("resolve over TLS = %q, %v; want %s", got, err, want)
	}
}

func dockerConfig(t *testing.T, dir, key, content string) string {
	t.Helper()
	if content == "" {
		auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
		content = fmt.Sprintf(`{"auths": {%q: {"auth": %q}}}`, key, auth)
	}
	p := filepath.Join(dir, "config.json")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBasicAuthFromDockerConfig(t *testing.T) {
	host, _ := serve(t, true)
	want := push(t, host, "shop/checkout", "1.4.2", randomImage(t), remote.WithAuth(&authn.Basic{Username: user, Password: password}))
	ctx := context.Background()
	image := host + "/shop/checkout"

	t.Run("pull secret file", func(t *testing.T) {
		// Keys as docker login writes them and as pull secrets carry them.
		for _, key := range []string{host, "http://" + host, host + "/shop"} {
			c := newClient(t, registry.Options{Insecure: []string{host}, DockerConfig: dockerConfig(t, t.TempDir(), key, "")})
			got, err := c.Resolve(ctx, image, "1.4.2")
			if err != nil || got != want {
				t.Errorf("key %q: resolve = %q, %v; want %s", key, got, err, want)
			}
		}
	})
	t.Run("legacy dockercfg", func(t *testing.T) {
		auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
		cfg := dockerConfig(t, t.TempDir(), "", fmt.Sprintf(`{%q: {"auth": %q}}`, host, auth))
		c := newClient(t, registry.Options{Insecure: []string{host}, DockerConfig: cfg})
		if got, err := c.Resolve(ctx, image, "1.4.2"); err != nil || got != want {
			t.Errorf("resolve = %q, %v; want %s", got, err, want)
		}
	})
	t.Run("DOCKER_CONFIG", func(t *testing.T) {
		dir := t.TempDir()
		dockerConfig(t, dir, host, "")
		t.Setenv("HOME", t.TempDir())
		t.Setenv("DOCKER_CONFIG", dir)
		c := newClient(t, registry.Options{Insecure: []string{host}})
		if got, err := c.Resolve(ctx, image, "1.4.2"); err != nil || got != want {
			t.Errorf("resolve = %q, %v; want %s", got, err, want)
		}
	})
	t.Run("no credentials", func(t *testing.T) {
		t.Setenv("HOME", t.TempDir())
		t.Setenv("DOCKER_CONFIG", t.TempDir())
		c := newClient(t, registry.Options{Insecure: []string{host}})
		_, err := c.Resolve(ctx, image, "1.4.2")
		if err == nil || errors.Is(err, gitops.ErrTagNotFound) {
			t.Fatalf("err = %v, want an auth error (not ErrTagNotFound)", err)
		}
	})
	t.Run("credentials of another registry", func(t *testing.T) {
		c := newClient(t, registry.Options{Insecure: []string{host}, DockerConfig: dockerConfig(t, t.TempDir(), "registry.example.com", "")})
		if _, err := c.Resolve(ctx, image, "1.4.2"); err == nil || errors.Is(err, gitops.ErrTagNotFound) {
			t.Fatalf("err = %v, want an auth error", err)
		}
	})
	t.Run("wrong password is never shown", func(t *testing.T) {
		bad := "wrong-" + password
		auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + bad))
		cfg := dockerConfig(t, t.TempDir(), "", fmt.Sprintf(`{"auths": {%q: {"auth": %q}}}`, host, auth))
		c := newClient(t, registry.Options{Insecure: []string{host}, DockerConfig: cfg})
		_, err := c.Resolve(ctx, image, "1.4.2")
		if err == nil || errors.Is(err, gitops.ErrTagNotFound) {
			t.Fatalf("err = %v, want an auth error", err)
		}
		if strings.Contains(err.Error(), bad) || strings.Contains(err.Error(), auth) {
			t.Errorf("the error shows the credentials: %v", err)
		}
	})
	t.Run("rotated secret is re-read", func(t *testing.T) {
		dir := t.TempDir()
		cfg := dockerConfig(t, dir, "registry.example.com", "")
		c := newClient(t, registry.Options{Insecure: []string{host}, DockerConfig: cfg})
		if _, err := c.Resolve(ctx, image, "1.4.2"); err == nil {
			t.Fatal("resolved without the registry's credentials")
		}
		dockerConfig(t, dir, host, "")
		if got, err := c.Resolve(ctx, image, "1.4.2"); err != nil || got != want {
			t.Errorf("after rotation: resolve = %q, %v; want %s", got, err, want)
		}
	})
}

func TestNewChecksTheDockerConfig(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"not json":  "auths: {}",
		"bad shape": `{"auths": {"r.example.com": {"auth": 42}}}`,
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := registry.New(registry.Options{DockerConfig: p}); err == nil {
			t.Errorf("%s: New accepted %q", name, content)
		}
	}
	if _, err := registry.New(registry.Options{DockerConfig: filepath.Join(dir, "missing.json")}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v, want ErrNotExist", err)
	}
	if _, err := registry.New(registry.Options{Insecure: []string{"http://127.0.0.1:5000"}}); err == nil {
		t.Error("New accepted a URL as an insecure registry")
	}
}

// BenchmarkResolve measures one lookup against the in-process registry
// (connection reuse included).
func BenchmarkResolve(b *testing.B) {
	h := ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0)))
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { n.Add(1); h.ServeHTTP(w, r) }))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	ref, _ := name.NewTag(host+"/shop/checkout:1.4.2", name.Insecure)
	img, _ := random.Image(256, 1)
	if err := remote.Write(ref, img); err != nil {
		b.Fatal(err)
	}
	c, err := registry.New(registry.Options{Insecure: []string{host}})
	if err != nil {
		b.Fatal(err)
	}
	n.Store(0)
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Resolve(context.Background(), host+"/shop/checkout", "1.4.2"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n.Load())/float64(b.N), "requests/op")
}
