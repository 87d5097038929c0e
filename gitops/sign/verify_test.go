package sign

import (
	"bytes"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"
	"golang.org/x/crypto/ssh"
)

// sshKey is a generated SSH key: its file, public key and signer.
type sshKey struct {
	file string
	pub  ssh.PublicKey
	s    Signer
}

func genSSH(t *testing.T, dir, name string) sshKey {
	t.Helper()
	file := filepath.Join(dir, name)
	pub, err := GenerateSSH(file, name+"@example.com")
	if err != nil {
		t.Fatal(err)
	}
	return sshKey{file, pub, loadSSH(t, file, "")}
}

func authorizedKey(pub ssh.PublicKey) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
}

// sshKeygenSign signs payload with ssh-keygen -Y sign, with extra options.
func sshKeygenSign(t *testing.T, key string, payload []byte, args ...string) string {
	t.Helper()
	needTool(t, "ssh-keygen")
	args = append([]string{"-Y", "sign", "-f", key}, args...)
	return mustRun(t, "", nil, payload, "ssh-keygen", args...).stdout
}

func TestVerifierSSH(t *testing.T) {
	dir := t.TempDir()
	bot, other, alice, ca := genSSH(t, dir, "bot"), genSSH(t, dir, "other"), genSSH(t, dir, "alice"), genSSH(t, dir, "ca")
	allowed := writeFile(t, filepath.Join(dir, "allowed_signers"), strings.Join([]string{
		"# Trusted commit signers",
		"",
		"   # indented comment",
		"alice@example.com " + authorizedKey(alice.pub) + " alice's laptop",
		`"shipbot@example.com,bot@example.com" namespaces="file,git" ` + authorizedKey(bot.pub),
		`*@example.com cert-authority ` + authorizedKey(ca.pub),
		"\t",
	}, "\r\n"), 0o644)
	v := newVerifier(t, nil, []string{allowed})

	repo, signed := commitWith(t, bot.s)
	payload := payloadOf(t, signed)
	st, name := v.VerifyCommit(signed)
	wantStatus(t, "bot", st, name, StatusGood, "shipbot@example.com,bot@example.com")
	checkGitAcceptsSSH(t, repo, allowed, bot.s) // git reads the same file

	_, byAlice := commitWith(t, alice.s)
	st, name = v.VerifyCommit(byAlice)
	wantStatus(t, "alice (plain entry)", st, name, StatusGood, "alice@example.com")

	_, byOther := commitWith(t, other.s)
	st, name = v.VerifyCommit(byOther)
	wantStatus(t, "untrusted key", st, name, StatusUnknownKey, ssh.FingerprintSHA256(other.pub))

	// A cert-authority entry trusts certificates, not the CA key's own
	// signatures (as ssh-keygen).
	_, byCA := commitWith(t, ca.s)
	st, _ = v.VerifyCommit(byCA)
	wantStatus(t, "cert-authority key", st, "", StatusUnknownKey, "*")

	st, name = v.VerifyCommit(tampered(signed))
	wantStatus(t, "trailer changed after signing", st, name, StatusBad, "shipbot@example.com,bot@example.com")

	_, unsigned := commitWith(t, nil)
	st, name = v.VerifyCommit(unsigned)
	wantStatus(t, "unsigned", st, name, StatusUnsigned, "")

	// Signatures OpenSSH makes over the same payload.
	st, _ = v.Verify(payload, sshKeygenSign(t, bot.file, payload, "-n", "git"))
	wantStatus(t, "ssh-keygen -Y sign -n git", st, "", StatusGood, "*")
	st, _ = v.Verify(payload, sshKeygenSign(t, bot.file, payload, "-n", "git", "-O", "hashalg=sha256"))
	wantStatus(t, "ssh-keygen sha256", st, "", StatusGood, "*")
	st, _ = v.Verify(payload, sshKeygenSign(t, bot.file, payload, "-n", "file"))
	wantStatus(t, "namespace file, trusted key", st, "", StatusBad, "*")

	// Malformed signatures.
	sig := signed.PGPSignature
	lines := strings.Split(strings.TrimSpace(sig), "\n")
	for what, s := range map[string]string{
		"truncated":      strings.Join(append(lines[:2:2], lines[len(lines)-1]), "\n"),
		"two blocks":     sig + sig,
		"bad base64":     strings.Replace(sig, lines[1], "!!"+lines[1][2:], 1),
		"no end line":    strings.Join(lines[:len(lines)-1], "\n"),
		"flipped bit":    flipSigByte(t, sig),
		"x509":           "-----BEGIN SIGNED MESSAGE-----\nMIIB\n-----END SIGNED MESSAGE-----\n",
		"not armored":    "hello",
		"other key type": "-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----\n",
	} {
		st, _ := v.Verify(payload, s)
		wantStatus(t, what, st, "", StatusBad, "*")
	}
	st, _ = v.Verify(payload, " \n")
	wantStatus(t, "blank signature", st, "", StatusUnsigned, "")
}

// flipSigByte changes the last byte of the signature inside the SSHSIG blob
// and re-armors it, so that only the cryptographic check can catch it.
func flipSigByte(t *testing.T, armored string) string {
	t.Helper()
	s := strings.TrimSpace(armored)
	body := strings.Join(strings.Fields(s[len(sshsigBegin):len(s)-len(sshsigEnd)]), "")
	blob, err := base64.StdEncoding.DecodeString(body)
	if err != nil {
		t.Fatal(err)
	}
	blob[len(blob)-1] ^= 1
	return string(armorSSHSIG(blob))
}

// TestVerifierSSHAllowedSignersRestrictions: namespaces and validity options
// limit where a key is trusted; outside them the key is unknown, as
// ssh-keygen (and so git) sees it.
func TestVerifierSSHAllowedSignersRestrictions(t *testing.T) {
	dir := t.TempDir()
	bot := genSSH(t, dir, "bot")
	repo, c := commitWith(t, bot.s)
	// Validity is judged at the committer time (git passes it to
	// ssh-keygen as -Overify-time), not now.
	oldRepo, oldCommit := commitAt(t, bot.s, time.Date(2010, 6, 1, 12, 0, 0, 0, time.UTC))
	key := authorizedKey(bot.pub)
	for _, tc := range []struct {
		name, line string
		want       Status
		old        bool
	}{
		{"old commit, key valid only since", `bot valid-after="20200101" ` + key, StatusUnknownKey, true},
		{"old commit, key valid until", `bot valid-before="20150101" ` + key, StatusGood, true},
		{"other namespace only", `bot namespaces="file,email" ` + key, StatusUnknownKey, false},
		{"negated git", `bot namespaces="*,!git" ` + key, StatusUnknownKey, false},
		{"wildcard namespace", `bot namespaces="g?t,file" ` + key, StatusGood, false},
		{"expired before commit", `bot valid-before="20000101" ` + key, StatusUnknownKey, false},
		{"not yet valid", `bot valid-after="29990101Z" ` + key, StatusUnknownKey, false},
		{"valid window", `bot valid-after="200001010000Z",valid-before="29991231235959" ` + key, StatusGood, false},
		{"option case", `bot NAMESPACES="git" ` + key, StatusGood, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo, c := repo, c
			if tc.old {
				repo, c = oldRepo, oldCommit
			}
			allowed := writeFile(t, filepath.Join(t.TempDir(), "allowed"), tc.line+"\n", 0o644)
			st, _ := newVerifier(t, nil, []string{allowed}).VerifyCommit(c)
			wantStatus(t, tc.line, st, "", tc.want, "*")
			// Stock git agrees.
			r := gitVerifySSH(t, repo, allowed)
			if gitOK := r.err == nil; gitOK != (tc.want == StatusGood) {
				t.Errorf("git verify-commit ok=%v, verifier %s:\n%s", gitOK, st, r.out())
			}
		})
	}
}

func TestAllowedSignersParsing(t *testing.T) {
	dir := t.TempDir()
	a, b := genSSH(t, dir, "a"), genSSH(t, dir, "b")
	ka, kb := authorizedKey(a.pub), authorizedKey(b.pub)
	good := strings.Join([]string{
		"# comment",
		"",
		"a@example.com " + ka,
		`"b@example.com,c@example.com" namespaces="git",valid-after="20240101" ` + kb + " comment with spaces",
		`"quoted principal" cert-authority,namespaces="git" ` + ka,
	}, "\n")
	entries, err := parseAllowedSigners("f", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 {
		t.Fatalf("%d entries, want 3", len(entries))
	}
	e := entries[1]
	if e.principals != "b@example.com,c@example.com" || !e.hasNamespaces || fmt.Sprint(e.namespaces) != "[git]" ||
		e.validAfter.Year() != 2024 || !bytes.Equal(e.key, b.pub.Marshal()) || e.where != "f:4" {
		t.Errorf("entry 2: %+v", e)
	}
	if entries[0].hasNamespaces || entries[0].certAuthority || !entries[2].certAuthority || entries[2].principals != "quoted principal" {
		t.Errorf("entries: %+v", entries)
	}

	for _, tc := range []struct{ line, want string }{
		{"a@example.com", "missing key"},
		{"a@example.com ssh-ed25519", "bad key"},
		{"a@example.com ssh-ed25519 AAAAnotakey", "bad key"},
		{"a@example.com " + strings.Replace(ka, "ssh-ed25519", "ssh-rsa", 1), "bad key"},
		{`a@example.com unknown-opt ` + ka, `unsupported option "unknown-opt"`},
		{`a@example.com namespaces=git ` + ka, "double-quoted"},
		{`a@example.com namespaces="" ` + ka, "needs a value"},
		{`a@example.com valid-before="2024" ` + ka, "bad timestamp"},
		{`a@example.com valid-before="20241399" ` + ka, "bad timestamp"},
		{`a@example.com namespaces="git",namespaces="file" ` + ka, "duplicate option"},
		{`"a@example.com ` + ka, "unmatched double quote"},
	} {
		_, err := parseAllowedSigners("allowed", []byte("# ok\n\n"+tc.line+"\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "allowed:3") {
			t.Errorf("%q: err = %v, want %q at allowed:3", tc.line, err, tc.want)
		}
	}
}

func TestMatchPatternList(t *testing.T) {
	for _, tc := range []struct {
		s, list string
		want    bool
	}{
		{"git", "git", true},
		{"git", "file,git", true},
		{"git", "file", false},
		{"git", "*", true},
		{"git", "g*", true},
		{"git", "g?t", true},
		{"git", "g??t", false},
		{"git", "*,!git", false},
		{"git", "!file", false},
		{"git", "*i*", true},
		{"git", "gi", false},
	} {
		if got := matchPatternList(tc.s, strings.Split(tc.list, ",")); got != tc.want {
			t.Errorf("matchPatternList(%q, %q) = %v", tc.s, tc.list, got)
		}
	}
}

func TestVerifierOpenPGP(t *testing.T) {
	g := newGPGHome(t)
	const uid = "shipbot <shipbot@example.com>"
	trusted := g.genKey(t, uid, "ed25519", "sign", "never", "")
	other := g.genKey(t, "other <other@example.com>", "ed25519", "sign", "never", "")
	keyring := g.exportPublic(t, trusted)
	v := newVerifier(t, []string{keyring}, nil)

	_, signed := commitWith(t, loadOpenPGP(t, g.exportSecret(t, "", trusted), ""))
	payload := payloadOf(t, signed)
	st, name := v.VerifyCommit(signed)
	wantStatus(t, "trusted", st, name, StatusGood, trusted)

	_, byOther := commitWith(t, loadOpenPGP(t, g.exportSecret(t, "", other), ""))
	st, name = v.VerifyCommit(byOther)
	wantStatus(t, "other key", st, name, StatusUnknownKey, other)

	st, name = v.VerifyCommit(tampered(signed))
	wantStatus(t, "trailer changed after signing", st, name, StatusBad, trusted)

	_, unsigned := commitWith(t, nil)
	st, _ = v.VerifyCommit(unsigned)
	wantStatus(t, "unsigned", st, "", StatusUnsigned, "")

	// Signatures gpg itself makes over the payload, as git's gpg.program would.
	gpgSign := func(args ...string) string {
		args = append([]string{"--armor", "--detach-sign"}, args...)
		return g.gpg(t, payload, args...).stdout
	}
	st, name = v.Verify(payload, gpgSign("-u", trusted))
	wantStatus(t, "gpg --detach-sign", st, name, StatusGood, trusted)
	st, name = v.Verify(payload, gpgSign("-u", trusted, "--digest-algo", "SHA1"))
	wantStatus(t, "SHA-1 signature", st, name, StatusBad, trusted)
	st, _ = v.Verify(payload, gpgSign("-u", other, "-u", trusted))
	wantStatus(t, "two signatures in one block", st, "", StatusBad, "*")
	st, _ = v.Verify(payload, signed.PGPSignature+signed.PGPSignature)
	wantStatus(t, "two blocks", st, "", StatusBad, "*")
	st, _ = v.Verify(payload, strings.Replace(signed.PGPSignature, "-----BEGIN PGP SIGNATURE-----", "-----BEGIN PGP MESSAGE-----", 1))
	wantStatus(t, "not a signature block", st, "", StatusBad, "*")

	// Both formats in one verifier.
	dir := t.TempDir()
	bot := genSSH(t, dir, "bot")
	allowed := writeFile(t, filepath.Join(dir, "allowed"), AllowedSignersLine("bot", bot.pub)+"\n", 0o644)
	both := newVerifier(t, []string{keyring}, []string{allowed})
	_, bySSH := commitWith(t, bot.s)
	for what, c := range map[string]*testCommit{"openpgp": {signed, trusted}, "ssh": {bySSH, "bot"}} {
		st, name := both.VerifyCommit(c.c)
		wantStatus(t, "both formats: "+what, st, name, StatusGood, c.name)
	}
}

// TestVerifierOpenPGPKeyLifecycle: key validity is judged when the key
// signed. A key that expired later still vouches for what it signed while
// valid, and so does one retired later as "superseded"; a later revocation
// for compromise, or without a reason, voids every signature of the key.
func TestVerifierOpenPGPKeyLifecycle(t *testing.T) {
	g := newGPGHome(t)
	payload := []byte("tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor a <a@b> 1590969600 +0000\ncommitter a <a@b> 1590969600 +0000\n\nold deploy\n")
	past := []string{"--faked-system-time", "20200101T000000"}
	signIn2020 := func(fpr string) string {
		return g.gpg(t, payload, "--faked-system-time", "20200601T000000", "-u", fpr, "--armor", "--detach-sign").stdout
	}

	expired := g.genKey(t, "expired <e@example.com>", "ed25519", "sign", "1y", "", past...)
	superseded := g.genKey(t, "superseded <s@example.com>", "ed25519", "sign", "never", "", past...)
	compromised := g.genKey(t, "compromised <c@example.com>", "ed25519", "sign", "never", "", past...)
	noReason := g.genKey(t, "noreason <n@example.com>", "ed25519", "sign", "never", "", past...)
	sigs := map[string]string{}
	for _, fpr := range []string{expired, superseded, compromised, noReason} {
		sigs[fpr] = signIn2020(fpr)
	}
	all := []string{expired, superseded, compromised, noReason}
	future := g.genKey(t, "future <f@example.com>", "ed25519", "sign", "never", "", past...)
	futureSig := g.gpg(t, payload, "--faked-system-time", "20990101T000000", "-u", future, "--armor", "--detach-sign").stdout
	st, name := newVerifier(t, []string{g.exportPublic(t, future)}, nil).Verify(payload, futureSig)
	wantStatus(t, "signature dated 2099", st, name, StatusBad, future)

	v := newVerifier(t, []string{g.exportPublic(t, all...)}, nil)
	for _, fpr := range all {
		st, name := v.Verify(payload, sigs[fpr])
		wantStatus(t, "before revocation "+fpr, st, name, StatusGood, fpr)
	}

	// Revoke now, with gpg's menu: 0 no reason, 1 compromised, 2 superseded.
	for fpr, reason := range map[string]string{noReason: "0", compromised: "1", superseded: "2"} {
		cert := mustRun(t, "", g.env, []byte("y\n"+reason+"\ntest\n\ny\n"), "gpg", "--no-tty", "--command-fd", "0",
			"--pinentry-mode", "loopback", "--passphrase", "", "--armor", "--gen-revoke", fpr).stdout
		g.gpg(t, []byte(cert), "--import")
	}
	v = newVerifier(t, []string{g.exportPublic(t, all...)}, nil)
	for fpr, want := range map[string]Status{expired: StatusGood, superseded: StatusGood, compromised: StatusBad, noReason: StatusBad} {
		st, name := v.Verify(payload, sigs[fpr])
		wantStatus(t, "after revocation "+fpr, st, name, want, fpr)
	}
}

type testCommit struct {
	c    *object.Commit
	name string
}

func TestNewVerifierErrors(t *testing.T) {
	g := newGPGHome(t)
	fpr := g.genKey(t, "k <k@example.com>", "ed25519", "sign", "never", "")
	dir := t.TempDir()
	onlyComments := writeFile(t, filepath.Join(dir, "comments"), "# nobody yet\n\n", 0o644)
	garbage := writeFile(t, filepath.Join(dir, "garbage"), "not a key\n", 0o644)
	for _, tc := range []struct {
		name              string
		keyrings, allowed []string
		is                error
		want              string
	}{
		{"missing keyring", []string{filepath.Join(dir, "nope.asc")}, nil, fs.ErrNotExist, "nope.asc"},
		{"missing allowed signers", nil, []string{filepath.Join(dir, "nope")}, fs.ErrNotExist, "nope"},
		{"empty allowed signers", nil, []string{onlyComments}, nil, "no keys"},
		{"garbage keyring", []string{garbage}, nil, nil, "no armored OpenPGP keys"},
		{"secret key as trusted key", []string{g.exportSecret(t, "", fpr)}, nil, nil, "holds the secret key " + fpr},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewVerifier(tc.keyrings, tc.allowed)
			if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.is != nil && !errors.Is(err, tc.is)) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if v, err := NewVerifier(nil, nil); err != nil {
		t.Errorf("no trusted keys: %v", err)
	} else if st, _ := v.Verify([]byte("x"), "-----BEGIN SSH SIGNATURE-----\n-----END SSH SIGNATURE-----"); st != StatusBad {
		t.Errorf("empty verifier, empty blob: %s", st)
	}
}

// TestVerifierSSHRSAAlgorithms: RSA sshsig signatures must use SHA-2
// (rsa-sha2-256/512); legacy ssh-rsa (SHA-1) is refused, as by ssh-keygen.
func TestVerifierSSHRSAAlgorithms(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "rsa")
	sshKeygen(t, key, "rsa", "2048", "")
	s := loadSSH(t, key, "").(*sshSigner)
	allowed := allowedSignersFor(t, dir, s)
	v := newVerifier(t, nil, []string{allowed})
	payload := []byte("tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\ncommitter a <a@b> 1 +0000\n\nm\n")
	digest := sha512.Sum512(payload)
	data := sshsigSignedData("git", "sha512", digest[:])
	for algo, want := range map[string]Status{ssh.KeyAlgoRSA: StatusBad, ssh.KeyAlgoRSASHA256: StatusGood, ssh.KeyAlgoRSASHA512: StatusGood} {
		sig, err := s.signer.(ssh.AlgorithmSigner).SignWithAlgorithm(rand.Reader, data, algo)
		if err != nil {
			t.Fatal(err)
		}
		armored := string(armorSSHSIG(sshsigBlob(s.PublicKey(), "git", "sha512", sig)))
		st, _ := v.Verify(payload, armored)
		wantStatus(t, algo, st, "", want, "*")
	}
}
