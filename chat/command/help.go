package command

import (
	"strings"

	"github.com/shipbot/shipbot/gitops"
)

// spec is one chat command. Adding a command is one entry in table (plus
// its argument check, a method of argParser, and its gitops.Action).
type spec struct {
	action gitops.Action
	usage  string
	desc   string
	// readOnly commands only read: the chat answers them while a plan
	// waits for its requester's yes or no.
	readOnly bool
	// clause is the keyword of the command's clause ("to TAG", "until
	// WHEN"): written after an unquoted --why reason, it could belong to
	// either, and Parse asks instead of guessing.
	clause string
	args   func(*argParser, *gitops.Request) error
}

// table lists every command in the order help shows them. The order also
// breaks ties when suggesting the closest command.
var table = []spec{
	{action: gitops.ActionRollback, usage: "rollback APP ENV [to TAG] --why TEXT", desc: "roll APP in ENV back to the previous deploy, or to TAG", clause: "to", args: (*argParser).rollback},
	{action: gitops.ActionRestart, usage: "restart APP ENV --why TEXT", desc: "rolling restart of APP's pods in ENV (no image change)", args: (*argParser).restart},
	{action: gitops.ActionPromote, usage: "promote APP FROM to TO --why TEXT", desc: "deploy the image running in FROM to TO", clause: "to", args: (*argParser).promote},
	{action: gitops.ActionStatus, usage: "status APP", desc: "show which tag of APP runs in each environment", readOnly: true, args: (*argParser).status},
	{action: gitops.ActionHistory, usage: "history APP ENV [N]", desc: "show the last N deploys of APP in ENV (N from 1 to 100)", readOnly: true, args: (*argParser).history},
	{action: gitops.ActionHealth, usage: "health ENV", desc: "sync and health of every app in ENV, unhealthy first", readOnly: true, args: (*argParser).health},
	{action: gitops.ActionFreeze, usage: "freeze ENV [until WHEN] --why TEXT", desc: "block promotions to ENV (WHEN: 2026-11-28, 2026-11-28T08:00, 4h, 2d)", clause: "until", args: (*argParser).freeze},
	{action: gitops.ActionUnfreeze, usage: "unfreeze ENV [--why TEXT]", desc: "lift a freeze of ENV", args: (*argParser).unfreeze},
	{action: gitops.ActionFreezes, usage: "freezes", desc: "every freeze in effect (who, since, until, why) and the freeze windows", readOnly: true, args: (*argParser).freezes},
	{action: gitops.ActionUnpin, usage: "unpin APP ENV --why TEXT", desc: "lift the pin a rollback set: promotions into APP in ENV are allowed again", args: (*argParser).unpin},
	{action: gitops.ActionPins, usage: "pins [ENV]", desc: "every app a rollback pinned (who, since, why, what automation it holds)", readOnly: true, args: (*argParser).pins},
	{action: gitops.ActionProposals, usage: "proposals [APP] [ENV]", desc: "changes waiting for review: who approved, what is missing", readOnly: true, args: (*argParser).proposals},
	{action: gitops.ActionApprove, usage: "approve REQUEST-ID", desc: "approve a change under review (the requester never counts)", args: (*argParser).review},
	{action: gitops.ActionReject, usage: "reject REQUEST-ID --why TEXT", desc: "reject a change under review: it is closed, nothing merges", args: (*argParser).reject},
	{action: gitops.ActionHelp, usage: "help [COMMAND]", desc: "show this help, or the usage of one command", readOnly: true, args: (*argParser).help},
}

// commands, usages and descriptions are views of table.
var (
	commands     []gitops.Action
	usages       = map[gitops.Action]string{}
	descriptions = map[gitops.Action]string{}
	specs        = map[gitops.Action]*spec{}
)

func init() {
	for i := range table {
		s := &table[i]
		commands = append(commands, s.action)
		usages[s.action], descriptions[s.action], specs[s.action] = s.usage, s.desc, s
	}
}

// ReadOnlyCommands lists the read-only commands, comma-separated, in the
// order help shows them.
func ReadOnlyCommands() string {
	var names []string
	for _, s := range table {
		if s.readOnly {
			names = append(names, string(s.action))
		}
	}
	return strings.Join(names, ", ")
}

// ReadOnly reports whether a command only reads (status, history, health,
// proposals, help, ...): a chat answers it even while a plan of the same
// person waits for yes or no.
func ReadOnly(a gitops.Action) bool {
	s := specs[a]
	return s != nil && s.readOnly
}

// Usage returns the one-line usage of a command, e.g.
// "rollback APP ENV [to TAG] --why TEXT", or "" for an unknown action.
func Usage(a gitops.Action) string {
	return usages[a]
}

// Help returns the full help text: every command on one line with a short
// description, how to address the bot, and an example.
func Help() string {
	width := 0
	for _, c := range commands {
		width = max(width, len(usages[c]))
	}
	var b strings.Builder
	b.WriteString("shipbot commands:\n")
	for _, c := range commands {
		u := usages[c]
		b.WriteString("  ")
		b.WriteString(u)
		b.WriteString(strings.Repeat(" ", width-len(u)+2))
		b.WriteString(descriptions[c])
		b.WriteString("\n")
	}
	b.WriteString("Start with /ship, ship or a mention of the bot, or just type the command in a DM.\n")
	b.WriteString("--why TEXT: the reason (an incident link, an issue key, or words) runs to the next --flag or the\n")
	b.WriteString("end of the line; quote it (\"...\" or '...') to keep anything in it. Clauses (to TAG, until WHEN) go\n")
	b.WriteString("before --why: written after an unquoted reason, shipbot asks which one you meant.\n")
	b.WriteString("Example: rollback checkout prod to 1.4.1 --why https://acme.pagerduty.com/incidents/P1X2Y3Z\n")
	return b.String()
}

// commandList is the comma-separated list of commands used in error messages.
func commandList() string {
	names := make([]string, len(commands))
	for i, c := range commands {
		names[i] = string(c)
	}
	return strings.Join(names, ", ")
}

// lookup returns the command a keyword names (ASCII case-insensitive).
func lookup(word string) (gitops.Action, bool) {
	for _, c := range commands {
		if keyword(word, string(c)) {
			return c, true
		}
	}
	return "", false
}

// aliases are words people type for a command shipbot spells differently.
// They are only suggested, never accepted.
var aliases = map[string]gitops.Action{
	"revert":   gitops.ActionRollback,
	"undo":     gitops.ActionRollback,
	"bounce":   gitops.ActionRestart,
	"redeploy": gitops.ActionRestart,
	"deploy":   gitops.ActionPromote,
	"release":  gitops.ActionPromote,
	"log":      gitops.ActionHistory,
	"logs":     gitops.ActionHistory,
	"pin":      gitops.ActionPins,
	"pinned":   gitops.ActionPins,
}

// suggest returns the command closest to an unknown word, or "" when none is
// close enough to be a plausible typo.
func suggest(word string) gitops.Action {
	w := asciiLower(word)
	if a, ok := aliases[w]; ok {
		return a
	}
	if len(w) > 32 {
		return "" // no command is that long; skip the quadratic distance
	}
	if len(w) >= 2 {
		for _, c := range commands {
			if strings.HasPrefix(string(c), w) {
				return c
			}
		}
	}
	best, bestDist := gitops.Action(""), 3 // suggest at distance 1 or 2 only
	for _, c := range commands {
		d := distance(w, string(c))
		if (c == gitops.ActionApprove || c == gitops.ActionReject) && d > 1 {
			// "reset" is not a reject: a review verdict is suggested only
			// for a one-letter slip.
			continue
		}
		if d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// distance is the optimal-string-alignment edit distance between a and b
// (insertions, deletions, substitutions and adjacent transpositions), by bytes.
func distance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
