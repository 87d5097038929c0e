// Package images serves the local stack's OCI registry on 127.0.0.1 and
// fills it with images built without Docker (go-containerregistry): one
// layer holding one static Go binary (deploy/local/images/app, built by
// build.sh) and a config that says how to run it. The demo apps, the
// pause image of containerd's sandboxes and a release that crash-loops are
// all the same binary with different arguments; the layer is uploaded once.
//
// Images keep the names the manifests use (registry.example.com/shop/...):
// containerd's hosts.toml sends that registry here (see stack), so the env
// repo stays as it is. Only the path after the registry host is kept:
// registry.example.com/shop/checkout:1.4.1 is 127.0.0.1:5000/shop/checkout:1.4.1.
package images

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Image is one image to build and push.
type Image struct {
	// Ref is the name the manifests use, with its tag:
	// registry.example.com/shop/checkout:1.4.1.
	Ref string
	// Args are the binary's arguments (the image's Cmd): e.g. -port=9102,
	// -pause, -crash.
	Args []string
}

// Registry is a running registry.
type Registry struct {
	// Addr is host:port, e.g. 127.0.0.1:5000.
	Addr string
	srv  *http.Server
	done chan struct{}
}

// Serve starts a registry on addr with its blobs under dir.
func Serve(addr, dir string) (*Registry, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	h := registry.New(registry.WithBlobHandler(registry.NewDiskBlobHandler(dir)), registry.Logger(log.New(io.Discard, "", 0)))
	r := &Registry{Addr: ln.Addr().String(), srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.srv.Serve(ln)
	}()
	return r, nil
}

// Close stops the registry.
func (r *Registry) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := r.srv.Shutdown(ctx)
	<-r.done
	return err
}

// Local is ref as this registry serves it.
func (r *Registry) Local(ref string) string {
	return r.Addr + "/" + Path(ref)
}

// Path is ref without its registry host: shop/checkout:1.4.1.
func Path(ref string) string {
	first, rest, ok := strings.Cut(ref, "/")
	if ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return rest
	}
	return ref
}

// Push builds every image from the static binary bin and pushes it.
func (r *Registry) Push(ctx context.Context, bin string, imgs []Image) error {
	layer, err := binaryLayer(bin)
	if err != nil {
		return err
	}
	for _, im := range imgs {
		if err := r.push(ctx, layer, im); err != nil {
			return err
		}
	}
	return nil
}

func (r *Registry) push(ctx context.Context, layer v1.Layer, im Image) error {
	local := r.Local(im.Ref)
	ref, err := name.NewTag(local, name.Insecure)
	if err != nil {
		return fmt.Errorf("registry: image %s: %w", im.Ref, err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Created = v1.Time{Time: time.Unix(0, 0).UTC()}
	repo := ref.Context().RepositoryStr()
	cf.Config.Entrypoint = []string{"/app"}
	cf.Config.Cmd = im.Args
	cf.Config.Env = []string{"APP=" + path.Base(repo), "VERSION=" + ref.TagStr()}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
		return fmt.Errorf("registry: push %s: %w", local, err)
	}
	return nil
}

// binaryLayer is a layer with bin as /app.
func binaryLayer(bin string) (v1.Layer, error) {
	b, err := os.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("registry: %w (run deploy/local/build.sh)", err)
	}
	if !bytes.HasPrefix(b, []byte("\x7fELF")) {
		return nil, errors.New("registry: " + bin + " is not an ELF binary")
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "app", Mode: 0o755, Size: int64(len(b)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(b); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
}
