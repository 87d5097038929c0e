package gitops

import (
	"fmt"
	"sort"
	"strings"
)

// Catalog is what shipbot manages: the environments in promotion order and,
// per app and environment, where the manifests live.
type Catalog struct {
	Envs []Environment
	// Apps maps app name -> environment name -> target.
	Apps map[string]map[string]Target
}

// Env returns the environment called name, or a *UserError naming the known ones.
func (c *Catalog) Env(name string) (Environment, error) {
	for _, e := range c.Envs {
		if e.Name == name {
			return e, nil
		}
	}
	return Environment{}, &UserError{
		Message: fmt.Sprintf("unknown environment %q%s; environments: %s", name, suggestEnv(name, c.envNames()), strings.Join(c.envNames(), ", ")),
		Err:     ErrUnknownEnv,
	}
}

// AppNames returns the app names, sorted.
func (c *Catalog) AppNames() []string {
	names := make([]string, 0, len(c.Apps))
	for n := range c.Apps {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (c *Catalog) envNames() []string {
	names := make([]string, len(c.Envs))
	for i, e := range c.Envs {
		names[i] = e.Name
	}
	return names
}

// App checks that app is known, or returns a *UserError with the nearest names.
func (c *Catalog) App(app string) (map[string]Target, error) {
	if t, ok := c.Apps[app]; ok {
		return t, nil
	}
	return nil, &UserError{
		Message: fmt.Sprintf("unknown app %q%s; apps: %s", app, suggest(app, c.AppNames()), strings.Join(c.AppNames(), ", ")),
		Err:     ErrUnknownApp,
	}
}

// Target returns where app lives in env, with user-facing errors.
func (c *Catalog) Target(app, env string) (Target, Environment, error) {
	targets, err := c.App(app)
	if err != nil {
		return Target{}, Environment{}, err
	}
	e, err := c.Env(env)
	if err != nil {
		return Target{}, Environment{}, err
	}
	t, ok := targets[env]
	if !ok {
		var in []string
		for _, e := range c.Envs {
			if _, ok := targets[e.Name]; ok {
				in = append(in, e.Name)
			}
		}
		return Target{}, Environment{}, &UserError{
			Message: fmt.Sprintf("%s is not deployed to %s by shipbot; it is in: %s", app, env, strings.Join(in, ", ")),
			Err:     ErrUnknownEnv,
		}
	}
	return t, e, nil
}

// Next returns the environment that follows env in promotion order among the
// environments app is deployed to, and false if env is the last.
func (c *Catalog) Next(app, env string) (string, bool) {
	targets := c.Apps[app]
	seen := false
	for _, e := range c.Envs {
		if _, ok := targets[e.Name]; !ok {
			continue
		}
		if seen {
			return e.Name, true
		}
		seen = e.Name == env
	}
	return "", false
}

// suggest returns ` (did you mean "x"?)` for the closest candidate within a
// small edit distance, or "".
func suggest(name string, candidates []string) string {
	best, bestD := "", 1<<30
	for _, c := range candidates {
		if d := distance(strings.ToLower(name), c); d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" || bestD > max(2, len(name)/3) {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// envAliases are names people type for common environments; each is
// suggested only when the catalog has an environment of that name.
var envAliases = map[string][]string{
	"production":  {"prod", "prd"},
	"prd":         {"prod"},
	"live":        {"prod", "production"},
	"stage":       {"staging", "stg"},
	"stg":         {"staging", "stage"},
	"staging":     {"stage", "stg"},
	"prod":        {"production", "prd"},
	"development": {"dev"},
	"develop":     {"dev"},
	"dev":         {"development"},
	"test":        {"testing", "qa"},
	"testing":     {"test", "qa"},
	"qa":          {"test", "testing"},
	"uat":         {"preprod", "staging"},
	"preprod":     {"pre-prod", "staging"},
	"pre-prod":    {"preprod", "staging"},
}

// suggestEnv is suggest for environments: a common alias of a configured
// environment ("production" for prod, "stage" for staging) or a name that
// one starts with ("produ" for production) comes first, then typos.
func suggestEnv(name string, envs []string) string {
	low := strings.ToLower(name)
	for _, alias := range envAliases[low] {
		for _, e := range envs {
			if e == alias {
				return fmt.Sprintf(" (did you mean %q?)", e)
			}
		}
	}
	if len(low) >= 3 {
		for _, e := range envs {
			if len(e) >= 3 && (strings.HasPrefix(low, e) || strings.HasPrefix(e, low)) {
				return fmt.Sprintf(" (did you mean %q?)", e)
			}
		}
	}
	return suggest(name, envs)
}

// distance is the Levenshtein edit distance between a and b.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
