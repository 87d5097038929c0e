package edit

import "strings"

// imageRef is a parsed container image reference:
// [registry[:port]/]repository[:tag][@digest].
type imageRef struct {
	Name   string // registry and repository, e.g. "localhost:5000/shop/checkout"
	Tag    string // "" if none
	Digest string // e.g. "sha256:…", "" if none
}

// parseImageRef parses an image reference. The tag is the part after the
// last colon that follows the last slash, so a registry port
// ("localhost:5000/app") is never mistaken for a tag. ok is false for
// strings that aren't image references (e.g. unrendered templates).
func parseImageRef(s string) (ref imageRef, ok bool) {
	rest := s
	if i := strings.IndexByte(rest, '@'); i >= 0 {
		ref.Digest = rest[i+1:]
		rest = rest[:i]
		if !validDigest(ref.Digest) {
			return imageRef{}, false
		}
	}
	slash := strings.LastIndexByte(rest, '/')
	if i := strings.LastIndexByte(rest, ':'); i > slash {
		ref.Tag = rest[i+1:]
		rest = rest[:i]
		if !validTag(ref.Tag) {
			return imageRef{}, false
		}
	}
	ref.Name = rest
	if !validName(ref.Name) {
		return imageRef{}, false
	}
	return ref, true
}

// String renders the reference back.
func (r imageRef) String() string {
	s := r.Name
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

// validTag checks the OCI tag grammar: [A-Za-z0-9_][A-Za-z0-9._-]{0,127}.
func validTag(t string) bool {
	if t == "" || len(t) > 128 {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(isAlnum(c) || c == '_' || (i > 0 && (c == '.' || c == '-'))) {
			return false
		}
	}
	return true
}

// validDigest checks algorithm:encoded, e.g. sha256:<64 hex>.
func validDigest(d string) bool {
	alg, enc, ok := strings.Cut(d, ":")
	if !ok || alg == "" || len(enc) < 32 {
		return false
	}
	for i := 0; i < len(alg); i++ {
		if c := alg[i]; !(isAlnum(c) || strings.IndexByte("+._-", c) >= 0) {
			return false
		}
	}
	for i := 0; i < len(enc); i++ {
		if c := enc[i]; !(isAlnum(c) || c == '=' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validName checks a registry/repository name loosely: slash-separated,
// non-empty components of letters, digits and separators; the first
// component (the registry) may carry a port.
func validName(n string) bool {
	if n == "" {
		return false
	}
	for i, comp := range strings.Split(n, "/") {
		if comp == "" {
			return false
		}
		if i == 0 {
			if host, port, ok := strings.Cut(comp, ":"); ok {
				if host == "" || port == "" || !allDigits(port) {
					return false
				}
				comp = host
			}
		}
		for j := 0; j < len(comp); j++ {
			if c := comp[j]; !(isAlnum(c) || c == '.' || c == '_' || c == '-') {
				return false
			}
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// imageNames are the names an app's image is known by: Location.Image,
// then Location.Names (the names it had before a registry move).
type imageNames []string

// names returns the names loc's image is known by.
func (loc Location) names() imageNames {
	return append(imageNames{loc.Image}, loc.Names...)
}

// has reports whether name is one of the names.
func (n imageNames) has(name string) bool {
	for _, x := range n {
		if name != "" && x == name {
			return true
		}
	}
	return false
}

// String is the current name, for messages.
func (n imageNames) String() string {
	if len(n) == 0 {
		return ""
	}
	return n[0]
}
