package policy

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/casbin/casbin/v2/model"
)

// globSyntax are the characters globMatch gives a meaning to.
const globSyntax = `*?[]{}\`

// Effects of a p line.
const (
	effectAllow = "allow"
	effectDeny  = "deny"
)

// maxApprovals bounds the APPROVALS field of a review line.
const maxApprovals = 20

// Justification kinds a justify line may name besides the ones in justify.go.
// The list is the closed set shipbot can recognise; a typo in a policy is an
// error, not a kind nobody can ever provide.
const kindOpsgenieAlert = "opsgenie-alert"

// justifyKinds are the kinds a justify line may require.
var justifyKinds = []string{KindPagerDuty, KindJira, kindOpsgenieAlert, KindText}

// ruleSource is where a policy line was read.
type ruleSource struct {
	File string
	Line int
	Text string // the line, re-rendered canonically: "p, team-checkout, *, checkout, rollback, *"
}

// Pos is "file:line".
func (s ruleSource) Pos() string { return fmt.Sprintf("%s:%d", s.File, s.Line) }

// permRule is a p line: fields as given to casbin, and where it came from.
type permRule struct {
	stored []string // sub, dom, obj, act, chan[, eft] as casbin holds them
	sub    string
	effect string // allow or deny
	src    ruleSource
}

// roleRule is a g line: user is in group in the environments matching env.
type roleRule struct {
	user, group, env string
	src              ruleSource
}

// reviewRule is a review line: requests by sub matching env/app/act need
// approvals approvals from group ("" = anyone allowed to approve).
type reviewRule struct {
	sub, env, app, act string
	approvals          int
	group              string
	src                ruleSource
}

// justifyRule is a justify line: requests matching env/app/act need a
// justification of one of kinds (required with no kinds = any kind).
type justifyRule struct {
	env, app, act string
	required      bool
	kinds         []string
	src           ruleSource
}

// parsedPolicy is a validated policy file.
type parsedPolicy struct {
	perms     []permRule
	permByKey map[string]int // casbin fields joined by NUL -> index in perms of the first line that gave them
	roles     []roleRule
	reviews   []reviewRule
	justifies []justifyRule
	// names are the subjects and groups the lines name (p and review
	// subjects, both sides of g lines); groups are the groups of g lines.
	names, groups map[string]bool
	// groupDenies are the deny lines whose subject is a group, which a
	// chat platform's group could reach (directly, by a mapping, or through
	// g lines).
	groupDenies []permRule
}

// chatGroup reports whether a group the chat platform vouches for takes
// part in decisions: the policy names it, and it is a group, not someone's
// user name: a PLATFORM:NAME group ("slack:sre-oncall") or a group of a g
// line ("sre"). A chat group named like a user ("bob") is ignored, so a
// mapping mistake can never make its members act as that user.
func (pol *parsedPolicy) chatGroup(name string) bool {
	return pol.names[name] && (ExternalGroup(name) || pol.groups[name])
}

func ruleKey(fields []string) string { return strings.Join(fields, "\x00") }

// parsePolicy reads a policy file (CSV, one rule per line; blank lines and
// lines starting with '#' are ignored) and validates every line against the
// model m and its capabilities. Problems are reported as "<file>:<line>: ...",
// so a typo fails at load instead of silently never matching. Every bad
// line is reported, not only the first (errors.Join, one error per line).
func parsePolicy(file string, data []byte, m model.Model, caps modelCaps) (*parsedPolicy, error) {
	pol := &parsedPolicy{permByKey: map[string]int{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	n := 0
	var bad []error
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
		if err := pol.addLine(m, caps, ruleSource{File: file, Line: n}, line); err != nil {
			bad = append(bad, fmt.Errorf("%s:%d: %w", file, n, err))
		}
	}
	if err := sc.Err(); err != nil {
		bad = append(bad, fmt.Errorf("%s:%d: %w", file, n+1, err))
	}
	switch len(bad) {
	case 0:
	case 1:
		return nil, bad[0]
	default:
		// The cross-checks are left for when every line reads: a bad g
		// line would make a review group look empty.
		return nil, errors.Join(bad...)
	}
	if err := pol.crossCheck(); err != nil {
		return nil, err
	}
	pol.names, pol.groups = map[string]bool{}, map[string]bool{}
	for _, p := range pol.perms {
		pol.names[p.sub] = true
	}
	for _, r := range pol.roles {
		pol.names[r.user], pol.names[r.group] = true, true
		pol.groups[r.group] = true
	}
	for _, r := range pol.reviews {
		pol.names[r.sub] = true
	}
	for _, p := range pol.perms {
		if p.effect == effectDeny && (ExternalGroup(p.sub) || pol.groups[p.sub]) {
			pol.groupDenies = append(pol.groupDenies, p)
		}
	}
	return pol, nil
}

// addLine validates one policy line and records it.
func (pol *parsedPolicy) addLine(m model.Model, caps modelCaps, src ruleSource, line string) error {
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
	kind, fields := rec[0], rec[1:]
	src.Text = formatRule(kind, fields)
	switch kind {
	case "p":
		return pol.addPerm(m, caps, src, fields)
	case "g":
		return pol.addRole(m, src, fields)
	case "review":
		return pol.addReview(src, fields)
	case "justify":
		return pol.addJustify(src, fields)
	}
	return fmt.Errorf("unknown rule type %q (want p, g, review or justify)", kind)
}

// checkFields rejects empty fields and fields with spaces.
func checkFields(fields, names []string) error {
	for i, f := range fields {
		switch {
		case f == "":
			return fmt.Errorf("field %s is empty (use * for any)", names[i])
		case strings.ContainsFunc(f, unicode.IsSpace):
			return fmt.Errorf("field %s %q contains a space (comments go on their own line, starting with #)", names[i], f)
		}
	}
	return nil
}

var permNames = []string{"sub", "dom", "obj", "act", "chan", "eft"}

// addPerm checks p, sub, dom, obj, act, chan[, allow|deny].
func (pol *parsedPolicy) addPerm(m model.Model, caps modelCaps, src ruleSource, f []string) error {
	if m["p"]["p"] == nil {
		return errors.New(`unknown rule type "p" (the model has no policy_definition p)`)
	}
	switch {
	case len(f) < 5:
		return fmt.Errorf(`p line has %d fields after "p", want 5 (sub, dom, obj, act, chan)`, len(f))
	case len(f) > 6:
		return fmt.Errorf(`p line has %d fields after "p", want 5 (sub, dom, obj, act, chan) or 6 (sub, dom, obj, act, chan, allow|deny)`, len(f))
	}
	if err := checkFields(f, permNames); err != nil {
		return err
	}
	effect := effectAllow
	if len(f) == 6 {
		effect = f[5]
		if effect != effectAllow && effect != effectDeny {
			return fmt.Errorf("field eft %q must be allow or deny", effect)
		}
	}
	if effect == effectDeny && !caps.denyWins {
		return fmt.Errorf("deny rules need a model where deny wins (p = sub, dom, obj, act, chan, eft and e = some(where (p.eft == allow)) && !some(where (p.eft == deny))), but %s is not one; see deploy/examples/model.conf", caps.name)
	}
	sub := f[0]
	switch {
	case sub == "*":
		if !caps.anySubject {
			return fmt.Errorf(`subject * (anyone) needs a model whose matcher accepts it (p.sub == "*"), but %s does not; see deploy/examples/model.conf`, caps.name)
		}
	case strings.ContainsAny(sub, globSyntax):
		return fmt.Errorf("subject %q is a pattern; subjects are matched exactly: a user, a group (see g lines), or * alone for anyone", sub)
	}
	for _, i := range []int{1, 3, 4} {
		if !doublestar.ValidatePattern(f[i]) {
			return fmt.Errorf("field %s %q is not a valid glob pattern", permNames[i], f[i])
		}
	}
	if err := checkAppPattern("obj", f[2], caps); err != nil {
		return err
	}
	if err := checkActionPattern(f[3]); err != nil {
		return err
	}
	if err := checkEnvWide(f[2], f[3]); err != nil {
		return err
	}

	stored := slices.Clone(f[:5])
	if caps.hasEft {
		stored = append(stored, effect)
	}
	key := ruleKey(stored)
	if _, dup := pol.permByKey[key]; dup {
		return nil // the same rule again: the first line stands for it
	}
	pol.permByKey[key] = len(pol.perms)
	pol.perms = append(pol.perms, permRule{stored: stored, sub: sub, effect: effect, src: src})
	return nil
}

// perm returns the p line casbin reports as fields.
// line is the line number of the p line with these casbin fields (0 when
// there is none).
func (pol *parsedPolicy) line(fields []string) int {
	p, _ := pol.perm(fields)
	return p.src.Line
}

func (pol *parsedPolicy) perm(fields []string) (permRule, bool) {
	i, ok := pol.permByKey[ruleKey(fields)]
	if !ok {
		return permRule{}, false
	}
	return pol.perms[i], true
}

// checkAppPattern checks an app pattern: APP or NAMESPACE/APP, each part a
// non-empty glob.
func checkAppPattern(name, p string, caps modelCaps) error {
	if !doublestar.ValidatePattern(p) {
		return fmt.Errorf("field %s %q is not a valid glob pattern", name, p)
	}
	ns, app, hasNS := strings.Cut(p, "/")
	if !hasNS {
		return nil
	}
	switch {
	case strings.Contains(app, "/"):
		return fmt.Errorf("field %s %q has more than one '/': write APP or NAMESPACE/APP", name, p)
	case ns == "" || app == "":
		return fmt.Errorf("field %s %q has an empty side of '/': write APP or NAMESPACE/APP (e.g. */checkout, shop/*)", name, p)
	case !caps.namespaces:
		return fmt.Errorf("field %s %q names a namespace, but the matcher of %s does not match NAMESPACE/APP patterns (use appMatch(r.obj, p.obj)); see deploy/examples/model.conf", name, p, caps.name)
	}
	return nil
}

// checkActionPattern checks that an action pattern matches a shipbot action.
func checkActionPattern(act string) error {
	if !doublestar.ValidatePattern(act) {
		return fmt.Errorf("field act %q is not a valid glob pattern", act)
	}
	for _, a := range policyActions {
		if globMatch(string(a), act) {
			return nil
		}
	}
	if act == "help" {
		return errors.New("help is always allowed and needs no rule")
	}
	return fmt.Errorf("action %q matches no shipbot action (%s)", act, strings.Join(actionNames(), ", "))
}

// checkEnvWide refuses a line that can only match environment-wide actions
// (freeze, unfreeze: requests without an app) but names an app.
func checkEnvWide(app, act string) error {
	if appMatch("", app) {
		return nil
	}
	for _, a := range policyActions {
		if globMatch(string(a), act) && !slices.Contains(envWideActions, a) {
			return nil
		}
	}
	return fmt.Errorf("this line never matches: %s applies to a whole environment (the request has no app), so write * as the app, not %q", act, app)
}

var roleNames = []string{"user", "group", "env"}

// addRole checks g, user, group, env-pattern.
func (pol *parsedPolicy) addRole(m model.Model, src ruleSource, f []string) error {
	if m["g"]["g"] == nil {
		return errors.New(`unknown rule type "g" (the model has no role_definition g)`)
	}
	if len(f) != 3 {
		return fmt.Errorf(`g line has %d fields after "g", want 3 (user, group, env)`, len(f))
	}
	if err := checkFields(f, roleNames); err != nil {
		return err
	}
	for i := range 2 {
		if strings.ContainsAny(f[i], globSyntax) {
			return fmt.Errorf("%s %q is a pattern; users and groups are matched exactly", roleNames[i], f[i])
		}
	}
	if f[0] == f[1] {
		return fmt.Errorf("g line puts %q in itself", f[0])
	}
	if !doublestar.ValidatePattern(f[2]) {
		return fmt.Errorf("field env %q is not a valid glob pattern", f[2])
	}
	for _, r := range pol.roles {
		if r.user == f[0] && r.group == f[1] && r.env == f[2] {
			return nil // duplicate
		}
	}
	pol.roles = append(pol.roles, roleRule{user: f[0], group: f[1], env: f[2], src: src})
	return nil
}

var reviewNames = []string{"subject", "env", "app", "action", "approvals", "group"}

// addReview checks review, SUBJECT, ENV, APP, ACTION, APPROVALS, GROUP.
func (pol *parsedPolicy) addReview(src ruleSource, f []string) error {
	if len(f) != 6 {
		return fmt.Errorf(`review line has %d fields after "review", want 6 (%s)`, len(f), strings.Join(reviewNames, ", "))
	}
	if err := checkFields(f, reviewNames); err != nil {
		return err
	}
	if f[0] != "*" && strings.ContainsAny(f[0], globSyntax) {
		return fmt.Errorf("subject %q is a pattern; write a user, a group, or * alone for anyone", f[0])
	}
	if err := checkScope(f[1], f[2], f[3]); err != nil {
		return err
	}
	if err := checkEnvWide(f[2], f[3]); err != nil {
		return err
	}
	n, err := strconv.Atoi(f[4])
	if err != nil || n < 0 || n > maxApprovals || strconv.Itoa(n) != f[4] {
		return fmt.Errorf("approvals %q must be a whole number from 0 to %d", f[4], maxApprovals)
	}
	group := f[5]
	switch {
	case group == "*":
		group = ""
	case strings.ContainsAny(group, globSyntax):
		return fmt.Errorf("group %q is a pattern; write one group, or * for anyone allowed to approve", group)
	case n == 0:
		return fmt.Errorf("a review with 0 approvals has no approvers: write * as the group, not %q", group)
	}
	r := reviewRule{sub: f[0], env: f[1], app: f[2], act: f[3], approvals: n, group: group, src: src}
	for _, o := range pol.reviews {
		if o.sub == r.sub && o.env == r.env && o.app == r.app && o.act == r.act {
			return fmt.Errorf("this review line never applies: %s has the same subject, env, app and action and comes first (the first matching review line applies)", o.src.Pos())
		}
	}
	pol.reviews = append(pol.reviews, r)
	return nil
}

var justifyNames = []string{"env", "app", "action", "kinds"}

// addJustify checks justify, ENV, APP, ACTION, KINDS.
func (pol *parsedPolicy) addJustify(src ruleSource, f []string) error {
	if len(f) != 4 {
		return fmt.Errorf(`justify line has %d fields after "justify", want 4 (%s)`, len(f), strings.Join(justifyNames, ", "))
	}
	if err := checkFields(f, justifyNames); err != nil {
		return err
	}
	if err := checkScope(f[0], f[1], f[2]); err != nil {
		return err
	}
	if err := checkEnvWide(f[1], f[2]); err != nil {
		return err
	}
	r := justifyRule{env: f[0], app: f[1], act: f[2], src: src}
	switch f[3] {
	case "none":
	case "any":
		r.required = true
	default:
		r.required = true
		for k := range strings.SplitSeq(f[3], "|") {
			switch {
			case k == "none" || k == "any":
				return fmt.Errorf("kinds %q: %s stands alone, it cannot be combined with other kinds", f[3], k)
			case !slices.Contains(justifyKinds, k):
				return fmt.Errorf("kinds %q: unknown kind %q (want none, any, or kinds separated by |: %s)", f[3], k, strings.Join(justifyKinds, ", "))
			case slices.Contains(r.kinds, k):
				return fmt.Errorf("kinds %q: %s given twice", f[3], k)
			}
			r.kinds = append(r.kinds, k)
		}
	}
	for _, o := range pol.justifies {
		if o.env == r.env && o.app == r.app && o.act == r.act {
			return fmt.Errorf("this justify line never applies: %s has the same env, app and action and comes first (the first matching justify line applies)", o.src.Pos())
		}
	}
	pol.justifies = append(pol.justifies, r)
	return nil
}

// checkScope checks the env, app and action patterns of a review or justify
// line. App patterns always accept NAMESPACE/APP: these lines are matched by
// shipbot, not by the casbin model.
func checkScope(env, app, act string) error {
	if !doublestar.ValidatePattern(env) {
		return fmt.Errorf("field env %q is not a valid glob pattern", env)
	}
	if err := checkAppPattern("app", app, modelCaps{namespaces: true}); err != nil {
		return err
	}
	return checkActionPattern(act)
}

// crossCheck validates what one line cannot: a review group must have
// members, from g lines or, for a group named PLATFORM:NAME such as
// "slack:sre", from the chat platform.
func (pol *parsedPolicy) crossCheck() error {
	groups := map[string]bool{}
	for _, r := range pol.roles {
		groups[r.group] = true
	}
	for _, r := range pol.reviews {
		if r.group != "" && !groups[r.group] && !ExternalGroup(r.group) {
			return fmt.Errorf("%s: review group %q has no members: no g line puts anyone in it (a chat platform's group is named like slack:%s)", r.src.Pos(), r.group, r.group)
		}
	}
	return nil
}

// ExternalGroup reports whether name is a group that a chat platform
// vouches for rather than the policy's g lines: PLATFORM:NAME, e.g.
// "slack:sre-oncall".
func ExternalGroup(name string) bool {
	platform, group, ok := strings.Cut(name, ":")
	return ok && platform != "" && group != ""
}

// policyAdapter is a read-only casbin adapter that hands casbin the p and g
// lines of a parsed policy.
type policyAdapter struct {
	pol *parsedPolicy
}

var errReadOnly = errors.New("policy: the policy file is read-only")

func (a *policyAdapter) LoadPolicy(m model.Model) error {
	for _, p := range a.pol.perms {
		if err := m.AddPolicy("p", "p", slices.Clone(p.stored)); err != nil {
			return fmt.Errorf("%s: %w", p.src.Pos(), err)
		}
	}
	for _, g := range a.pol.roles {
		if err := m.AddPolicy("g", "g", []string{g.user, g.group, g.env}); err != nil {
			return fmt.Errorf("%s: %w", g.src.Pos(), err)
		}
	}
	return nil
}

func (a *policyAdapter) SavePolicy(model.Model) error                { return errReadOnly }
func (a *policyAdapter) AddPolicy(string, string, []string) error    { return errReadOnly }
func (a *policyAdapter) RemovePolicy(string, string, []string) error { return errReadOnly }
func (a *policyAdapter) RemoveFilteredPolicy(string, string, int, ...string) error {
	return errReadOnly
}
