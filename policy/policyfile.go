package policy

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"strings"
	"unicode"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/casbin/casbin/v2/model"
	"github.com/casbin/casbin/v2/util"
)

// globSyntax are the characters globMatch gives a meaning to.
const globSyntax = `*?[]{}\`

// fileAdapter is a read-only casbin adapter for a CSV policy file. Unlike
// casbin's file adapter it validates every line against the model and reports
// problems as "<file>:<line>: ...", so a typo fails at startup instead of
// silently never matching.
type fileAdapter struct {
	path string
}

var errReadOnly = errors.New("policy: the policy file is read-only")

func (a *fileAdapter) LoadPolicy(m model.Model) error {
	f, err := os.Open(a.path)
	if err != nil {
		return fmt.Errorf("read policy: %w", err)
	}
	defer f.Close()

	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if n == 1 {
			line = strings.TrimPrefix(line, "\ufeff")
		}
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := loadLine(m, line); err != nil {
			return fmt.Errorf("%s:%d: %w", a.path, n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s:%d: %w", a.path, n+1, err)
	}
	return nil
}

// loadLine validates one policy line and adds it to m.
func loadLine(m model.Model, line string) error {
	for _, r := range line {
		if unicode.IsControl(r) && r != '\t' {
			return fmt.Errorf("control character %U in line", r)
		}
	}
	cr := csv.NewReader(strings.NewReader(line))
	cr.TrimLeadingSpace = true
	cr.FieldsPerRecord = -1
	rec, err := cr.Read()
	if err != nil {
		return fmt.Errorf("malformed CSV: %w", err)
	}
	for i := range rec {
		rec[i] = strings.TrimSpace(rec[i])
	}
	ptype := rec[0]
	sec := ""
	if ptype != "" {
		sec = ptype[:1]
	}
	if sec != "p" && sec != "g" || m[sec][ptype] == nil {
		return fmt.Errorf("unknown rule type %q (want p or g)", ptype)
	}
	fields := rec[1:]
	names := fieldNames(sec, m[sec][ptype].Tokens)
	if len(fields) != len(names) {
		return fmt.Errorf("%s line has %d fields after %q, want %d (%s)",
			ptype, len(fields), ptype, len(names), strings.Join(names, ", "))
	}
	for i, f := range fields {
		switch {
		case f == "":
			return fmt.Errorf("field %s is empty (use * for any)", names[i])
		case strings.ContainsFunc(f, unicode.IsSpace):
			return fmt.Errorf("field %s %q contains a space (comments go on their own line, starting with #)", names[i], f)
		}
	}

	if sec == "p" {
		if err := checkPolicyFields(fields, names); err != nil {
			return err
		}
	} else if err := checkRoleFields(fields, names); err != nil {
		return err
	}

	if ok, err := m.HasPolicy(sec, ptype, fields); err != nil {
		return err
	} else if ok {
		return nil // duplicate line
	}
	return m.AddPolicy(sec, ptype, fields)
}

// fieldNames names the fields of a rule type for messages: "sub", "dom"... for
// p, "user", "group", "env" for g.
func fieldNames(sec string, tokens []string) []string {
	if sec == "g" {
		names := []string{"user", "group", "env"}
		for len(names) < len(tokens) {
			names = append(names, fmt.Sprintf("field%d", len(names)+1))
		}
		return names[:len(tokens)]
	}
	names := make([]string, len(tokens))
	for i, t := range tokens {
		_, names[i], _ = strings.Cut(t, "_")
	}
	return names
}

// checkPolicyFields checks p = sub, dom, obj, act, chan[, ...].
func checkPolicyFields(f, names []string) error {
	if strings.ContainsAny(f[0], globSyntax) {
		return fmt.Errorf("subject %q is a pattern; subjects are matched exactly (put users in a group with g lines instead)", f[0])
	}
	for i := 1; i <= 4; i++ {
		if !doublestar.ValidatePattern(f[i]) {
			return fmt.Errorf("field %s %q is not a valid glob pattern", names[i], f[i])
		}
	}
	act := f[3]
	for _, a := range policyActions {
		if ok, _ := util.GlobMatch(string(a), act); ok {
			return nil
		}
	}
	if act == "help" {
		return errors.New("help is always allowed and needs no rule")
	}
	known := make([]string, len(policyActions))
	for i, a := range policyActions {
		known[i] = string(a)
	}
	return fmt.Errorf("action %q matches no shipbot action (%s)", act, strings.Join(known, ", "))
}

// checkRoleFields checks g = user, group, env-pattern.
func checkRoleFields(f, names []string) error {
	for i := 0; i < 2; i++ {
		if strings.ContainsAny(f[i], globSyntax) {
			return fmt.Errorf("%s %q is a pattern; users and groups are matched exactly", names[i], f[i])
		}
	}
	if !doublestar.ValidatePattern(f[2]) {
		return fmt.Errorf("field %s %q is not a valid glob pattern", names[2], f[2])
	}
	return nil
}

func (a *fileAdapter) SavePolicy(model.Model) error                { return errReadOnly }
func (a *fileAdapter) AddPolicy(string, string, []string) error    { return errReadOnly }
func (a *fileAdapter) RemovePolicy(string, string, []string) error { return errReadOnly }
func (a *fileAdapter) RemoveFilteredPolicy(string, string, int, ...string) error {
	return errReadOnly
}
