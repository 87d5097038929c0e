package command

import (
	"strings"

	"github.com/shipbot/shipbot/gitops"
)

// commands lists every command in the order help shows them. The order also
// breaks ties when suggesting the closest command.
var commands = []gitops.Action{
	gitops.ActionRollback,
	gitops.ActionRestart,
	gitops.ActionPromote,
	gitops.ActionStatus,
	gitops.ActionHistory,
	gitops.ActionHealth,
	gitops.ActionFreeze,
	gitops.ActionUnfreeze,
	gitops.ActionProposals,
	gitops.ActionApprove,
	gitops.ActionReject,
	gitops.ActionHelp,
}

var usages = map[gitops.Action]string{
	gitops.ActionRollback:  "rollback APP ENV [to TAG] --why TEXT",
	gitops.ActionRestart:   "restart APP ENV --why TEXT",
	gitops.ActionPromote:   "promote APP FROM to TO --why TEXT",
	gitops.ActionStatus:    "status APP",
	gitops.ActionHistory:   "history APP ENV [N]",
	gitops.ActionHealth:    "health ENV",
	gitops.ActionFreeze:    "freeze ENV [until WHEN] --why TEXT",
	gitops.ActionUnfreeze:  "unfreeze ENV [--why TEXT]",
	gitops.ActionProposals: "proposals [APP] [ENV]",
	gitops.ActionApprove:   "approve REQUEST-ID",
	gitops.ActionReject:    "reject REQUEST-ID --why TEXT",
	gitops.ActionHelp:      "help [COMMAND]",
}

var descriptions = map[gitops.Action]string{
	gitops.ActionRollback:  "roll APP in ENV back to the previous deploy, or to TAG",
	gitops.ActionRestart:   "rolling restart of APP's pods in ENV (no image change)",
	gitops.ActionPromote:   "deploy the image running in FROM to TO",
	gitops.ActionStatus:    "show which tag of APP runs in each environment",
	gitops.ActionHistory:   "show the last N deploys of APP in ENV (N from 1 to 100)",
	gitops.ActionHealth:    "sync and health of every app in ENV, unhealthy first",
	gitops.ActionFreeze:    "block promotions to ENV (WHEN: 2026-11-28, 2026-11-28T08:00, 4h, 2d)",
	gitops.ActionUnfreeze:  "lift a freeze of ENV",
	gitops.ActionProposals: "changes waiting for review: who approved, what is missing",
	gitops.ActionApprove:   "approve a change under review (the requester never counts)",
	gitops.ActionReject:    "reject a change under review: it is closed, nothing merges",
	gitops.ActionHelp:      "show this help, or the usage of one command",
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
	b.WriteString("--why takes the rest of the line as the reason (an incident link, an issue key, or words).\n")
	b.WriteString("Example: rollback checkout prod to v1.4.1 --why https://acme.pagerduty.com/incidents/P1X2Y3Z\n")
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
