package sign

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"golang.org/x/crypto/ssh"
)

// Status is the outcome of verifying a commit signature.
type Status string

// Statuses returned by Verifier.Verify. Only StatusGood means the commit is
// signed by a trusted key.
const (
	StatusGood       Status = "good"        // valid signature by a trusted key
	StatusBad        Status = "bad"         // malformed, or does not verify, or not acceptable (wrong namespace, weak hash, revoked key)
	StatusUnsigned   Status = "unsigned"    // no signature
	StatusUnknownKey Status = "unknown-key" // signed by a key that is not trusted (for git, at that time)
)

// Verifier checks commit signatures against trusted keys: OpenPGP public
// keys and SSH allowed_signers entries. It is safe for concurrent use.
type Verifier struct {
	keyring openpgp.EntityList
	signers []allowedSigner
}

// NewVerifier loads the trusted keys: armored OpenPGP public keys (as
// `gpg --export --armor` writes them; a file may hold several keys or
// blocks) and allowed_signers files in the format of git's
// gpg.ssh.allowedSignersFile (ssh-keygen(1), ALLOWED SIGNERS: comments, blank
// lines, principals, options namespaces=, valid-after=, valid-before=,
// cert-authority). A missing or unreadable file, a file without keys, a
// secret key where a public one belongs, or a malformed line is an error.
func NewVerifier(openpgpArmoredKeyRings []string, allowedSignersFiles []string) (*Verifier, error) {
	v := &Verifier{}
	for _, path := range openpgpArmoredKeyRings {
		data, err := readKeyFile("openpgp keyring", path)
		if err != nil {
			return nil, err
		}
		el, err := readArmoredKeyRing(data)
		if err != nil {
			return nil, fmt.Errorf("openpgp keyring %s: %w", path, err)
		}
		for _, e := range el {
			if e.PrivateKey != nil {
				wipe(data)
				return nil, fmt.Errorf("openpgp keyring %s: holds the secret key %s; give the public key (gpg --export --armor)",
					path, fingerprint(e.PrimaryKey))
			}
		}
		v.keyring = append(v.keyring, el...)
	}
	for _, path := range allowedSignersFiles {
		data, err := readKeyFile("allowed signers", path)
		if err != nil {
			return nil, err
		}
		entries, err := parseAllowedSigners(path, data)
		if err != nil {
			return nil, err
		}
		if len(entries) == 0 {
			return nil, fmt.Errorf("allowed signers %s: no keys", path)
		}
		v.signers = append(v.signers, entries...)
	}
	return v, nil
}

// Verify checks a commit's signature: payload is the commit encoded without
// its signature, signature is commit.PGPSignature (the gpgsig header).
//
// The second result names the key when known: for OpenPGP the primary key
// fingerprint of the trusted key (or, for StatusUnknownKey, the issuer
// fingerprint or key ID from the signature); for SSH the principals of the
// matching allowed_signers entry (or, for StatusUnknownKey, the key's SHA256
// fingerprint). It is "" for unsigned and unparsable signatures.
//
// SSH: the key embedded in the SSHSIG blob must be in an allowed_signers
// entry that accepts namespace "git" at the commit's committer time (as git
// passes it to ssh-keygen), else StatusUnknownKey; the signature must be in
// namespace "git", hash sha512 or sha256, and verify over payload, else
// StatusBad. Certificates are not supported (StatusUnknownKey).
//
// OpenPGP: the issuer must be a signing-capable key in the trusted keyring,
// else StatusUnknownKey; the signature must be a single signature packet
// with a SHA-2/SHA-3 hash that verifies over payload by a key that was valid
// when it signed (see verifyOpenPGP), else StatusBad.
func (v *Verifier) Verify(payload []byte, signature string) (Status, string) {
	s := strings.TrimSpace(signature)
	switch {
	case s == "":
		return StatusUnsigned, ""
	case strings.HasPrefix(s, sshsigBegin):
		return v.verifySSH(payload, s)
	case strings.HasPrefix(s, "-----BEGIN "+openpgp.SignatureType+"-----"):
		return verifyOpenPGP(v.keyring, payload, s)
	default:
		return StatusBad, "" // x509 or garbage: nothing this verifier can check
	}
}

func (v *Verifier) verifySSH(payload []byte, signature string) (Status, string) {
	sig, err := parseSSHSIG(signature)
	if err != nil {
		return StatusBad, ""
	}
	fp := ssh.FingerprintSHA256(sig.pub)
	if _, ok := sig.pub.(*ssh.Certificate); ok {
		return StatusUnknownKey, fp
	}
	at := committerTime(payload)
	key := sig.pub.Marshal()
	var trusted *allowedSigner
	for i := range v.signers {
		if v.signers[i].accepts(key, GitNamespace, at) {
			trusted = &v.signers[i]
			break
		}
	}
	if trusted == nil {
		return StatusUnknownKey, fp
	}
	if err := sig.verify(payload, GitNamespace); err != nil {
		return StatusBad, trusted.principals
	}
	return StatusGood, trusted.principals
}

// VerifyCommit verifies c's signature: it encodes c without its signature
// (for a commit read from a repository, the exact bytes that were signed) and
// calls Verify with c.PGPSignature.
func (v *Verifier) VerifyCommit(c *object.Commit) (Status, string) {
	if c == nil {
		return StatusBad, ""
	}
	if strings.TrimSpace(c.PGPSignature) == "" {
		return StatusUnsigned, ""
	}
	payload, err := CommitPayload(c)
	if err != nil {
		return StatusBad, ""
	}
	return v.Verify(payload, c.PGPSignature)
}

// CommitPayload returns the bytes a commit signature covers: the commit
// encoded without its signature headers.
func CommitPayload(c *object.Commit) ([]byte, error) {
	enc := &plumbing.MemoryObject{}
	if err := c.EncodeWithoutSignature(enc); err != nil {
		return nil, fmt.Errorf("encode commit: %w", err)
	}
	r, err := enc.Reader()
	if err != nil {
		return nil, fmt.Errorf("encode commit: %w", err)
	}
	defer r.Close()
	return io.ReadAll(r)
}

// committerTime returns the committer timestamp from a commit payload, which
// git gives ssh-keygen as the verification time for valid-after/valid-before;
// without one (not a commit), the current time.
func committerTime(payload []byte) time.Time {
	header, _, _ := bytes.Cut(payload, []byte("\n\n"))
	for _, line := range strings.Split(string(header), "\n") {
		rest, ok := strings.CutPrefix(line, "committer ")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 2 {
			break
		}
		sec, err := strconv.ParseInt(f[len(f)-2], 10, 64)
		if err != nil {
			break
		}
		return time.Unix(sec, 0)
	}
	return time.Now()
}
