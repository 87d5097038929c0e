package sign

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
)

// SSHSIG constants from OpenSSH's PROTOCOL.sshsig.
const (
	sshsigMagic     = "SSHSIG"
	sshsigVersion   = 1
	sshsigBegin     = "-----BEGIN SSH SIGNATURE-----"
	sshsigEnd       = "-----END SSH SIGNATURE-----"
	sshsigLineWidth = 70 // what ssh-keygen -Y sign writes

	// GitNamespace is the SSHSIG namespace git signs and verifies commits in.
	GitNamespace = "git"

	minRSABitsSign   = 2048 // what shipbot accepts to sign with
	minRSABitsVerify = 1024 // what ssh-keygen accepts to verify
)

type sshSigner struct {
	signer ssh.Signer
	algo   string // signature algorithm: the key type, or rsa-sha2-512 for RSA
	fp     string
}

// LoadSSH reads an SSH private key (OpenSSH format as written by ssh-keygen
// or GenerateSSH; PEM/PKCS#8 also work) and returns a Signer producing SSHSIG
// signatures in namespace "git" with hash sha512, which git verifies with
// gpg.format=ssh. Ed25519, ECDSA (P-256/384/521) and RSA (>= 2048 bits,
// signed with rsa-sha2-512) keys are supported.
//
// passphraseFile may be "" for an unencrypted key; otherwise its first line
// is the passphrase.
func LoadSSH(privateKeyFile, passphraseFile string) (Signer, error) {
	const what = "ssh signing key"
	data, err := readKeyFile(what, privateKeyFile)
	if err != nil {
		return nil, err
	}
	defer wipe(data)
	if !bytes.Contains(data, []byte("PRIVATE KEY-----")) {
		if _, _, _, _, perr := ssh.ParseAuthorizedKey(data); perr == nil {
			return nil, fmt.Errorf("%s: %s is a public key, not a private key", what, privateKeyFile)
		}
		return nil, fmt.Errorf("%s: %s is not a PEM/OpenSSH private key", what, privateKeyFile)
	}

	signer, err := ssh.ParsePrivateKey(data)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		if passphraseFile == "" {
			return nil, fmt.Errorf("%s %s: %w", what, privateKeyFile, ErrPassphraseRequired)
		}
		pass, perr := readPassphrase(what, passphraseFile)
		if perr != nil {
			return nil, perr
		}
		signer, err = ssh.ParsePrivateKeyWithPassphrase(data, pass)
		wipe(pass)
		if errors.Is(err, x509.IncorrectPasswordError) {
			return nil, fmt.Errorf("%s %s: cannot decrypt: %w", what, privateKeyFile, ErrWrongPassphrase)
		}
	}
	if err != nil {
		// x/crypto's parse errors describe the format problem, never the
		// key bytes.
		return nil, fmt.Errorf("%s %s: %w", what, privateKeyFile, err)
	}
	return newSSHSigner(signer)
}

func newSSHSigner(signer ssh.Signer) (*sshSigner, error) {
	pub := signer.PublicKey()
	s := &sshSigner{signer: signer, algo: pub.Type(), fp: ssh.FingerprintSHA256(pub)}
	switch pub.Type() {
	case ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521:
	case ssh.KeyAlgoRSA:
		if bits := rsaBits(pub); bits < minRSABitsSign {
			return nil, fmt.Errorf("ssh signing key %s: RSA key of %d bits is too small (need %d)", s.fp, bits, minRSABitsSign)
		}
		if _, ok := signer.(ssh.AlgorithmSigner); !ok {
			return nil, fmt.Errorf("ssh signing key %s: RSA signer cannot sign with rsa-sha2-512", s.fp)
		}
		s.algo = ssh.KeyAlgoRSASHA512
	default:
		return nil, fmt.Errorf("ssh signing key %s: unsupported key type %s (use ed25519, ecdsa or rsa)", s.fp, pub.Type())
	}
	return s, nil
}

func rsaBits(pub ssh.PublicKey) int {
	cpk, ok := pub.(ssh.CryptoPublicKey)
	if !ok {
		return 0
	}
	k, ok := cpk.CryptoPublicKey().(*rsa.PublicKey)
	if !ok {
		return 0
	}
	return k.N.BitLen()
}

func (s *sshSigner) Format() string   { return FormatSSH }
func (s *sshSigner) Identity() string { return s.fp }

// PublicKey returns the signer's public key (for allowed_signers lines).
func (s *sshSigner) PublicKey() ssh.PublicKey { return s.signer.PublicKey() }

// Sign returns the armored SSHSIG signature of message in namespace "git".
func (s *sshSigner) Sign(message io.Reader) ([]byte, error) {
	h := sha512.New()
	if _, err := io.Copy(h, message); err != nil {
		return nil, fmt.Errorf("ssh sign: read message: %w", err)
	}
	data := sshsigSignedData(GitNamespace, "sha512", h.Sum(nil))
	var (
		sig *ssh.Signature
		err error
	)
	if as, ok := s.signer.(ssh.AlgorithmSigner); ok && s.algo == ssh.KeyAlgoRSASHA512 {
		sig, err = as.SignWithAlgorithm(rand.Reader, data, s.algo)
	} else {
		sig, err = s.signer.Sign(rand.Reader, data)
	}
	if err != nil {
		return nil, fmt.Errorf("ssh sign with %s: %w", s.fp, err)
	}
	blob := sshsigBlob(s.signer.PublicKey(), GitNamespace, "sha512", sig)
	return armorSSHSIG(blob), nil
}

// sshString appends an SSH wire "string" (uint32 length, bytes).
func sshString(b []byte, s []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// sshsigSignedData is what an SSHSIG signature signs (PROTOCOL.sshsig §3).
func sshsigSignedData(namespace, hashAlg string, digest []byte) []byte {
	b := []byte(sshsigMagic)
	b = sshString(b, []byte(namespace))
	b = sshString(b, nil) // reserved
	b = sshString(b, []byte(hashAlg))
	return sshString(b, digest)
}

// sshsigBlob is the signature blob (PROTOCOL.sshsig §2).
func sshsigBlob(pub ssh.PublicKey, namespace, hashAlg string, sig *ssh.Signature) []byte {
	b := []byte(sshsigMagic)
	b = binary.BigEndian.AppendUint32(b, sshsigVersion)
	b = sshString(b, pub.Marshal())
	b = sshString(b, []byte(namespace))
	b = sshString(b, nil) // reserved
	b = sshString(b, []byte(hashAlg))
	return sshString(b, ssh.Marshal(sig))
}

func armorSSHSIG(blob []byte) []byte {
	enc := base64.StdEncoding.EncodeToString(blob)
	var out bytes.Buffer
	out.WriteString(sshsigBegin + "\n")
	for len(enc) > 0 {
		n := min(sshsigLineWidth, len(enc))
		out.WriteString(enc[:n])
		out.WriteByte('\n')
		enc = enc[n:]
	}
	out.WriteString(sshsigEnd + "\n")
	return out.Bytes()
}

// sshsig is a parsed SSHSIG blob.
type sshsig struct {
	pub       ssh.PublicKey
	namespace string
	hashAlg   string
	sig       ssh.Signature
}

// parseSSHSIG parses one armored SSHSIG signature and nothing else.
func parseSSHSIG(armored string) (*sshsig, error) {
	s := strings.TrimSpace(armored)
	if len(s) < len(sshsigBegin)+len(sshsigEnd) || !strings.HasPrefix(s, sshsigBegin) || !strings.HasSuffix(s, sshsigEnd) {
		return nil, errors.New("not an armored SSH signature")
	}
	body := s[len(sshsigBegin) : len(s)-len(sshsigEnd)]
	if strings.Contains(body, "-----") {
		return nil, errors.New("more than one armored block")
	}
	body = strings.Join(strings.Fields(body), "")
	blob, err := base64.StdEncoding.DecodeString(body)
	if err != nil {
		return nil, fmt.Errorf("bad base64: %w", err)
	}
	r := &wireReader{b: blob}
	if string(r.bytes(len(sshsigMagic))) != sshsigMagic {
		return nil, errors.New("bad magic")
	}
	if v := r.uint32(); v != sshsigVersion {
		return nil, fmt.Errorf("unsupported SSHSIG version %d", v)
	}
	pubBytes := r.string()
	ns := r.string()
	r.string() // reserved: ignored, as PROTOCOL.sshsig says
	hashAlg := r.string()
	sigBytes := r.string()
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, errors.New("trailing data after signature blob")
	}
	pub, err := ssh.ParsePublicKey(pubBytes)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	out := &sshsig{pub: pub, namespace: string(ns), hashAlg: string(hashAlg)}
	if err := ssh.Unmarshal(sigBytes, &out.sig); err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	return out, nil
}

// verify checks the signature over message in namespace ns.
func (s *sshsig) verify(message []byte, ns string) error {
	if s.namespace != ns {
		return fmt.Errorf("signature is for namespace %q, not %q", s.namespace, ns)
	}
	var h hash.Hash
	switch s.hashAlg {
	case "sha512":
		h = sha512.New()
	case "sha256":
		h = sha256.New()
	default:
		return fmt.Errorf("unsupported hash algorithm %q", s.hashAlg)
	}
	switch s.pub.Type() {
	case ssh.KeyAlgoRSA:
		// As ssh-keygen: RSA/SHA-1 ("ssh-rsa") signatures are refused.
		if s.sig.Format != ssh.KeyAlgoRSASHA256 && s.sig.Format != ssh.KeyAlgoRSASHA512 {
			return fmt.Errorf("RSA signature algorithm %q not accepted", s.sig.Format)
		}
		if bits := rsaBits(s.pub); bits < minRSABitsVerify {
			return fmt.Errorf("RSA key of %d bits is too small", bits)
		}
	default:
		// Verify checks it too; say so clearly.
		if s.sig.Format != s.pub.Type() {
			return fmt.Errorf("signature algorithm %q does not match key type %q", s.sig.Format, s.pub.Type())
		}
	}
	h.Write(message)
	return s.pub.Verify(sshsigSignedData(ns, s.hashAlg, h.Sum(nil)), &s.sig)
}

// wireReader reads SSH wire encoding; the first error sticks.
type wireReader struct {
	b   []byte
	err error
}

func (r *wireReader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = errors.New("truncated signature blob")
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *wireReader) uint32() uint32 {
	b := r.bytes(4)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}

func (r *wireReader) string() []byte {
	n := r.uint32()
	if r.err != nil {
		return nil
	}
	if uint64(n) > uint64(len(r.b)) {
		r.err = errors.New("truncated signature blob")
		return nil
	}
	return r.bytes(int(n))
}

// GenerateSSH creates a new ed25519 key pair: the private key in OpenSSH
// format at privateKeyFile (mode 0600) and the public key, in
// authorized_keys format, at privateKeyFile+".pub" (mode 0644), as ssh-keygen
// does. The private key is not encrypted (shipbot reads it unattended). It
// refuses to overwrite an existing private key. The parent directory is
// created (0700) if missing.
func GenerateSSH(privateKeyFile string, comment string) (ssh.PublicKey, error) {
	if privateKeyFile == "" {
		return nil, errors.New("generate ssh key: no file given")
	}
	pubKey, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate ssh key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, fmt.Errorf("generate ssh key: %w", err)
	}
	pemBytes := pem.EncodeToMemory(block)
	defer wipe(pemBytes)
	defer wipe(priv)
	pub, err := ssh.NewPublicKey(pubKey)
	if err != nil {
		return nil, fmt.Errorf("generate ssh key: %w", err)
	}

	if err := os.MkdirAll(filepath.Dir(privateKeyFile), 0o700); err != nil {
		return nil, fmt.Errorf("generate ssh key: %w", err)
	}
	f, err := os.OpenFile(privateKeyFile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("generate ssh key: %w", err)
	}
	_, werr := f.Write(pemBytes)
	cerr := f.Close()
	if werr != nil || cerr != nil {
		os.Remove(privateKeyFile)
		return nil, fmt.Errorf("generate ssh key: write %s: %w", privateKeyFile, errors.Join(werr, cerr))
	}

	line := bytes.TrimSuffix(ssh.MarshalAuthorizedKey(pub), []byte("\n"))
	if comment != "" {
		line = append(append(line, ' '), comment...)
	}
	line = append(line, '\n')
	if err := os.WriteFile(privateKeyFile+".pub", line, 0o644); err != nil {
		return nil, fmt.Errorf("generate ssh key: write public key: %w", err)
	}
	return pub, nil
}

// AllowedSignersLine returns the line trusting pub for git commit signatures
// of principal in git's gpg.ssh.allowedSignersFile (ssh-keygen's
// ALLOWED SIGNERS format):
//
//	shipbot@example.com namespaces="git" ssh-ed25519 AAAA...
//
// The principal is quoted if it contains whitespace; double quotes in it are
// dropped (the format cannot escape them); an empty principal becomes "*".
// git only reports the principal, it does not match it against the committer.
// There is no trailing newline.
func AllowedSignersLine(principal string, pub ssh.PublicKey) string {
	principal = strings.ReplaceAll(principal, `"`, "")
	if principal == "" {
		principal = "*"
	}
	if strings.ContainsAny(principal, " \t") {
		principal = `"` + principal + `"`
	}
	key := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
	return principal + ` namespaces="` + GitNamespace + `" ` + key
}
