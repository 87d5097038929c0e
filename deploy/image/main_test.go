package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// TestImage builds shipbot once, assembles the image from it twice, and
// reads the OCI layout back as a registry or a runtime would.
func TestImage(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go binary on PATH: the image needs `go build`")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, gobin, "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))

	tmp := t.TempDir()
	bin := filepath.Join(tmp, "shipbot")
	if err := buildBinary(ctx, root, runtime.GOARCH, bin); err != nil {
		t.Fatal(err)
	}
	epoch := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	o := Options{
		Binary: bin, GOARCH: runtime.GOARCH, CACerts: writeCA(t, tmp), Epoch: epoch,
		Version: "v1.2.3-test", Revision: strings.Repeat("ab", 20), Repository: "registry.test/shipbot",
	}

	build := func(o Options, out string) Result {
		t.Helper()
		img, err := Build(o)
		if err != nil {
			t.Fatal(err)
		}
		r, err := Write(img, o, out)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r1 := build(o, filepath.Join(tmp, "one"))
	r2 := build(o, filepath.Join(tmp, "two"))
	if r1.Digest != r2.Digest {
		t.Errorf("two builds of the same binary: digests %s and %s", r1.Digest, r2.Digest)
	}
	for _, f := range []string{"shipbot.tar", "oci/index.json"} {
		a, _ := os.ReadFile(filepath.Join(tmp, "one", f))
		b, _ := os.ReadFile(filepath.Join(tmp, "two", f))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s differs between two builds (or is empty)", f)
		}
	}
	later := o
	later.Epoch = epoch.Add(time.Second)
	if r3 := build(later, filepath.Join(tmp, "three")); r3.Digest == r1.Digest {
		t.Errorf("a build with another SOURCE_DATE_EPOCH has the same digest %s: the time is not applied", r1.Digest)
	}
	if r1.Compressed <= 0 || r1.Uncompressed <= r1.Compressed {
		t.Errorf("sizes: %d compressed, %d uncompressed", r1.Compressed, r1.Uncompressed)
	}

	// Read the layout back.
	idx, err := layout.ImageIndexFromPath(r1.Layout)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 || im.Manifests[0].Digest != r1.Digest {
		t.Fatalf("index.json: %+v, want one manifest %s", im.Manifests, r1.Digest)
	}
	img, err := idx.Image(r1.Digest)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if c.User != "65532:65532" {
		t.Errorf("User = %q, want 65532:65532 (non-root)", c.User)
	}
	if strings.Join(c.Entrypoint, " ") != "/shipbot" || len(c.Cmd) == 0 || c.Cmd[0] != "serve" {
		t.Errorf("Entrypoint %q Cmd %q, want [/shipbot] [serve ...]", c.Entrypoint, c.Cmd)
	}
	if c.WorkingDir == "" || cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
		t.Errorf("WorkingDir %q, platform %s/%s", c.WorkingDir, cf.OS, cf.Architecture)
	}
	for k, want := range map[string]string{
		"org.opencontainers.image.source":   "https://github.com/shipbot/shipbot",
		"org.opencontainers.image.version":  o.Version,
		"org.opencontainers.image.revision": o.Revision,
	} {
		if got := c.Labels[k]; got != want {
			t.Errorf("label %s = %q, want %q", k, got, want)
		}
	}
	if !cf.Created.Time.Equal(epoch) {
		t.Errorf("created %s, want %s", cf.Created.Time, epoch)
	}
	for i, h := range cf.History {
		if !h.Created.Time.Equal(epoch) {
			t.Errorf("history[%d] created %s, want %s", i, h.Created.Time, epoch)
		}
	}

	files := readFiles(t, img, epoch)
	sb, ok := files["shipbot"]
	switch {
	case !ok:
		t.Fatal("no /shipbot in the image")
	case sb.Typeflag != tar.TypeReg || sb.Mode&0o111 != 0o111:
		t.Errorf("/shipbot: type %c mode %o, want an executable file", sb.Typeflag, sb.Mode)
	case sb.Uid != 0 || sb.Mode&0o022 != 0:
		t.Errorf("/shipbot: owner %d mode %o: the user must not be able to change it", sb.Uid, sb.Mode)
	}
	if p := files["etc/passwd"]; p == nil || !regexp.MustCompile(`(?m)^shipbot:x:65532:65532:`).Match(p.data) {
		t.Error("/etc/passwd has no user shipbot with uid and gid 65532")
	}
	if g := files["etc/group"]; g == nil || !regexp.MustCompile(`(?m)^shipbot:x:65532:`).Match(g.data) {
		t.Error("/etc/group has no group 65532")
	}
	if ca := files["etc/ssl/certs/ca-certificates.crt"]; ca == nil || !x509.NewCertPool().AppendCertsFromPEM(ca.data) {
		t.Error("no CA certificates in /etc/ssl/certs/ca-certificates.crt")
	}
	if d := files["tmp"]; d == nil || d.Mode&0o1777 != 0o1777 {
		t.Error("/tmp is not a sticky, world-writable directory")
	}
	if d := files["var/cache/shipbot"]; d == nil || d.Uid != 65532 || d.Typeflag != tar.TypeDir {
		t.Error("/var/cache/shipbot is not a directory of the user")
	}

	// The docker tarball holds the same config and layers.
	timg, err := tarball.ImageFromPath(r1.Tarball, nil)
	if err != nil {
		t.Fatal(err)
	}
	tc, _ := timg.ConfigName()
	lc, _ := img.ConfigName()
	if tc != lc {
		t.Errorf("tarball config %s, layout config %s", tc, lc)
	}

	// Pushed as crane push OUT/oci REF pushes it, the registry serves the
	// digest make image printed.
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	ref, err := name.NewTag(strings.TrimPrefix(srv.URL, "http://") + "/shipbot:" + o.Version)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
		t.Fatal(err)
	}
	if desc, err := remote.Head(ref, remote.WithContext(ctx)); err != nil || desc.Digest != r1.Digest {
		t.Errorf("pushed %s: registry says %v (err %v), want %s", ref, desc, err, r1.Digest)
	}

	// Run the binary as the entrypoint would: `shipbot version`, with the
	// image's environment and nothing else.
	if runtime.GOOS != "linux" {
		t.Skipf("the image's binary is for linux, this is %s", runtime.GOOS)
	}
	exe := filepath.Join(tmp, "extracted-shipbot")
	if err := os.WriteFile(exe, sb.data, os.FileMode(sb.Mode)&os.ModePerm); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, exe, "version")
	cmd.Env, cmd.Dir = c.Env, tmp
	got, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("/shipbot version: %v\n%s", err, got)
	}
	if want := regexp.MustCompile(`^shipbot \S+ \(.*linux/` + runtime.GOARCH + `\)`); !want.Match(got) {
		t.Errorf("/shipbot version said %q, want %s", got, want)
	}
}

type fileInfo struct {
	*tar.Header
	data []byte
}

// readFiles reads every layer's files as a runtime unpacks them (the image
// has no whiteouts; a later layer's file wins), checking every entry for a
// fixed time and no setuid or setgid bit. Names are cleaned: "tmp", not "tmp/".
func readFiles(t *testing.T, img v1.Image, epoch time.Time) map[string]*fileInfo {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]*fileInfo{}
	for i, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("layer %d: %v", i, err)
			}
			if !h.ModTime.Equal(epoch) {
				t.Errorf("layer %d: %s: time %s, want %s", i, h.Name, h.ModTime, epoch)
			}
			if h.Mode&0o6000 != 0 {
				t.Errorf("layer %d: %s: mode %o is setuid or setgid", i, h.Name, h.Mode)
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files[path.Clean(h.Name)] = &fileInfo{Header: h, data: b}
		}
		rc.Close()
	}
	return files
}

// writeCA writes a one-certificate PEM bundle: the test does not depend on
// the host's CA certificates.
func writeCA(t *testing.T, dir string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "shipbot test CA"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<32, 0), IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
