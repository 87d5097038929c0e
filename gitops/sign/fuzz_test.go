package sign

import (
	"path/filepath"
	"strings"
	"testing"
)

// FuzzVerify: whatever a repository holds in a gpgsig header, Verify must
// not panic, and only a real signature by the trusted key is good.
func FuzzVerify(f *testing.F) {
	dir := f.TempDir()
	pub, err := GenerateSSH(filepath.Join(dir, "k"), "")
	if err != nil {
		f.Fatal(err)
	}
	s, err := LoadSSH(filepath.Join(dir, "k"), "")
	if err != nil {
		f.Fatal(err)
	}
	allowed := filepath.Join(dir, "allowed")
	if err := writeFileErr(allowed, AllowedSignersLine("bot", pub)+"\n"); err != nil {
		f.Fatal(err)
	}
	v, err := NewVerifier(nil, []string{allowed})
	if err != nil {
		f.Fatal(err)
	}
	payload := []byte("tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\ncommitter a <a@b> 1 +0000\n\nm\n")
	sig, err := s.Sign(strings.NewReader(string(payload)))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(payload, string(sig))
	f.Add(payload, "-----BEGIN SSH SIGNATURE-----END SSH SIGNATURE-----")
	f.Add(payload, "-----BEGIN PGP SIGNATURE-----\n\nwl4EABYIAAYFAmcAAAAACgkQAAAAAAAAAAA=\n-----END PGP SIGNATURE-----\n")
	f.Add([]byte{}, "")
	f.Fuzz(func(t *testing.T, p []byte, sg string) {
		st, _ := v.Verify(p, sg)
		if st == StatusGood && (string(p) != string(payload) || !strings.Contains(sg, "SSH SIGNATURE")) {
			t.Fatalf("good for payload %q, signature %q", p, sg)
		}
	})
}
