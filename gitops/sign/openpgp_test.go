package sign

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// gpgHome is a throwaway GNUPGHOME with its own gpg-agent.
type gpgHome struct {
	dir string
	env []string
}

func newGPGHome(t *testing.T) *gpgHome {
	t.Helper()
	needTool(t, "gpg")
	// Short path: gpg-agent's socket path is length-limited.
	dir, err := os.MkdirTemp("", "sbgpg")
	if err != nil {
		t.Fatal(err)
	}
	g := &gpgHome{dir: dir, env: toolEnv(t, "GNUPGHOME="+dir)}
	t.Cleanup(func() {
		// Stop the agent gpg started for this home (only this one).
		run(t, "", g.env, nil, "gpgconf", "--kill", "all")
		os.RemoveAll(dir)
	})
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// The agent calibrates its passphrase hashing to take seconds per
	// operation on a slow machine; the tests need speed, not strength.
	writeFile(t, filepath.Join(dir, "gpg-agent.conf"), "s2k-count 65536\n", 0o600)
	return g
}

func (g *gpgHome) gpg(t *testing.T, stdin []byte, args ...string) cmdResult {
	t.Helper()
	return mustRun(t, "", g.env, stdin, "gpg", append([]string{"--batch", "--no-tty"}, args...)...)
}

// genKey makes a key with gpg --quick-gen-key and returns its fingerprint.
func (g *gpgHome) genKey(t *testing.T, uid, algo, usage, expire, pass string, extra ...string) string {
	t.Helper()
	args := append([]string{"--pinentry-mode", "loopback", "--passphrase", pass}, extra...)
	g.gpg(t, nil, append(args, "--quick-gen-key", uid, algo, usage, expire)...)
	return g.fingerprint(t, uid)
}

func (g *gpgHome) fingerprint(t *testing.T, uid string) string {
	t.Helper()
	out := g.gpg(t, nil, "--with-colons", "--list-keys", uid).stdout
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Split(line, ":"); f[0] == "fpr" && len(f) > 9 {
			return f[9]
		}
	}
	t.Fatalf("no fingerprint for %s:\n%s", uid, out)
	return ""
}

func (g *gpgHome) exportSecret(t *testing.T, pass string, what ...string) string {
	t.Helper()
	args := append([]string{"--pinentry-mode", "loopback", "--passphrase", pass, "--armor", "--export-secret-keys"}, what...)
	out := g.gpg(t, nil, args...).stdout
	if !strings.Contains(out, "PGP PRIVATE KEY BLOCK") {
		t.Fatalf("export: %q", out)
	}
	return writeFile(t, filepath.Join(t.TempDir(), "secret.asc"), out, 0o600)
}

func (g *gpgHome) exportPublic(t *testing.T, what ...string) string {
	t.Helper()
	out := g.gpg(t, nil, append([]string{"--armor", "--export"}, what...)...).stdout
	return writeFile(t, filepath.Join(t.TempDir(), "public.asc"), out, 0o644)
}

func loadOpenPGP(t *testing.T, key, pass string) Signer {
	t.Helper()
	s, err := LoadOpenPGP(key, pass)
	if err != nil {
		t.Fatalf("LoadOpenPGP: %v", err)
	}
	if s.Format() != "openpgp" {
		t.Fatalf("Format() = %q", s.Format())
	}
	return s
}

// checkGitAcceptsOpenPGP asserts stock git verify-commit (which runs gpg with
// the test's GNUPGHOME) and git log --show-signature accept HEAD.
func checkGitAcceptsOpenPGP(t *testing.T, g *gpgHome, repo, uid string) {
	t.Helper()
	r := run(t, repo, g.env, nil, "git", "verify-commit", "HEAD")
	if r.err != nil {
		t.Fatalf("git verify-commit: %v\n%s", r.err, r.out())
	}
	if want := `Good signature from "` + uid + `"`; !strings.Contains(r.out(), want) {
		t.Fatalf("git verify-commit output lacks %q:\n%s", want, r.out())
	}
	r = mustRun(t, repo, g.env, nil, "git", "log", "--show-signature", "-1")
	if !strings.Contains(r.out(), `Good signature from "`+uid+`"`) {
		t.Fatalf("git log --show-signature:\n%s", r.out())
	}
}

func TestOpenPGPSignsCommitsGitVerifies(t *testing.T) {
	for _, tc := range []struct {
		name, algo, usage, pass, subkey string
	}{
		{name: "ed25519", algo: "ed25519", usage: "sign"},
		{name: "rsa-passphrase", algo: "rsa2048", usage: "sign", pass: "secret"},
		// Primary certifies; a separate subkey signs (the common setup).
		{name: "signing-subkey", algo: "ed25519", usage: "cert", pass: "pw", subkey: "ed25519"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGPGHome(t)
			uid := "shipbot <shipbot@example.com>"
			fpr := g.genKey(t, uid, tc.algo, tc.usage, "never", tc.pass)
			if tc.subkey != "" {
				g.gpg(t, nil, "--pinentry-mode", "loopback", "--passphrase", tc.pass, "--quick-add-key", fpr, tc.subkey, "sign", "never")
			}
			keyFile := g.exportSecret(t, tc.pass, fpr)
			passFile := ""
			if tc.pass != "" {
				passFile = writeFile(t, filepath.Join(t.TempDir(), "pass"), tc.pass+"\n", 0o600)
			}
			s := loadOpenPGP(t, keyFile, passFile)
			if s.Identity() != fpr {
				t.Errorf("Identity() = %q, want %q", s.Identity(), fpr)
			}
			repo, c := commitWith(t, s)
			if !strings.HasPrefix(c.PGPSignature, "-----BEGIN PGP SIGNATURE-----") {
				t.Fatalf("gpgsig: %q", c.PGPSignature)
			}
			checkGitAcceptsOpenPGP(t, g, repo, uid)

			v := newVerifier(t, []string{g.exportPublic(t, fpr)}, nil)
			st, name := v.VerifyCommit(c)
			wantStatus(t, "VerifyCommit", st, name, StatusGood, fpr)
			st, name = v.VerifyCommit(tampered(c))
			wantStatus(t, "VerifyCommit(tampered)", st, name, StatusBad, fpr)
		})
	}
}

func TestLoadOpenPGPErrors(t *testing.T) {
	g := newGPGHome(t)
	const secret = "Tr0ub4dor&3"
	protected := g.genKey(t, "protected <p@example.com>", "ed25519", "sign", "never", secret)
	certOnly := g.genKey(t, "certonly <c@example.com>", "ed25519", "cert", "never", "")
	expired := g.genKey(t, "expired <e@example.com>", "ed25519", "sign", "1y", "", "--faked-system-time", "20200101T000000")
	revoked := g.genKey(t, "revoked <r@example.com>", "ed25519", "sign", "never", "")
	// gpg stored a revocation certificate at key generation; importing it
	// (minus the ':' guarding against accidents) revokes the key.
	rev, err := os.ReadFile(filepath.Join(g.dir, "openpgp-revocs.d", revoked+".rev"))
	if err != nil {
		t.Fatal(err)
	}
	g.gpg(t, bytes.ReplaceAll(rev, []byte(":-----BEGIN"), []byte("-----BEGIN")), "--import")
	stub := g.genKey(t, "stub <s@example.com>", "ed25519", "sign", "never", "")

	dir := t.TempDir()
	wrongPass := writeFile(t, filepath.Join(dir, "wrong"), "hunter2-wrong\n", 0o600)
	stubFile := writeFile(t, filepath.Join(dir, "stub.asc"),
		g.gpg(t, nil, "--armor", "--export-secret-subkeys", stub).stdout, 0o600)
	for _, tc := range []struct {
		name, key, pass string
		is              error
		want            string
	}{
		{"missing file", filepath.Join(dir, "nope.asc"), "", fs.ErrNotExist, "no such file"},
		{"not armored", wrongPass, "", nil, "not an armored OpenPGP key"},
		{"public key", g.exportPublic(t, protected), "", nil, "public key, not a private key"},
		{"wrong passphrase", g.exportSecret(t, secret, protected), wrongPass, ErrWrongPassphrase, "wrong passphrase"},
		{"no passphrase file", g.exportSecret(t, secret, protected), "", ErrPassphraseRequired, "passphrase"},
		{"cannot sign", g.exportSecret(t, "", certOnly), "", nil, "cannot sign: it has no usable signing key"},
		{"expired", g.exportSecret(t, "", expired), "", nil, "cannot sign: it expired on 2020-12-31"},
		{"revoked", g.exportSecret(t, "", revoked), "", nil, "cannot sign: it is revoked"},
		{"stub", stubFile, "", nil, "stub without secret material"},
		{"two keys", g.exportSecret(t, secret, protected, stub), "", nil, "holds 2 secret keys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := LoadOpenPGP(tc.key, tc.pass)
			if err == nil {
				t.Fatalf("LoadOpenPGP succeeded: %s", s.Identity())
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("err = %v, want %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want it to mention %q", err, tc.want)
			}
			for _, leak := range []string{secret, "hunter2", "PRIVATE KEY"} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("error leaks %q: %q", leak, err)
				}
			}
		})
	}
}

// TestOpenPGPSignConcurrent: the bot signs commits from concurrent chat
// commands.
func TestOpenPGPSignConcurrent(t *testing.T) {
	g := newGPGHome(t)
	fpr := g.genKey(t, "bot <bot@example.com>", "ed25519", "sign", "never", "")
	s := loadOpenPGP(t, g.exportSecret(t, "", fpr), "")
	v := newVerifier(t, []string{g.exportPublic(t, fpr)}, nil)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			payload := []byte(strings.Repeat("y", i) + "\n\nm\n")
			sig, err := s.Sign(bytes.NewReader(payload))
			if err != nil {
				t.Error(err)
				return
			}
			if st, _ := v.Verify(payload, string(sig)); st != StatusGood {
				t.Errorf("concurrent signature %d: %s", i, st)
			}
		}()
	}
	wg.Wait()
}
