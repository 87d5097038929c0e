package sign

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// allowedSigner is one line of an allowed_signers file (ssh-keygen(1),
// ALLOWED SIGNERS): principals, options, key.
type allowedSigner struct {
	principals    string // the principals field, as written (a pattern-list)
	key           []byte // the public key, wire-encoded
	namespaces    []string
	hasNamespaces bool // namespaces= present: only those are accepted
	certAuthority bool
	validAfter    time.Time // zero: unbounded
	validBefore   time.Time // zero: unbounded
	where         string    // file:line, for errors
}

// accepts reports whether this entry trusts key for namespace ns at time at.
// Certificate-authority entries never match a plain key: they trust
// certificates, which this package does not verify.
func (a *allowedSigner) accepts(key []byte, ns string, at time.Time) bool {
	if a.certAuthority || !bytes.Equal(a.key, key) {
		return false
	}
	if a.hasNamespaces && !matchPatternList(ns, a.namespaces) {
		return false
	}
	if !a.validAfter.IsZero() && at.Before(a.validAfter) {
		return false
	}
	if !a.validBefore.IsZero() && at.After(a.validBefore) {
		return false
	}
	return true
}

// parseAllowedSigners parses an allowed_signers file. Blank lines and lines
// starting with '#' are skipped. Supported options (case-insensitive):
// namespaces="...", valid-after="...", valid-before="...", cert-authority.
// Any other option, or a malformed line, is an error naming file and line:
// a trust file that is silently half-read is worse than one that fails.
func parseAllowedSigners(path string, data []byte) ([]allowedSigner, error) {
	var out []allowedSigner
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if line == "" || line[0] == '#' {
			continue
		}
		where := fmt.Sprintf("%s:%d", path, n+1)
		e, err := parseAllowedSignerLine(line)
		if err != nil {
			return nil, fmt.Errorf("allowed signers %s: %w", where, err)
		}
		e.where = where
		out = append(out, e)
	}
	return out, nil
}

func parseAllowedSignerLine(line string) (allowedSigner, error) {
	var e allowedSigner
	principals, rest, err := nextField(line)
	if err != nil {
		return e, err
	}
	if len(principals) >= 2 && principals[0] == '"' && principals[len(principals)-1] == '"' {
		principals = principals[1 : len(principals)-1]
	}
	if principals == "" || strings.Contains(principals, `"`) {
		return e, errors.New("bad principals field")
	}
	if rest == "" {
		return e, errors.New("missing key")
	}
	e.principals = principals

	// x/crypto parses "[options] keytype base64 [comment]" as authorized_keys
	// does (options split on unquoted commas) and checks that the declared
	// key type matches the key.
	pub, _, opts, _, err := ssh.ParseAuthorizedKey([]byte(rest))
	if err != nil {
		return e, fmt.Errorf("bad key: %w", err)
	}
	e.key = pub.Marshal()
	seen := map[string]bool{}
	for _, opt := range opts {
		name, value, hasValue := strings.Cut(opt, "=")
		name = strings.ToLower(name)
		if seen[name] {
			return e, fmt.Errorf("duplicate option %q", name)
		}
		seen[name] = true
		if hasValue {
			if len(value) < 2 || value[0] != '"' || value[len(value)-1] != '"' {
				return e, fmt.Errorf("option %s: value must be double-quoted", name)
			}
			value = value[1 : len(value)-1]
		}
		switch name {
		case "cert-authority":
			if hasValue {
				return e, errors.New("option cert-authority takes no value")
			}
			e.certAuthority = true
		case "namespaces":
			if !hasValue || value == "" {
				return e, errors.New("option namespaces needs a value")
			}
			e.hasNamespaces = true
			e.namespaces = strings.Split(value, ",")
		case "valid-after", "valid-before":
			if !hasValue {
				return e, fmt.Errorf("option %s needs a value", name)
			}
			t, err := parseSSHTime(value)
			if err != nil {
				return e, fmt.Errorf("option %s: %w", name, err)
			}
			if name == "valid-after" {
				e.validAfter = t
			} else {
				e.validBefore = t
			}
		default:
			return e, fmt.Errorf("unsupported option %q", name)
		}
	}
	return e, nil
}

// nextField splits off the first whitespace-separated field of s, keeping
// double-quoted spaces inside it.
func nextField(s string) (field, rest string, err error) {
	inQuote := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			inQuote = !inQuote
		case (c == ' ' || c == '\t') && !inQuote:
			return s[:i], strings.TrimLeft(s[i:], " \t"), nil
		}
	}
	if inQuote {
		return "", "", errors.New("unmatched double quote")
	}
	return s, "", nil
}

// parseSSHTime parses ssh-keygen's YYYYMMDD[Z] and YYYYMMDDHHMM[SS][Z]
// timestamps: local time, or UTC with the Z suffix.
func parseSSHTime(s string) (time.Time, error) {
	loc := time.Local
	v := s
	if strings.HasSuffix(v, "Z") || strings.HasSuffix(v, "z") {
		loc = time.UTC
		v = v[:len(v)-1]
	}
	var layout string
	switch len(v) {
	case 8:
		layout = "20060102"
	case 12:
		layout = "200601021504"
	case 14:
		layout = "20060102150405"
	default:
		return time.Time{}, fmt.Errorf("bad timestamp %q (want YYYYMMDD[Z] or YYYYMMDDHHMM[SS][Z])", s)
	}
	t, err := time.ParseInLocation(layout, v, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad timestamp %q", s)
	}
	return t, nil
}

// matchPatternList matches s against an OpenSSH pattern-list: comma-separated
// patterns with '*' and '?' wildcards, a leading '!' negating one. A match of
// a negated pattern rejects s whatever else matches.
func matchPatternList(s string, patterns []string) bool {
	matched := false
	for _, p := range patterns {
		neg := strings.HasPrefix(p, "!")
		if neg {
			p = p[1:]
		}
		if wildcardMatch(p, s) {
			if neg {
				return false
			}
			matched = true
		}
	}
	return matched
}

// wildcardMatch matches s against pattern with '*' (any run) and '?' (any
// byte) wildcards.
func wildcardMatch(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
