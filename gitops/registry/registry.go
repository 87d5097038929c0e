// Package registry answers the core's gitops.Registry port with
// github.com/google/go-containerregistry: a HEAD of the tag's manifest
// (remote.Head, no layer is downloaded), bounded by a timeout, with the
// credentials of a docker config file.
//
// Credentials come from DockerConfig when it is set: a docker config.json,
// or the .dockerconfigjson key of a Kubernetes pull secret mounted as a file
// (the legacy .dockercfg shape, hosts at the top level, is read too); it is
// re-read on every lookup, so a rotated secret is picked up. Without it,
// authn.DefaultKeychain: ~/.docker/config.json or $DOCKER_CONFIG/config.json
// (credential helpers included), anonymous when there is none. Credentials
// are never logged nor put in an error.
//
// Plain HTTP is used only for the registries listed in Insecure: the
// library on its own speaks HTTP to localhost, loopback and private
// addresses; here any other plain-HTTP request is refused.
//
// What the dependency costs, measured on this repo at d715044 (2 shared
// cores, Go 1.26.8, go-containerregistry v0.20.2): `go list -m all` 87 -> 119
// modules (docker/cli, docker/distribution, docker-credential-helpers,
// klauspost/compress, opencontainers, logrus, estargz, tar-split, x/sync
// linked in); packages in ./cmd/shipbot 444 -> 497; stripped binary
// 23.56 MB -> 24.59 MB (+1.03 MB, +4.4 %); cold build of ./cmd/shipbot 99 ->
// 101 CPU-s (wall 111 s -> 143 s on a loaded machine), the 53 new packages
// alone about 13 CPU-s. One lookup is two requests (GET /v2/ to learn the
// auth challenge, then the HEAD; a bearer registry adds the token request):
// 0.6 ms and 56 kB against the in-process registry (BenchmarkResolve).
package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/shipbot/shipbot/gitops"
)

// Options configure a Client.
type Options struct {
	// DockerConfig is a docker config file (config.json, or a Kubernetes
	// pull secret's .dockerconfigjson); "" = authn.DefaultKeychain.
	DockerConfig string
	// Insecure lists the registries (host or host:port, as in the image
	// name) reached over plain HTTP, e.g. 127.0.0.1:5000.
	Insecure []string
	// Timeout bounds one lookup, retries included (default 10s).
	Timeout time.Duration
	// Transport carries the requests (default: remote.DefaultTransport).
	Transport http.RoundTripper
	// UserAgent is sent to the registry (default "shipbot").
	UserAgent string
}

// Validate fills defaults and checks that DockerConfig is readable.
func (o *Options) Validate() error {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Transport == nil {
		o.Transport = remote.DefaultTransport
	}
	if o.UserAgent == "" {
		o.UserAgent = "shipbot"
	}
	for _, h := range o.Insecure {
		if h == "" || strings.ContainsAny(h, "/ ") {
			return fmt.Errorf("registry: insecure %q: want host or host:port", h)
		}
	}
	if o.DockerConfig != "" {
		if _, err := readDockerConfig(o.DockerConfig); err != nil {
			return fmt.Errorf("registry: %w", err)
		}
	}
	return nil
}

// Client resolves tags against the registries images live in.
type Client struct {
	o        Options
	insecure map[string]bool
	keychain authn.Keychain
	rt       http.RoundTripper
}

var _ gitops.Registry = (*Client)(nil)

// New returns a Client.
func New(o Options) (*Client, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	c := &Client{o: o, insecure: map[string]bool{}, keychain: authn.DefaultKeychain}
	for _, h := range o.Insecure {
		c.insecure[h] = true
	}
	if o.DockerConfig != "" {
		c.keychain = fileKeychain{path: o.DockerConfig}
	}
	c.rt = httpsOnly{next: o.Transport, insecure: c.insecure}
	return c, nil
}

// Resolve returns the digest of image:tag's manifest (for a multi-platform
// image, its index). A tag the registry does not know, or one that can't
// be a tag, is gitops.ErrTagNotFound.
func (c *Client) Resolve(ctx context.Context, image, tag string) (string, error) {
	s := image + ":" + tag
	ref, err := name.NewTag(s)
	if err != nil {
		return "", fmt.Errorf("%s is not an image reference (%v): %w", s, err, gitops.ErrTagNotFound)
	}
	if c.insecure[ref.RegistryStr()] {
		if ref, err = name.NewTag(s, name.Insecure); err != nil {
			return "", fmt.Errorf("%s: %w", s, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	desc, err := remote.Head(ref,
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(c.keychain),
		remote.WithTransport(c.rt),
		remote.WithUserAgent(c.o.UserAgent),
	)
	if err != nil {
		var te *transport.Error
		if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
			return "", fmt.Errorf("%s: %w", s, gitops.ErrTagNotFound)
		}
		if ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded) {
			return "", fmt.Errorf("head %s: no answer within %s: %w", s, c.o.Timeout, err)
		}
		return "", fmt.Errorf("head %s: %w", s, err)
	}
	return desc.Digest.String(), nil
}

// httpsOnly refuses plain-HTTP requests to registries not listed as
// insecure.
type httpsOnly struct {
	next     http.RoundTripper
	insecure map[string]bool
}

func (t httpsOnly) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme != "https" && !t.insecure[r.URL.Host] {
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, fmt.Errorf("plain HTTP to %s refused: list it under registry.insecure if it has no TLS", r.URL.Host)
	}
	return t.next.RoundTrip(r)
}

// dockerConfig is the part of a docker config file that holds credentials.
type dockerConfig struct {
	Auths map[string]authn.AuthConfig `json:"auths"`
}

// readDockerConfig reads a config.json / .dockerconfigjson, or a legacy
// .dockercfg (hosts at the top level). Errors name the file, never its
// content.
func readDockerConfig(path string) (map[string]authn.AuthConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("docker config: %w", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("docker config %s is not JSON", path)
	}
	var auths map[string]authn.AuthConfig
	if _, ok := raw["auths"]; ok {
		var dc dockerConfig
		err = json.Unmarshal(data, &dc)
		auths = dc.Auths
	} else {
		err = json.Unmarshal(data, &auths)
	}
	if err != nil {
		return nil, fmt.Errorf("docker config %s: the credentials can't be read (want {\"auths\": {\"HOST\": {\"auth\": \"BASE64(user:password)\"}}})", path)
	}
	return auths, nil
}

// fileKeychain finds credentials in one docker config file, re-read on each
// lookup.
type fileKeychain struct{ path string }

func (k fileKeychain) Resolve(res authn.Resource) (authn.Authenticator, error) {
	auths, err := readDockerConfig(k.path)
	if err != nil {
		return nil, err
	}
	if ac, ok := match(auths, res.String(), res.RegistryStr()); ok {
		return authn.FromConfig(ac), nil
	}
	return authn.Anonymous, nil
}

// match picks the entry for a repository: the longest key that names its
// registry, or a path prefix of it ("registry.example.com/shop"), keys
// written with or without a scheme ("https://HOST/v1/" as docker login
// writes Docker Hub's).
func match(auths map[string]authn.AuthConfig, repository, registry string) (authn.AuthConfig, bool) {
	var best string
	var found authn.AuthConfig
	ok := false
	for key, ac := range auths {
		k := normalize(key)
		if k != registry && k != repository && !strings.HasPrefix(repository, k+"/") {
			continue
		}
		if !ok || len(k) > len(best) {
			best, found, ok = k, ac, true
		}
	}
	return found, ok
}

// normalize turns a config key into host[/path]: no scheme, no trailing
// "/" or "/v1/", Docker Hub under the name go-containerregistry uses.
func normalize(key string) string {
	k := key
	if i := strings.Index(k, "://"); i >= 0 {
		k = k[i+3:]
	}
	k = strings.TrimSuffix(strings.TrimSuffix(k, "/"), "/v1")
	k = strings.TrimSuffix(strings.TrimSuffix(k, "/v2"), "/")
	host, rest, _ := strings.Cut(k, "/")
	switch host {
	case "docker.io", "registry-1.docker.io", "index.docker.io":
		host = name.DefaultRegistry
	}
	if rest != "" {
		return host + "/" + rest
	}
	return host
}
