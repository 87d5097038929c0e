// Command image builds shipbot's container image without a Docker daemon:
// the static binary, a non-root user, CA certificates and the directories
// shipbot writes to, assembled with go-containerregistry into a minimal,
// reproducible OCI image. `make image` runs it.
//
//	go run ./deploy/image [-out dist/image] [-goarch amd64] [-repository ghcr.io/shipbot/shipbot]
//
// It writes OUT/oci (an OCI image layout: `crane push OUT/oci REF`, skopeo
// copy oci:OUT/oci ...) and OUT/shipbot.tar (`docker load -i`, `crane push
// OUT/shipbot.tar REF`) and prints the digest and the sizes.
//
// Every timestamp is SOURCE_DATE_EPOCH, or the time of the HEAD commit
// without it, so two builds of the same tree with the same Go toolchain and
// the same CA bundle give the same digest.
//
// The image holds no shell and no other binary: signing is pure Go
// (gitops/sign), git's binary is only an optional speed-up of the first
// clone (gitops/repo falls back to go-git), and without helm on PATH the
// plans of Helm charts are not checked by rendering (render.helm: auto).
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's conventions, which deploy/kubernetes relies on.
const (
	uid, gid   = 65532, 65532
	userName   = "shipbot"
	homeDir    = "/home/shipbot"
	cacheDir   = "/var/cache/shipbot" // repo.cacheDir: an emptyDir in Kubernetes
	binaryPath = "/shipbot"
	configPath = "/etc/shipbot/shipbot.yaml" // a ConfigMap in Kubernetes
	listenPort = "8080/tcp"                  // SHIPBOT_LISTEN=:8080: /healthz, /readyz, /metrics, /slack/
	caBundle   = "/etc/ssl/certs/ca-certificates.crt"
)

// Options says what to build.
type Options struct {
	Binary     string    // the shipbot binary for linux/GOARCH (buildBinary)
	GOARCH     string    // the binary's architecture
	CACerts    string    // a PEM bundle of CA certificates, copied to caBundle
	Epoch      time.Time // every timestamp of the image
	Version    string    // org.opencontainers.image.version, and the tag of the tarball
	Revision   string    // org.opencontainers.image.revision: the commit
	Source     string    // org.opencontainers.image.source
	Repository string    // the tarball's image name, e.g. ghcr.io/shipbot/shipbot
}

// Validate checks the options and fills the defaults.
func (o *Options) Validate() error {
	if o.Binary == "" {
		return errors.New("no binary given")
	}
	if o.GOARCH == "" {
		o.GOARCH = runtime.GOARCH
	}
	if o.CACerts == "" {
		o.CACerts = caBundle
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	if o.Source == "" {
		o.Source = "https://github.com/shipbot/shipbot"
	}
	if o.Repository == "" {
		o.Repository = "ghcr.io/shipbot/shipbot"
	}
	if _, err := name.NewTag(o.Repository + ":" + o.Version); err != nil {
		return fmt.Errorf("repository %q and version %q make no image reference: %w", o.Repository, o.Version, err)
	}
	o.Epoch = o.Epoch.UTC().Truncate(time.Second)
	return nil
}

// Build assembles the image: a layer of base files (user, CA certificates,
// directories) that rarely changes, then a layer with the binary.
func Build(o Options) (v1.Image, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	certs, err := os.ReadFile(o.CACerts)
	if err != nil {
		return nil, fmt.Errorf("CA certificates: %w", err)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(certs) {
		return nil, fmt.Errorf("CA certificates: %s holds no PEM certificate", o.CACerts)
	}
	bin, err := os.ReadFile(o.Binary)
	if err != nil {
		return nil, fmt.Errorf("binary: %w", err)
	}

	base := []entry{
		dir("etc/", 0o755, 0),
		file("etc/group", 0o644, 0, fmt.Sprintf("root:x:0:\n%s:x:%d:\n", userName, gid)),
		file("etc/nsswitch.conf", 0o644, 0, "hosts: files dns\n"),
		file("etc/passwd", 0o644, 0, fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\n%s:x:%d:%d:%s:%s:/sbin/nologin\n", userName, uid, gid, userName, homeDir)),
		dir("etc/shipbot/", 0o755, 0),
		dir("etc/ssl/", 0o755, 0),
		dir("etc/ssl/certs/", 0o755, 0),
		file(strings.TrimPrefix(caBundle, "/"), 0o644, 0, string(certs)),
		dir("home/", 0o755, 0),
		dir(strings.TrimPrefix(homeDir, "/")+"/", 0o700, uid),
		dir("tmp/", 0o1777, 0),
		dir("var/", 0o755, 0),
		dir("var/cache/", 0o755, 0),
		dir(strings.TrimPrefix(cacheDir, "/")+"/", 0o700, uid),
	}
	// The binary belongs to root: the user runs it and can't change it.
	binary := []entry{file(strings.TrimPrefix(binaryPath, "/"), 0o755, 0, string(bin))}

	created := v1.Time{Time: o.Epoch}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	var adds []mutate.Addendum
	for _, l := range []struct {
		entries []entry
		what    string
	}{
		{base, "user " + userName + " (" + strconv.Itoa(uid) + "), CA certificates, " + cacheDir + ", /tmp"},
		{binary, binaryPath + " " + o.Version + " (CGO_ENABLED=0 -trimpath)"},
	} {
		layer, err := tarLayer(l.entries, o.Epoch)
		if err != nil {
			return nil, err
		}
		adds = append(adds, mutate.Addendum{
			Layer:     layer,
			MediaType: types.OCILayer,
			History:   v1.History{Created: created, CreatedBy: "shipbot deploy/image: " + l.what},
		})
	}
	if img, err = mutate.Append(img, adds...); err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Created = created
	cf.OS, cf.Architecture = "linux", o.GOARCH
	cf.Config = v1.Config{
		User:       fmt.Sprintf("%d:%d", uid, gid),
		Entrypoint: []string{binaryPath},
		// `serve` alone refuses to start without --config: the image
		// names where the config is expected (a mounted ConfigMap).
		Cmd:        []string{"serve", "--config", configPath},
		WorkingDir: homeDir,
		Env: []string{
			"PATH=/usr/local/bin:/usr/bin:/bin",
			"HOME=" + homeDir,
			"SSL_CERT_FILE=" + caBundle,
		},
		ExposedPorts: map[string]struct{}{listenPort: {}},
		Labels: map[string]string{
			"org.opencontainers.image.title":       "shipbot",
			"org.opencontainers.image.description": "ChatOps for Argo CD GitOps: rollbacks, restarts and promotions as reviewed, signed commits",
			"org.opencontainers.image.source":      o.Source,
			"org.opencontainers.image.version":     o.Version,
			"org.opencontainers.image.revision":    o.Revision,
			"org.opencontainers.image.created":     o.Epoch.Format(time.RFC3339),
		},
		StopSignal: "SIGTERM",
	}
	return mutate.ConfigFile(img, cf)
}

// entry is one file or directory of a layer.
type entry struct {
	name string
	mode int64
	uid  int
	dir  bool
	data string
}

func dir(name string, mode int64, owner int) entry {
	return entry{name: name, mode: mode, uid: owner, dir: true}
}

func file(name string, mode int64, owner int, data string) entry {
	return entry{name: name, mode: mode, uid: owner, data: data}
}

// tarLayer writes entries, in the given order, with fixed timestamps and
// owners, into a gzip-compressed layer.
func tarLayer(entries []entry, epoch time.Time) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		if e.mode&0o6000 != 0 {
			return nil, fmt.Errorf("%s: no setuid or setgid file in the image", e.name)
		}
		h := &tar.Header{
			Name: e.name, Mode: e.mode, Uid: e.uid, Gid: e.uid, ModTime: epoch,
			Uname: "root", Gname: "root", Format: tar.FormatUSTAR,
		}
		if e.uid == uid {
			h.Uname, h.Gname = userName, userName
		}
		if e.dir {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("layer: %s: %w", e.name, err)
		}
		if _, err := io.WriteString(tw, e.data); err != nil {
			return nil, fmt.Errorf("layer: %s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		tarball.WithCompressionLevel(gzip.BestCompression), tarball.WithMediaType(types.OCILayer),
		tarball.WithCompressedCaching) // compressed once, not for every digest, size and write
}

// Result is what Write wrote.
type Result struct {
	Ref                      name.Tag
	Digest                   v1.Hash
	Compressed, Uncompressed int64 // bytes: the blobs a registry stores / the files unpacked
	Layout, Tarball          string
}

// Write writes the image as an OCI layout in out/oci (replacing it) and as
// a docker-loadable tarball out/shipbot.tar.
func Write(img v1.Image, o Options, out string) (Result, error) {
	if err := o.Validate(); err != nil {
		return Result{}, err
	}
	ref, err := name.NewTag(o.Repository + ":" + o.Version)
	if err != nil {
		return Result{}, err
	}
	r := Result{Ref: ref, Layout: filepath.Join(out, "oci"), Tarball: filepath.Join(out, "shipbot.tar")}
	if r.Digest, err = img.Digest(); err != nil {
		return r, err
	}
	if err := os.RemoveAll(r.Layout); err != nil {
		return r, err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return r, err
	}
	p, err := layout.Write(r.Layout, empty.Index)
	if err != nil {
		return r, fmt.Errorf("OCI layout: %w", err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": o.Version,
	}), layout.WithPlatform(v1.Platform{OS: "linux", Architecture: o.GOARCH})); err != nil {
		return r, fmt.Errorf("OCI layout: %w", err)
	}
	if err := tarball.WriteToFile(r.Tarball, ref, img); err != nil {
		return r, fmt.Errorf("tarball: %w", err)
	}
	if r.Compressed, r.Uncompressed, err = sizes(img); err != nil {
		return r, err
	}
	return r, nil
}

// sizes adds up the manifest, the config and the layers, compressed (what
// a registry stores and a node pulls) and uncompressed.
func sizes(img v1.Image) (compressed, uncompressed int64, err error) {
	m, err := img.RawManifest()
	if err != nil {
		return 0, 0, err
	}
	c, err := img.RawConfigFile()
	if err != nil {
		return 0, 0, err
	}
	compressed = int64(len(m) + len(c))
	layers, err := img.Layers()
	if err != nil {
		return 0, 0, err
	}
	for _, l := range layers {
		n, err := l.Size()
		if err != nil {
			return 0, 0, err
		}
		compressed += n
		rc, err := l.Uncompressed()
		if err != nil {
			return 0, 0, err
		}
		u, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return 0, 0, err
		}
		uncompressed += u
	}
	return compressed, uncompressed, nil
}

// buildBinary builds shipbot as `make build` does (CGO_ENABLED=0,
// -trimpath, version information from -buildvcs), for linux/goarch, with
// the symbol tables left out (-s -w: stack traces keep their function
// names and lines).
func buildBinary(ctx context.Context, root, goarch, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=auto", "-ldflags=-s -w", "-o", out, "./cmd/shipbot")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build ./cmd/shipbot: %w\n%s", err, stderr.Bytes())
	}
	return nil
}

// sourceDate is SOURCE_DATE_EPOCH, or else the committer time of HEAD.
func sourceDate(ctx context.Context, root string) (time.Time, string, error) {
	if v := strings.TrimSpace(os.Getenv("SOURCE_DATE_EPOCH")); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return time.Time{}, "", fmt.Errorf("SOURCE_DATE_EPOCH=%q: want seconds since 1970", v)
		}
		return time.Unix(n, 0).UTC(), "SOURCE_DATE_EPOCH", nil
	}
	out, err := gitOutput(ctx, root, "log", "-1", "--format=%ct")
	if err != nil {
		return time.Time{}, "", fmt.Errorf("no SOURCE_DATE_EPOCH and no commit time: %w", err)
	}
	n, err := strconv.ParseInt(out, 10, 64)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("commit time %q: %w", out, err)
	}
	return time.Unix(n, 0).UTC(), "the HEAD commit", nil
}

func gitOutput(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	root := fs.String("C", ".", "the shipbot checkout (module root)")
	out := fs.String("out", "dist/image", "output directory: OUT/oci and OUT/shipbot.tar")
	o := Options{}
	fs.StringVar(&o.GOARCH, "goarch", runtime.GOARCH, "the architecture to build for (linux)")
	fs.StringVar(&o.Binary, "binary", "", "use this linux/GOARCH shipbot binary instead of building one")
	fs.StringVar(&o.CACerts, "ca-certs", caBundle, "the CA certificate bundle (PEM) to copy into the image")
	fs.StringVar(&o.Version, "version", "", "image version and tag (default: git describe --tags --always --dirty)")
	fs.StringVar(&o.Source, "source", "https://github.com/shipbot/shipbot", "org.opencontainers.image.source")
	fs.StringVar(&o.Repository, "repository", "ghcr.io/shipbot/shipbot", "the image name written into the tarball")
	if err := fs.Parse(args); err != nil {
		return err
	}
	start := time.Now()
	epoch, from, err := sourceDate(ctx, *root)
	if err != nil {
		return err
	}
	o.Epoch = epoch
	if o.Revision, err = gitOutput(ctx, *root, "rev-parse", "HEAD"); err != nil {
		return err
	}
	if o.Version == "" {
		if o.Version, err = gitOutput(ctx, *root, "describe", "--tags", "--always", "--dirty"); err != nil {
			return err
		}
	}
	if o.Binary == "" {
		tmp, err := os.MkdirTemp("", "shipbot-image-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		o.Binary = filepath.Join(tmp, "shipbot")
		if err := buildBinary(ctx, *root, o.GOARCH, o.Binary); err != nil {
			return err
		}
	}
	built := time.Now()
	img, err := Build(o)
	if err != nil {
		return err
	}
	r, err := Write(img, o, *out)
	if err != nil {
		return err
	}
	done := time.Now()
	fmt.Fprintf(stdout, "image    %s (linux/%s)\n", r.Ref, o.GOARCH)
	fmt.Fprintf(stdout, "digest   %s\n", r.Digest)
	fmt.Fprintf(stdout, "size     %s compressed (manifest, config, layers), %s uncompressed\n", mib(r.Compressed), mib(r.Uncompressed))
	fmt.Fprintf(stdout, "time     %s (from %s)\n", epoch.Format(time.RFC3339), from)
	fmt.Fprintf(stdout, "layout   %s\n", r.Layout)
	fmt.Fprintf(stdout, "tarball  %s\n", r.Tarball)
	fmt.Fprintf(stdout, "took     %s (binary %s, image %s)\n", done.Sub(start).Round(100*time.Millisecond),
		built.Sub(start).Round(100*time.Millisecond), done.Sub(built).Round(100*time.Millisecond))
	return nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
