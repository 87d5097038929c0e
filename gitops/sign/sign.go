// Package sign signs the commits shipbot writes and verifies commit
// signatures for `shipbot audit`.
//
// Two formats are supported, both stored in the commit's gpgsig header the
// way git itself stores them, so that stock `git verify-commit` accepts them:
//
//   - OpenPGP: an armored detached signature ("-----BEGIN PGP SIGNATURE-----")
//     over the commit encoded without its signature, as `gpg --detach-sign`
//     makes it. git checks it with gpg and the verifier's keyring.
//   - SSH: an armored SSHSIG blob ("-----BEGIN SSH SIGNATURE-----", OpenSSH's
//     PROTOCOL.sshsig) in namespace "git" with hash sha512, as
//     `ssh-keygen -Y sign -n git` makes it. git checks it with
//     `ssh-keygen -Y verify` and gpg.ssh.allowedSignersFile.
//
// Secrets (private keys, passphrases) never appear in errors, in Identity or
// in anything this package logs (it logs nothing).
package sign

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// Signer signs commit payloads. It satisfies go-git's git.Signer, so it can be
// set as CommitOptions.Signer both in go-git and in gitops/repo.
type Signer interface {
	// Sign returns the armored signature of message, ready for the commit's
	// gpgsig header (commit.PGPSignature).
	Sign(message io.Reader) ([]byte, error)
	// Format is "openpgp" or "ssh" (git's gpg.format).
	Format() string
	// Identity names the key for logs: the OpenPGP primary key fingerprint
	// (40 upper-case hex digits) or the SSH key's SHA256 fingerprint
	// ("SHA256:..."). Never secret.
	Identity() string
}

// Formats reported by Signer.Format.
const (
	FormatOpenPGP = "openpgp"
	FormatSSH     = "ssh"
)

// ErrWrongPassphrase is wrapped by the Load functions when the passphrase does
// not decrypt the key. The error never contains the passphrase.
var ErrWrongPassphrase = errors.New("wrong passphrase")

// ErrPassphraseRequired is wrapped by the Load functions when the key is
// encrypted and no passphrase file was given.
var ErrPassphraseRequired = errors.New("key is passphrase-protected but no passphrase file was given")

// maxKeyFile bounds what the loaders read: key files are a few KiB; anything
// far larger is a wrong path, not a key.
const maxKeyFile = 1 << 20

// readKeyFile reads a key or keyring file. The error names the file and the
// cause (missing, unreadable, too large) and never its contents.
func readKeyFile(what, path string) ([]byte, error) {
	if path == "" {
		return nil, fmt.Errorf("%s: no file given", what)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: read %s: %w", what, path, err)
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("%s: %s is larger than %d bytes; not a key file", what, path, maxKeyFile)
	}
	return data, nil
}

// readPassphrase returns the first line of the passphrase file without its
// line ending (as gpg --passphrase-file does), or nil if path is "". Other
// whitespace is kept: it may be part of the passphrase. The caller should
// wipe the result when done with it.
func readPassphrase(what, path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	data, err := readKeyFile(what+" passphrase file", path)
	if err != nil {
		return nil, err
	}
	line := data
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	line = bytes.TrimSuffix(line, []byte("\r"))
	pass := make([]byte, len(line))
	copy(pass, line)
	wipe(data)
	if len(pass) == 0 {
		return nil, fmt.Errorf("%s passphrase file %s: empty passphrase", what, path)
	}
	return pass, nil
}

// wipe overwrites secret bytes (best effort: the GC may have copied them).
func wipe(b []byte) {
	for i := range b {
		b[i] = 0
	}
}
