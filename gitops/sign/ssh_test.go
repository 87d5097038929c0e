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

	"github.com/go-git/go-git/v5/plumbing"
	"golang.org/x/crypto/ssh"
)

const principal = "shipbot@example.com"

// sshKeygen makes a key with OpenSSH's ssh-keygen.
func sshKeygen(t *testing.T, path, typ, bits, passphrase string) {
	t.Helper()
	needTool(t, "ssh-keygen")
	args := []string{"-q", "-t", typ, "-N", passphrase, "-C", "test key", "-f", path}
	if bits != "" {
		args = append(args, "-b", bits)
	}
	mustRun(t, "", nil, nil, "ssh-keygen", args...)
}

func loadSSH(t *testing.T, key, pass string) Signer {
	t.Helper()
	s, err := LoadSSH(key, pass)
	if err != nil {
		t.Fatalf("LoadSSH: %v", err)
	}
	if s.Format() != "ssh" {
		t.Fatalf("Format() = %q", s.Format())
	}
	return s
}

// allowedSignersFor writes an allowed_signers file trusting s.
func allowedSignersFor(t *testing.T, dir string, signers ...Signer) string {
	t.Helper()
	var b strings.Builder
	for _, s := range signers {
		b.WriteString(AllowedSignersLine(principal, s.(*sshSigner).PublicKey()) + "\n")
	}
	return writeFile(t, filepath.Join(dir, "allowed_signers"), b.String(), 0o644)
}

// gitVerifySSH runs stock `git verify-commit HEAD` with gpg.format=ssh.
func gitVerifySSH(t *testing.T, repo, allowed string) cmdResult {
	t.Helper()
	return run(t, repo, nil, nil, "git", "-c", "gpg.format=ssh", "-c", "gpg.ssh.allowedSignersFile="+allowed, "verify-commit", "HEAD")
}

// checkGitAcceptsSSH asserts git verify-commit, git log --show-signature and
// ssh-keygen -Y verify all accept the commit's signature.
func checkGitAcceptsSSH(t *testing.T, repo, allowed string, s Signer) {
	t.Helper()
	needTool(t, "ssh-keygen")
	r := gitVerifySSH(t, repo, allowed)
	if r.err != nil {
		t.Fatalf("git verify-commit: %v\n%s", r.err, r.out())
	}
	if want := `Good "git" signature for ` + principal; !strings.Contains(r.out(), want) || !strings.Contains(r.out(), s.Identity()) {
		t.Fatalf("git verify-commit output lacks %q / %s:\n%s", want, s.Identity(), r.out())
	}
	r = mustRun(t, repo, nil, nil, "git", "-c", "gpg.ssh.allowedSignersFile="+allowed, "log", "--show-signature", "-1")
	if !strings.Contains(r.out(), `Good "git" signature for `+principal) || !strings.Contains(r.out(), "Shipbot-Request: 42") {
		t.Fatalf("git log --show-signature:\n%s", r.out())
	}

	// The raw signature against the payload, with ssh-keygen alone.
	c := readCommit(t, repo, headHash(t, repo))
	sigFile := writeFile(t, filepath.Join(t.TempDir(), "commit.sig"), c.PGPSignature, 0o644)
	r = mustRun(t, "", nil, payloadOf(t, c), "ssh-keygen", "-Y", "verify", "-f", allowed, "-I", principal, "-n", "git", "-s", sigFile)
	if !strings.Contains(r.out(), `Good "git" signature for `+principal) {
		t.Fatalf("ssh-keygen -Y verify:\n%s", r.out())
	}
}

func headHash(t *testing.T, repo string) plumbing.Hash {
	t.Helper()
	return plumbing.NewHash(strings.TrimSpace(mustRun(t, repo, nil, nil, "git", "rev-parse", "HEAD").stdout))
}

func TestGenerateSSHSignsCommitsGitVerifies(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "keys", "shipbot_ed25519")
	pub, err := GenerateSSH(key, principal)
	if err != nil {
		t.Fatal(err)
	}
	if pub.Type() != ssh.KeyAlgoED25519 {
		t.Fatalf("key type %s", pub.Type())
	}
	st, err := os.Stat(key)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("private key mode %v, want 0600", st.Mode().Perm())
	}
	data, _ := os.ReadFile(key)
	if !bytes.HasPrefix(data, []byte("-----BEGIN OPENSSH PRIVATE KEY-----\n")) {
		t.Errorf("not OpenSSH format:\n%.40s", data)
	}
	pubFile, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))) + " " + principal + "\n"; string(pubFile) != want {
		t.Errorf(".pub = %q, want %q", pubFile, want)
	}
	line := AllowedSignersLine(principal, pub)
	if want := principal + ` namespaces="git" ssh-ed25519 AAAA`; !strings.HasPrefix(line, want) || strings.HasSuffix(line, "\n") {
		t.Errorf("AllowedSignersLine = %q", line)
	}

	// OpenSSH reads the key we wrote.
	needTool(t, "ssh-keygen")
	r := mustRun(t, "", nil, nil, "ssh-keygen", "-y", "-f", key)
	if got := strings.Fields(r.stdout); len(got) < 2 || got[1] != strings.Fields(string(pubFile))[1] {
		t.Errorf("ssh-keygen -y: %q", r.stdout)
	}

	s := loadSSH(t, key, "")
	if s.Identity() != ssh.FingerprintSHA256(pub) {
		t.Errorf("Identity() = %q, want %q", s.Identity(), ssh.FingerprintSHA256(pub))
	}
	allowed := writeFile(t, filepath.Join(dir, "allowed_signers"), "# shipbot\n"+line+"\n", 0o644)
	repo, c := commitWith(t, s)
	checkGitAcceptsSSH(t, repo, allowed, s)

	v := newVerifier(t, nil, []string{allowed})
	st2, name := v.VerifyCommit(c)
	wantStatus(t, "VerifyCommit", st2, name, StatusGood, principal)

	if _, err := GenerateSSH(key, "again"); !errors.Is(err, fs.ErrExist) {
		t.Errorf("GenerateSSH over an existing key: err = %v, want ErrExist", err)
	}
	if again, _ := os.ReadFile(key); !bytes.Equal(again, data) {
		t.Error("GenerateSSH overwrote an existing key")
	}
}

// TestLoadSSHKeysFromOpenSSH signs with keys ssh-keygen made, of every
// supported type, plain and encrypted, and has git and ssh-keygen check the
// commits.
func TestLoadSSHKeysFromOpenSSH(t *testing.T) {
	needTool(t, "ssh-keygen")
	for _, tc := range []struct {
		name, typ, bits, pass string
	}{
		{"ed25519", "ed25519", "", ""},
		{"ed25519-encrypted", "ed25519", "", "correct horse battery"},
		{"rsa-3072", "rsa", "3072", ""},
		{"ecdsa-p256", "ecdsa", "256", ""},
		{"ecdsa-p384-encrypted-crlf", "ecdsa", "384", "pw"},
		{"ecdsa-p521", "ecdsa", "521", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			key := filepath.Join(dir, "id")
			sshKeygen(t, key, tc.typ, tc.bits, tc.pass)
			passFile := ""
			if tc.pass != "" {
				// A trailing newline, as `echo pass > file` leaves, is not
				// part of the passphrase.
				eol := "\n"
				if strings.HasSuffix(tc.name, "-crlf") {
					eol = "\r\n" // a file edited on Windows
				}
				passFile = writeFile(t, filepath.Join(dir, "pass"), tc.pass+eol, 0o600)
			}
			s := loadSSH(t, key, passFile)
			fp := mustRun(t, "", nil, nil, "ssh-keygen", "-l", "-E", "sha256", "-f", key+".pub").stdout
			if !strings.Contains(fp, s.Identity()) {
				t.Errorf("Identity() %q not in ssh-keygen -l: %s", s.Identity(), fp)
			}
			allowed := allowedSignersFor(t, dir, s)
			repo, c := commitWith(t, s)
			checkGitAcceptsSSH(t, repo, allowed, s)
			if tc.typ == "rsa" {
				blob, err := parseSSHSIG(c.PGPSignature)
				if err != nil || blob.sig.Format != ssh.KeyAlgoRSASHA512 {
					t.Errorf("RSA signature algorithm: %v %v", blob, err)
				}
			}
			if tc.pass != "" {
				if _, err := LoadSSH(key, ""); !errors.Is(err, ErrPassphraseRequired) {
					t.Errorf("no passphrase file: err = %v", err)
				}
			}
		})
	}
}

// TestSSHSignatureIsWhatOpenSSHWrites: ed25519 signatures are deterministic,
// so ours must equal `ssh-keygen -Y sign -n git` byte for byte (blob layout,
// hash, armor, line width).
func TestSSHSignatureIsWhatOpenSSHWrites(t *testing.T) {
	needTool(t, "ssh-keygen")
	dir := t.TempDir()
	key := filepath.Join(dir, "id")
	sshKeygen(t, key, "ed25519", "", "")
	s := loadSSH(t, key, "")
	msg := []byte("tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor a <a@b> 1 +0000\ncommitter a <a@b> 1 +0000\n\nmsg\n")
	ours, err := s.Sign(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	theirs := mustRun(t, "", nil, msg, "ssh-keygen", "-Y", "sign", "-n", "git", "-f", key).stdout
	if string(ours) != theirs {
		t.Errorf("signature differs from ssh-keygen -Y sign:\nours:\n%s\ntheirs:\n%s", ours, theirs)
	}
}

func TestGitRejectsCommitByUntrustedSSHKey(t *testing.T) {
	dir := t.TempDir()
	trusted, err := GenerateSSH(filepath.Join(dir, "trusted"), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := GenerateSSH(filepath.Join(dir, "other"), ""); err != nil {
		t.Fatal(err)
	}
	allowed := writeFile(t, filepath.Join(dir, "allowed_signers"), AllowedSignersLine(principal, trusted)+"\n", 0o644)
	other := loadSSH(t, filepath.Join(dir, "other"), "")
	repo, c := commitWith(t, other)
	r := gitVerifySSH(t, repo, allowed)
	// git checks the signature itself ("Good ... with ED25519 key") but finds
	// no principal for the key and fails.
	if r.err == nil || !strings.Contains(r.out(), "No principal matched") || strings.Contains(r.out(), "signature for "+principal) {
		t.Fatalf("git verify-commit accepted an untrusted key (err %v):\n%s", r.err, r.out())
	}
	st, name := newVerifier(t, nil, []string{allowed}).VerifyCommit(c)
	wantStatus(t, "VerifyCommit", st, name, StatusUnknownKey, other.Identity())
}

func TestLoadSSHErrors(t *testing.T) {
	needTool(t, "ssh-keygen")
	dir := t.TempDir()
	key := filepath.Join(dir, "id")
	const secret = "s3cret-Passphrase"
	sshKeygen(t, key, "ed25519", "", secret)
	wrong := writeFile(t, filepath.Join(dir, "wrong"), "not-"+secret+"\n", 0o600)
	empty := writeFile(t, filepath.Join(dir, "empty"), "\n", 0o600)
	garbage := writeFile(t, filepath.Join(dir, "garbage"), "hello\n", 0o600)
	smallRSA := filepath.Join(dir, "rsa1024")
	sshKeygen(t, smallRSA, "rsa", "1024", "")

	for _, tc := range []struct {
		name, key, pass string
		is              error
		want            string
	}{
		{"missing file", filepath.Join(dir, "nope"), "", fs.ErrNotExist, "no such file"},
		{"no file", "", "", nil, "no file given"},
		{"public key", key + ".pub", "", nil, "is a public key, not a private key"},
		{"garbage", garbage, "", nil, "not a PEM/OpenSSH private key"},
		{"wrong passphrase", key, wrong, ErrWrongPassphrase, "wrong passphrase"},
		{"no passphrase", key, "", ErrPassphraseRequired, "passphrase"},
		{"empty passphrase", key, empty, nil, "empty passphrase"},
		{"missing passphrase file", key, filepath.Join(dir, "nope"), fs.ErrNotExist, "passphrase file"},
		{"small rsa", smallRSA, "", nil, "too small"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := LoadSSH(tc.key, tc.pass)
			if err == nil {
				t.Fatalf("LoadSSH succeeded: %v", s.Identity())
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("err = %v, want %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want it to mention %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "PRIVATE KEY") {
				t.Errorf("error leaks secret material: %q", err)
			}
		})
	}
}

// TestSSHSignConcurrent: the bot signs commits from concurrent chat commands.
func TestSSHSignConcurrent(t *testing.T) {
	dir := t.TempDir()
	pub, err := GenerateSSH(filepath.Join(dir, "k"), "")
	if err != nil {
		t.Fatal(err)
	}
	s := loadSSH(t, filepath.Join(dir, "k"), "")
	allowed := writeFile(t, filepath.Join(dir, "allowed"), AllowedSignersLine("bot", pub)+"\n", 0o644)
	v := newVerifier(t, nil, []string{allowed})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			payload := []byte(strings.Repeat("x", i) + "\ncommitter a <a@b> 1 +0000\n\nm\n")
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
