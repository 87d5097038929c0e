package sign

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	openpgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

type openpgpSigner struct {
	mu     sync.Mutex // go-crypto does not document Entity as safe for concurrent use
	entity *openpgp.Entity
	keyID  uint64 // the (sub)key that signs
	fpr    string // primary key fingerprint
}

// LoadOpenPGP reads an armored OpenPGP secret key (as exported by
// `gpg --export-secret-keys --armor KEYID`) and returns a Signer producing
// armored detached signatures, which git verifies with gpg.format=openpgp.
//
// The file must hold exactly one secret key. passphraseFile may be "" for an
// unencrypted key; otherwise its first line is the passphrase. The key must
// be able to sign now: not expired or revoked, and with a signing-capable
// primary key or subkey whose secret part is present (not a gpg stub).
func LoadOpenPGP(armoredKeyFile, passphraseFile string) (Signer, error) {
	const what = "openpgp signing key"
	data, err := readKeyFile(what, armoredKeyFile)
	if err != nil {
		return nil, err
	}
	defer wipe(data)
	block, err := armor.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %s is not an armored OpenPGP key (export it with gpg --export-secret-keys --armor)", what, armoredKeyFile)
	}
	switch block.Type {
	case openpgp.PrivateKeyType:
	case openpgp.PublicKeyType:
		return nil, fmt.Errorf("%s: %s holds a public key, not a private key (export it with gpg --export-secret-keys --armor)", what, armoredKeyFile)
	default:
		return nil, fmt.Errorf("%s: %s holds a %q block, not a private key", what, armoredKeyFile, block.Type)
	}
	entities, err := openpgp.ReadKeyRing(block.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, armoredKeyFile, err)
	}
	var secret []*openpgp.Entity
	for _, e := range entities {
		if e.PrivateKey != nil {
			secret = append(secret, e)
		}
	}
	switch len(secret) {
	case 0:
		return nil, fmt.Errorf("%s: %s holds no private key", what, armoredKeyFile)
	case 1:
	default:
		var fprs []string
		for _, e := range secret {
			fprs = append(fprs, fingerprint(e.PrimaryKey))
		}
		return nil, fmt.Errorf("%s: %s holds %d secret keys (%s); export only the one shipbot signs with",
			what, armoredKeyFile, len(secret), strings.Join(fprs, ", "))
	}
	e := secret[0]
	fpr := fingerprint(e.PrimaryKey)
	now := time.Now()
	key, ok := e.SigningKey(now)
	if !ok {
		return nil, fmt.Errorf("%s %s: key %s cannot sign: %s", what, armoredKeyFile, fpr, whyCannotSign(e, now))
	}
	priv := key.PrivateKey
	if priv == nil {
		return nil, fmt.Errorf("%s %s: key %s: the secret part of signing key %s is missing",
			what, armoredKeyFile, fpr, fingerprint(key.PublicKey))
	}
	if priv.Dummy() {
		return nil, fmt.Errorf("%s %s: key %s: signing key %s is a stub without secret material (on a smartcard, or exported with --export-secret-subkeys)",
			what, armoredKeyFile, fpr, fingerprint(key.PublicKey))
	}
	if priv.Encrypted {
		if passphraseFile == "" {
			return nil, fmt.Errorf("%s %s: key %s: %w", what, armoredKeyFile, fpr, ErrPassphraseRequired)
		}
		pass, err := readPassphrase(what, passphraseFile)
		if err != nil {
			return nil, err
		}
		err = priv.Decrypt(pass)
		wipe(pass)
		if err != nil {
			// go-crypto reports a checksum or key-validation failure; it never
			// echoes the passphrase, but the message adds nothing, so drop it.
			return nil, fmt.Errorf("%s %s: cannot decrypt key %s: %w", what, armoredKeyFile, fpr, ErrWrongPassphrase)
		}
	}
	return &openpgpSigner{entity: e, keyID: key.PublicKey.KeyId, fpr: fpr}, nil
}

// whyCannotSign explains why SigningKey found no key.
func whyCannotSign(e *openpgp.Entity, now time.Time) string {
	if e.Revoked(now) {
		return "it is revoked"
	}
	selfSig, ident := e.PrimarySelfSignature()
	if selfSig == nil {
		return "it has no valid self-signature"
	}
	if e.PrimaryKey.KeyExpired(selfSig, now) {
		if selfSig.KeyLifetimeSecs != nil {
			exp := e.PrimaryKey.CreationTime.Add(time.Duration(*selfSig.KeyLifetimeSecs) * time.Second)
			return "it expired on " + exp.UTC().Format(time.RFC3339)
		}
		return "it has expired"
	}
	if selfSig.SigExpired(now) {
		return "its self-signature has expired"
	}
	if ident != nil && ident.Revoked(now) {
		return "its primary user ID is revoked"
	}
	return "it has no usable signing key (no unexpired, unrevoked primary key or subkey with the sign capability)"
}

func (s *openpgpSigner) Format() string   { return FormatOpenPGP }
func (s *openpgpSigner) Identity() string { return s.fpr }

// Sign returns an armored detached signature of message, as
// `gpg --detach-sign --armor` writes it.
func (s *openpgpSigner) Sign(message io.Reader) ([]byte, error) {
	cfg := &packet.Config{DefaultHash: crypto.SHA256, SigningKeyId: s.keyID}
	var buf bytes.Buffer
	s.mu.Lock()
	err := openpgp.ArmoredDetachSign(&buf, s.entity, message, cfg)
	s.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("openpgp sign with key %s: %w", s.fpr, err)
	}
	if !bytes.HasSuffix(buf.Bytes(), []byte("\n")) {
		buf.WriteByte('\n')
	}
	return buf.Bytes(), nil
}

// fingerprint formats a key fingerprint as gpg does (upper-case hex).
func fingerprint(k *packet.PublicKey) string {
	return fmt.Sprintf("%X", k.Fingerprint)
}

// readArmoredKeyRing reads every armored key block in data (gpg --export
// --armor of several keys writes one block; files may also concatenate
// several).
func readArmoredKeyRing(data []byte) (openpgp.EntityList, error) {
	var all openpgp.EntityList
	rest := data
	for {
		i := bytes.Index(rest, []byte("-----BEGIN PGP "))
		if i < 0 {
			break
		}
		rest = rest[i:]
		block, err := armor.Decode(bytes.NewReader(rest))
		if err != nil {
			return nil, err
		}
		if block.Type != openpgp.PublicKeyType && block.Type != openpgp.PrivateKeyType {
			return nil, fmt.Errorf("armored %q block is not a key", block.Type)
		}
		el, err := openpgp.ReadKeyRing(block.Body)
		if err != nil {
			return nil, err
		}
		all = append(all, el...)
		// Move past this block's END line.
		end := bytes.Index(rest, []byte("-----END "+block.Type+"-----"))
		if end < 0 {
			return nil, errors.New("unterminated armored block")
		}
		rest = rest[end+len("-----END "+block.Type+"-----"):]
	}
	if len(all) == 0 {
		return nil, errors.New("no armored OpenPGP keys found")
	}
	return all, nil
}

// maxClockSkew is how far in the future an OpenPGP signature's creation time
// may be.
const maxClockSkew = 5 * time.Minute

// verifyOpenPGP checks one armored detached signature over payload against
// the trusted keyring.
//
// Key validity (expiry, revocation) is checked at the signature's creation
// time, so commits signed before a key expired or was retired stay good, as
// an audit of history needs; a signature that is also valid now (e.g. the
// key's expiry was extended after signing) is good too. A revocation for
// compromise or without a "superseded"/"retired" reason voids every signature
// of the key.
func verifyOpenPGP(keyring openpgp.EntityList, payload []byte, signature string) (Status, string) {
	raw, err := dearmorOne(signature, openpgp.SignatureType)
	if err != nil {
		return StatusBad, ""
	}
	pr := packet.NewReader(bytes.NewReader(raw))
	p, err := pr.Next()
	if err != nil {
		return StatusBad, ""
	}
	sig, ok := p.(*packet.Signature)
	if !ok || sig.IssuerKeyId == nil {
		return StatusBad, ""
	}
	if _, err := pr.Next(); err != io.EOF {
		return StatusBad, "" // more than one packet: not one signature
	}
	issuer := fmt.Sprintf("%016X", *sig.IssuerKeyId)
	if sig.IssuerFingerprint != nil {
		issuer = fmt.Sprintf("%X", sig.IssuerFingerprint)
	}
	keys := keyring.KeysByIdUsage(*sig.IssuerKeyId, packet.KeyFlagSign)
	if len(keys) == 0 {
		return StatusUnknownKey, issuer
	}
	name := fingerprint(keys[0].Entity.PrimaryKey)
	if sig.SigType != packet.SigTypeBinary && sig.SigType != packet.SigTypeText {
		return StatusBad, name
	}
	switch sig.Hash {
	case crypto.SHA224, crypto.SHA256, crypto.SHA384, crypto.SHA512, crypto.SHA3_256, crypto.SHA3_512:
	default:
		return StatusBad, name // MD5, SHA-1, RIPEMD-160: forgeable or deprecated
	}
	if sig.CreationTime.After(time.Now().Add(maxClockSkew)) {
		return StatusBad, name
	}
	check := func(at time.Time) (*openpgp.Entity, error) {
		cfg := &packet.Config{Time: func() time.Time { return at }}
		return openpgp.CheckDetachedSignature(keyring, bytes.NewReader(payload), bytes.NewReader(raw), cfg)
	}
	signer, err := check(sig.CreationTime)
	if errors.Is(err, openpgperrors.ErrKeyExpired) || errors.Is(err, openpgperrors.ErrSignatureExpired) {
		signer, err = check(time.Now())
	}
	if err != nil || signer == nil {
		return StatusBad, name
	}
	name = fingerprint(signer.PrimaryKey)
	if hardRevoked(signer, *sig.IssuerKeyId) {
		return StatusBad, name
	}
	return StatusGood, name
}

// hardRevoked reports whether the entity's primary key, or the subkey with
// keyID, carries a revocation that is not a soft "superseded" or "retired"
// one; such a revocation means the key may be compromised, so no signature
// of it can be trusted whatever its date.
func hardRevoked(e *openpgp.Entity, keyID uint64) bool {
	revs := e.Revocations
	for _, sk := range e.Subkeys {
		if sk.PublicKey.KeyId == keyID {
			revs = append(revs[:len(revs):len(revs)], sk.Revocations...)
		}
	}
	for _, r := range revs {
		if r.RevocationReason == nil {
			return true
		}
		switch *r.RevocationReason {
		case packet.KeySuperseded, packet.KeyRetired:
		default:
			return true
		}
	}
	return false
}

// dearmorOne decodes s, which must be exactly one armored block of the given
// type with nothing but whitespace around it.
func dearmorOne(s, blockType string) ([]byte, error) {
	s = strings.TrimSpace(s)
	begin, end := "-----BEGIN "+blockType+"-----", "-----END "+blockType+"-----"
	if !strings.HasPrefix(s, begin) || !strings.HasSuffix(s, end) {
		return nil, errors.New("not one armored " + blockType)
	}
	if strings.Count(s, "-----BEGIN ") != 1 || strings.Count(s, "-----END ") != 1 {
		return nil, errors.New("more than one armored block")
	}
	block, err := armor.Decode(strings.NewReader(s))
	if err != nil {
		return nil, err
	}
	if block.Type != blockType {
		return nil, errors.New("not one armored " + blockType)
	}
	return io.ReadAll(block.Body) // checks the CRC, if any, at the end
}
