package command

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/shipbot/shipbot/gitops"
)

type R = gitops.Request

const (
	rollback = gitops.ActionRollback
	restart  = gitops.ActionRestart
	promote  = gitops.ActionPromote
	status   = gitops.ActionStatus
	history  = gitops.ActionHistory
	help     = gitops.ActionHelp
)

const pagerduty = "https://acme.pagerduty.com/incidents/P1X2Y3Z"

var (
	usageRollback = "Usage: " + usages[rollback]
	usageRestart  = "Usage: " + usages[restart]
	usagePromote  = "Usage: " + usages[promote]
	usageStatus   = "Usage: " + usages[status]
	usageHistory  = "Usage: " + usages[history]
	usageHelp     = "Usage: " + usages[help]
	allCommands   = "rollback, restart, promote, status, history, health, freeze, unfreeze, freezes, unpin, pins, proposals, approve, reject, help"
)

type parseTest struct {
	name string
	line string
	want R
	// errHas, when set, means Parse must fail with a *gitops.UserError
	// whose Message contains every string.
	errHas []string
}

var parseTests = []parseTest{
	// rollback
	{name: "rollback previous", line: "rollback checkout prod --why broken checkout",
		want: R{Action: rollback, App: "checkout", Env: "prod", Why: "broken checkout"}},
	{name: "rollback to tag", line: "rollback checkout prod to v1.4.1 --why bad deploy",
		want: R{Action: rollback, App: "checkout", Env: "prod", Tag: "v1.4.1", Why: "bad deploy"}},
	{name: "rollback without why", line: "rollback checkout prod",
		want: R{Action: rollback, App: "checkout", Env: "prod"}},
	{name: "keywords upper case", line: "ROLLBACK checkout prod TO v1.4.1 --WHY x",
		want: R{Action: rollback, App: "checkout", Env: "prod", Tag: "v1.4.1", Why: "x"}},
	{name: "keywords mixed case", line: "RollBack checkout prod To V1.4.1 --Why=x",
		want: R{Action: rollback, App: "checkout", Env: "prod", Tag: "V1.4.1", Why: "x"}},
	{name: "tag keeps case and underscore start", line: "rollback checkout prod to _Build.7-rc_1",
		want: R{Action: rollback, App: "checkout", Env: "prod", Tag: "_Build.7-rc_1"}},
	{name: "tag of 128 chars", line: "rollback checkout prod to " + strings.Repeat("a", 128),
		want: R{Action: rollback, App: "checkout", Env: "prod", Tag: strings.Repeat("a", 128)}},
	{name: "app named to", line: "rollback to prod to to",
		want: R{Action: rollback, App: "to", Env: "prod", Tag: "to"}},
	{name: "one-char names", line: "rollback a 0",
		want: R{Action: rollback, App: "a", Env: "0"}},
	{name: "63-char name", line: "rollback " + strings.Repeat("a", 62) + "z prod",
		want: R{Action: rollback, App: strings.Repeat("a", 62) + "z", Env: "prod"}},
	{name: "names with dashes and digits", line: "rollback my-app-2 eu-west-1",
		want: R{Action: rollback, App: "my-app-2", Env: "eu-west-1"}},

	// prefixes and mentions
	{name: "slash ship prefix", line: "/ship rollback checkout prod --why x",
		want: R{Action: rollback, App: "checkout", Env: "prod", Why: "x"}},
	{name: "ship prefix", line: "ship rollback checkout prod --why x",
		want: R{Action: rollback, App: "checkout", Env: "prod", Why: "x"}},
	{name: "prefix upper case", line: "/SHIP Status checkout",
		want: R{Action: status, App: "checkout"}},
	{name: "ship prefix with tab", line: "ship\tstatus checkout",
		want: R{Action: status, App: "checkout"}},
	{name: "mention", line: "<@U0123ABC> rollback checkout prod --why x",
		want: R{Action: rollback, App: "checkout", Env: "prod", Why: "x"}},
	{name: "mention with colon", line: "<@U0123ABC>: status checkout",
		want: R{Action: status, App: "checkout"}},
	{name: "mention with label", line: "<@U0123ABC|shipbot> status checkout",
		want: R{Action: status, App: "checkout"}},
	{name: "mention without space", line: "<@U0123ABC>status checkout",
		want: R{Action: status, App: "checkout"}},
	{name: "mention then ship", line: "<@U0123ABC> ship status checkout",
		want: R{Action: status, App: "checkout"}},
	{name: "surrounding white space", line: "  \t status   checkout \r\n",
		want: R{Action: status, App: "checkout"}},
	{name: "non-breaking space separates words", line: "status\u00a0checkout",
		want: R{Action: status, App: "checkout"}},

	// quoting
	{name: "quoted words", line: `rollback "checkout" 'prod' to "v1.4.1" --why x`,
		want: R{Action: rollback, App: "checkout", Env: "prod", Tag: "v1.4.1", Why: "x"}},
	{name: "quoted keyword", line: `"rollback" checkout prod 'to' v1`,
		want: R{Action: rollback, App: "checkout", Env: "prod", Tag: "v1"}},
	{name: "adjacent quoted pieces join", line: `rollback check"out" 'pr'od`,
		want: R{Action: rollback, App: "checkout", Env: "prod"}},
	{name: "quoted dash word is not a flag", line: `status "-x"`,
		errHas: []string{`invalid app name "-x"`, `cannot start or end with "-"`, usageStatus}},

	// --why
	{name: "why equals form", line: "rollback checkout prod --why=bad deploy",
		want: R{Action: rollback, App: "checkout", Env: "prod", Why: "bad deploy"}},
	{name: "why equals quoted", line: `rollback checkout prod --why="bad deploy"`,
		want: R{Action: rollback, App: "checkout", Env: "prod", Why: "bad deploy"}},
	{name: "why quoted single", line: `rollback checkout prod --why 'don"t care'`,
		want: R{Action: rollback, App: "checkout", Env: "prod", Why: `don"t care`}},
	{name: "why quoted with inner padding", line: "restArt 0 0 --whY ' padded '", // fuzz regression
		want: R{Action: restart, App: "0", Env: "0", Why: "padded"}},
	{name: "why with apostrophe", line: "rollback checkout prod --why it's broken",
		want: R{Action: rollback, App: "checkout", Env: "prod", Why: "it's broken"}},
	{name: "why with two quoted parts kept as typed", line: `rollback checkout prod --why "a" and "b"`,
		want: R{Action: rollback, App: "checkout", Env: "prod", Why: `"a" and "b"`}},
	{name: "why pagerduty url", line: "rollback checkout prod --why " + pagerduty,
		want: R{Action: rollback, App: "checkout", Env: "prod", Why: pagerduty}},
	{name: "why url with equals form", line: "rollback checkout prod to v1.4.1 --why=" + pagerduty + " p99 latency",
		want: R{Action: rollback, App: "checkout", Env: "prod", Tag: "v1.4.1", Why: pagerduty + " p99 latency"}},
	{name: "why quoted containing flags", line: `rollback checkout prod --why "see --force and --why=x, -h 'r' to v9"`,
		want: R{Action: rollback, App: "checkout", Env: "prod", Why: `see --force and --why=x, -h 'r' to v9`}},
	{name: "why containing an unknown flag", line: `rollback checkout prod --why see --force and more`,
		errHas: []string{`unknown flag "--force"`, `The reason after --why ends at the next --flag: to keep "--force" in the reason, quote it (--why "...")`, usageRollback}},
	{name: "why twice", line: `rollback checkout prod --why a --why b`, errHas: []string{"--why is given twice", usageRollback}},

	// where a reason ends (issue 14): at a --flag, or at its closing quote
	{name: "why ends at break-glass", line: "rollback checkout prod --why OPS-1 --break-glass",
		want: R{Action: rollback, App: "checkout", Env: "prod", Why: "OPS-1", BreakGlass: true}},
	{name: "why ends at break-glass typed with a dash", line: "rollback checkout prod --why OPS-1 \u2014break-glass",
		want: R{Action: rollback, App: "checkout", Env: "prod", Why: "OPS-1", BreakGlass: true}},
	{name: "smart dash flag before why", line: "restart checkout prod \u2013break-glass --why OPS-1",
		want: R{Action: restart, App: "checkout", Env: "prod", Why: "OPS-1", BreakGlass: true}},
	{name: "clause after break-glass after why", line: "rollback checkout prod --why OPS-1 --break-glass to 1.3.0",
		want: R{Action: rollback, App: "checkout", Env: "prod", Tag: "1.3.0", Why: "OPS-1", BreakGlass: true}},
	{name: "why double-quoted then clause", line: `rollback checkout prod --why "OPS-1 checkout 500s" to 1.3.0`,
		want: R{Action: rollback, App: "checkout", Env: "prod", Tag: "1.3.0", Why: "OPS-1 checkout 500s"}},
	{name: "why single-quoted then flag", line: `rollback checkout prod --why 'OPS-1 --break-glass' --break-glass`,
		want: R{Action: rollback, App: "checkout", Env: "prod", Why: "OPS-1 --break-glass", BreakGlass: true}},
	{name: "why in curly quotes", line: "rollback checkout prod --why \u201cOPS-1 to 1.3.0\u201d",
		want: R{Action: rollback, App: "checkout", Env: "prod", Why: "OPS-1 to 1.3.0"}},
	{name: "why in curly single quotes", line: "rollback checkout prod --why \u2018OPS-1 down\u2019 to 1.3.0",
		want: R{Action: rollback, App: "checkout", Env: "prod", Why: "OPS-1 down", Tag: "1.3.0"}},
	{name: "curly apostrophe in curly quotes is text", line: "rollback checkout prod --why \u2018it\u2019s down\u2019 to 1.3.0",
		errHas: []string{`"to 1.3.0" after the reason`, "rollback checkout prod --why \"\u2018it\u2019s down\u2019 to 1.3.0\""}},
	{name: "curly quoted words", line: "rollback \u201ccheckout\u201d prod to \u20181.3.0\u2019",
		want: R{Action: rollback, App: "checkout", Env: "prod", Tag: "1.3.0"}},
	{name: "clause before why, to in the reason", line: "rollback checkout prod to 1.3.0 --why back to 1.3.0",
		want: R{Action: rollback, App: "checkout", Env: "prod", Tag: "1.3.0", Why: "back to 1.3.0"}},
	{name: "to inside a reason is text", line: "restart checkout prod --why due to a memory leak",
		want: R{Action: restart, App: "checkout", Env: "prod", Why: "due to a memory leak"}},
	{name: "to not at the end of the reason is text", line: "rollback checkout prod --why OPS-1 back to 1.3.0 please",
		want: R{Action: rollback, App: "checkout", Env: "prod", Why: "OPS-1 back to 1.3.0 please"}},
	{name: "to with a non-tag is text", line: "rollback checkout prod --why OPS-1 back to v1;rm",
		want: R{Action: rollback, App: "checkout", Env: "prod", Why: "OPS-1 back to v1;rm"}},
	{name: "ambiguous to after the reason", line: "rollback checkout prod --why OPS-1 to 1.3.0",
		errHas: []string{`"to 1.3.0" after the reason could be part of it or the ` + "`to TAG`" + ` of rollback, so I did not plan anything (a reason ends at the next --flag, or where its quotes close). Send one of:`,
			"\n  rollback checkout prod to 1.3.0 --why OPS-1\n", "\n  rollback checkout prod --why \"OPS-1 to 1.3.0\""}},
	{name: "ambiguous to before a flag", line: "rollback checkout prod --why OPS-1 to 1.3.0 --break-glass",
		errHas: []string{`"to 1.3.0" after the reason`, "rollback checkout prod to 1.3.0 --break-glass --why OPS-1\n", `rollback checkout prod --break-glass --why "OPS-1 to 1.3.0"`}},
	{name: "ambiguous to as the whole reason", line: "rollback checkout prod --why to 1.3.0",
		errHas: []string{`"to 1.3.0" after the reason`, "\n  rollback checkout prod to 1.3.0\n", `rollback checkout prod --why "to 1.3.0"`}},
	{name: "ambiguous to on promote, no TO before", line: "promote checkout staging --why CHG-42 to prod",
		errHas: []string{`"to prod" after the reason could be part of it or the ` + "`to TO`" + ` of promote`, "Did you mean:\n  promote checkout staging to prod --why CHG-42"}},
	{name: "ambiguous until on freeze", line: "freeze prod --why release week until 2026-11-28",
		errHas: []string{`"until 2026-11-28" after the reason`, "`until WHEN` of freeze", "freeze prod until 2026-11-28 --why release week\n", `freeze prod --why "release week until 2026-11-28"`}},
	{name: "until given twice", line: "freeze prod until 4h --until 5h --why x", errHas: []string{"given twice"}},
	{name: "no clause on restart", line: "restart checkout prod --why OPS-1 to 1.3.0",
		want: R{Action: restart, App: "checkout", Env: "prod", Why: "OPS-1 to 1.3.0"}},
	{name: "words after the flag that ended the reason", line: "rollback checkout prod --why OPS-1 --break-glass checkout is down",
		errHas: []string{`unexpected argument "checkout": the reason after --why ends at --break-glass, and what follows is read as arguments`, usageRollback}},
	{name: "apostrophe after the flag that ended the reason", line: "rollback checkout prod --why OPS-1 --break-glass it's down",
		errHas: []string{`unterminated ' quote after --break-glass: the reason after --why ends at --break-glass`}},

	// suggestions (issue 14)
	{name: "why without dashes", line: "rollback checkout prod why OPS-1",
		errHas: []string{`unexpected argument "why" (to give a reason, write "--why OPS-1")`, usageRollback}},
	{name: "why without dashes on restart", line: "restart checkout prod why: OPS-1 pods stuck",
		errHas: []string{`unexpected argument "why:" (to give a reason, write "--why OPS-1 pods stuck")`}},
	{name: "because on promote", line: "promote checkout staging because CHG-1",
		errHas: []string{`unexpected argument "because" (to give a reason, write "--why CHG-1")`}},
	{name: "stray word is not a tag", line: "rollback checkout prod now",
		errHas: []string{`unexpected argument "now".`}},
	{name: "promote without FROM", line: "promote checkout to staging",
		errHas: []string{"missing FROM, the environment whose version to copy: promote checkout FROM to staging", usagePromote}},
	{name: "promote without FROM and TO", line: "promote checkout to",
		errHas: []string{"missing FROM", "promote checkout FROM to TO"}},
	{name: "why with newlines", line: "rollback checkout prod --why line one\nline two\n\n",
		want: R{Action: rollback, App: "checkout", Env: "prod", Why: "line one\nline two"}},
	{name: "newline before why", line: "rollback checkout prod\n--why x",
		want: R{Action: rollback, App: "checkout", Env: "prod", Why: "x"}},
	{name: "why typed as em dash", line: "rollback checkout prod \u2014why smart punctuation",
		want: R{Action: rollback, App: "checkout", Env: "prod", Why: "smart punctuation"}},
	{name: "why typed as en dash", line: "rollback checkout prod \u2013WHY=x",
		want: R{Action: rollback, App: "checkout", Env: "prod", Why: "x"}},
	{name: "why after tab", line: "rollback checkout prod --why\tx",
		want: R{Action: rollback, App: "checkout", Env: "prod", Why: "x"}},
	{name: "why trimmed", line: "rollback checkout prod --why    padded  text   ",
		want: R{Action: rollback, App: "checkout", Env: "prod", Why: "padded  text"}},
	{name: "why keeps slack markup and unicode", line: "rollback checkout prod --why <!channel> <https://x.io|x> 🔥 — OPS-123 &amp;",
		want: R{Action: rollback, App: "checkout", Env: "prod", Why: "<!channel> <https://x.io|x> 🔥 — OPS-123 &amp;"}},
	{name: "why keeps shell metacharacters", line: "rollback checkout prod --why $(reboot); `id` | rm -rf / \\",
		want: R{Action: rollback, App: "checkout", Env: "prod", Why: "$(reboot); `id` | rm -rf / \\"}},
	{name: "why right after app env", line: "restart checkout prod --why=OPS-42",
		want: R{Action: restart, App: "checkout", Env: "prod", Why: "OPS-42"}},
	{name: "why on status is kept", line: "status checkout --why just looking",
		want: R{Action: status, App: "checkout", Why: "just looking"}},
	{name: "line of exactly 4 KiB", line: "rollback checkout prod --why " + strings.Repeat("x", 4067),
		want: R{Action: rollback, App: "checkout", Env: "prod", Why: strings.Repeat("x", 4067)}},

	// restart, promote, status, history
	{name: "restart", line: "restart checkout staging --why memory leak",
		want: R{Action: restart, App: "checkout", Env: "staging", Why: "memory leak"}},
	{name: "restart upper case", line: "RESTART checkout staging",
		want: R{Action: restart, App: "checkout", Env: "staging"}},
	{name: "promote", line: "promote checkout staging to prod --why " + pagerduty,
		want: R{Action: promote, App: "checkout", FromEnv: "staging", Env: "prod", Why: pagerduty}},
	{name: "promote upper case", line: "PROMOTE checkout staging TO prod",
		want: R{Action: promote, App: "checkout", FromEnv: "staging", Env: "prod"}},
	{name: "status", line: "status checkout",
		want: R{Action: status, App: "checkout"}},
	{name: "history default", line: "history checkout prod",
		want: R{Action: history, App: "checkout", Env: "prod"}},
	{name: "history N", line: "history checkout prod 20",
		want: R{Action: history, App: "checkout", Env: "prod", Limit: 20}},
	{name: "history N=1", line: "History checkout prod 1",
		want: R{Action: history, App: "checkout", Env: "prod", Limit: 1}},
	{name: "history N=100", line: "history checkout prod 100",
		want: R{Action: history, App: "checkout", Env: "prod", Limit: 100}},
	{name: "history N leading zero", line: "history checkout prod 007",
		want: R{Action: history, App: "checkout", Env: "prod", Limit: 7}},

	// help
	{name: "help", line: "help", want: R{Action: help}},
	{name: "help upper case", line: "HELP", want: R{Action: help}},
	{name: "help with prefix", line: "/ship help", want: R{Action: help}},
	{name: "help topic", line: "help rollback", want: R{Action: help, App: "rollback"}},
	{name: "help topic canonical case", line: "help PROMOTE", want: R{Action: help, App: "promote"}},
	{name: "help help", line: "help help", want: R{Action: help, App: "help"}},
	{name: "help flag alone", line: "--help", want: R{Action: help}},
	{name: "command --help", line: "rollback --help", want: R{Action: help, App: "rollback"}},
	{name: "command -h after args", line: "history checkout -H", want: R{Action: help, App: "history"}},

	// empty and unknown commands
	{name: "empty", line: "", errHas: []string{"empty command", "help"}},
	{name: "blank", line: " \t\n ", errHas: []string{"empty command", "help"}},
	{name: "prefix only", line: "/ship", errHas: []string{"empty command", "help"}},
	{name: "mention only", line: "<@U0123ABC>:", errHas: []string{"empty command", "help"}},
	{name: "why without command", line: "--why x", errHas: []string{"--why must come after a command", "help"}},
	{name: "typo rollbak", line: "rollbak checkout prod --why x",
		errHas: []string{`unknown command "rollbak"`, "did you mean rollback?", usages[rollback], allCommands}},
	{name: "typo upper case", line: "ROLLBAK checkout prod", errHas: []string{"did you mean rollback?"}},
	{name: "typo transposition", line: "statsu checkout", errHas: []string{"did you mean status?"}},
	{name: "typo start", line: "start checkout prod", errHas: []string{"did you mean restart?"}},
	{name: "abbreviation", line: "hist checkout prod", errHas: []string{"did you mean history?"}},
	{name: "alias deploy", line: "deploy checkout prod", errHas: []string{"did you mean promote?"}},
	{name: "alias revert", line: "revert checkout prod", errHas: []string{"did you mean rollback?"}},
	{name: "far off command", line: "xyzzy", errHas: []string{`unknown command "xyzzy"`, allCommands}},
	{name: "unicode look-alike is not a keyword", line: "ſtatus checkout", errHas: []string{"unknown command", allCommands}},
	{name: "prefix needs a space", line: "/shipstatus checkout", errHas: []string{`unknown command "/shipstatus"`}},
	{name: "lowercase mention id is not a mention", line: "<@u0123abc> status checkout", errHas: []string{"unknown command"}},

	// missing and extra arguments
	{name: "rollback no args", line: "rollback", errHas: []string{"missing APP", usageRollback}},
	{name: "rollback no env", line: "rollback checkout --why x", errHas: []string{"missing ENV", usageRollback}},
	{name: "rollback to without tag", line: "rollback checkout prod to", errHas: []string{`missing TAG after "to"`, usageRollback}},
	{name: "rollback to then why", line: "rollback checkout prod to --why x", errHas: []string{`missing TAG after "to"`, usageRollback}},
	{name: "rollback tag without to", line: "rollback checkout prod v1.4.1",
		errHas: []string{`unexpected argument "v1.4.1"`, `write "to v1.4.1"`, usageRollback}},
	{name: "rollback extra word", line: "rollback checkout prod now please",
		errHas: []string{`unexpected argument "now"`, usageRollback}},
	{name: "rollback stray latest", line: "rollback checkout prod latest",
		errHas: []string{`write "to latest"`}},
	{name: "rollback extra after tag", line: "rollback checkout prod to v1 v2 --why x",
		errHas: []string{`unexpected argument "v2"`, usageRollback}},
	{name: "restart missing env", line: "restart checkout", errHas: []string{"missing ENV", usageRestart}},
	{name: "restart extra", line: "restart checkout prod now", errHas: []string{`unexpected argument "now"`, usageRestart}},
	{name: "promote missing from", line: "promote checkout", errHas: []string{"missing FROM", usagePromote}},
	{name: "promote missing to", line: "promote checkout staging", errHas: []string{`missing "to TO"`, usagePromote}},
	{name: "promote without to keyword", line: "promote checkout staging prod",
		errHas: []string{`expected "to" between FROM and TO`, "promote checkout staging to prod", usagePromote}},
	{name: "promote wrong keyword", line: "promote checkout staging into prod",
		errHas: []string{`expected "to" after FROM, got "into"`, usagePromote}},
	{name: "promote to without env", line: "promote checkout staging to", errHas: []string{`missing TO after "to"`, usagePromote}},
	{name: "promote extra", line: "promote checkout staging to prod now", errHas: []string{`unexpected argument "now"`, usagePromote}},
	{name: "promote same env", line: "promote checkout prod to prod", errHas: []string{`FROM and TO are both "prod"`, usagePromote}},
	{name: "status missing app", line: "status", errHas: []string{"missing APP", usageStatus}},
	{name: "status extra", line: "status checkout prod", errHas: []string{`unexpected argument "prod"`, usageStatus}},
	{name: "history missing env", line: "history checkout", errHas: []string{"missing ENV", usageHistory}},
	{name: "history extra", line: "history checkout prod 5 6", errHas: []string{`unexpected argument "6"`, usageHistory}},
	{name: "help extra", line: "help rollback now", errHas: []string{`unexpected argument "now"`, usageHelp}},
	{name: "help unknown topic", line: "help rollbak", errHas: []string{`no help for "rollbak"`, "did you mean rollback?", allCommands, usageHelp}},

	// history N
	{name: "history N=0", line: "history checkout prod 0", errHas: []string{"from 1 to 100", `got "0"`, usageHistory}},
	{name: "history N=101", line: "history checkout prod 101", errHas: []string{"from 1 to 100", `got "101"`}},
	{name: "history N negative", line: `history checkout prod "-1"`, errHas: []string{"from 1 to 100", `got "-1"`}},
	{name: "history N unquoted negative", line: "history checkout prod -1", errHas: []string{"from 1 to 100", `got "-1"`, usageHistory}},
	{name: "lone dash is a word", line: "status -", errHas: []string{`invalid app name "-"`, usageStatus}},
	{name: "history N word", line: "history checkout prod ten", errHas: []string{"from 1 to 100", `got "ten"`}},
	{name: "history N plus", line: "history checkout prod +5", errHas: []string{"from 1 to 100"}},
	{name: "history N huge", line: "history checkout prod 99999999999999999999999", errHas: []string{"from 1 to 100"}},
	{name: "history N float", line: "history checkout prod 1e2", errHas: []string{"from 1 to 100"}},

	// tags
	{name: "tag with shell injection", line: "rollback checkout prod to 1.4.1;rm --why x",
		errHas: []string{`invalid tag "1.4.1;rm"`, tagGrammar, `';' is not allowed`, usageRollback}},
	{name: "tag starting with dash", line: "rollback checkout prod to -x --why x",
		errHas: []string{`invalid tag "-x"`, tagGrammar, usageRollback}},
	{name: "tag of 129 chars", line: "rollback checkout prod to " + strings.Repeat("a", 129),
		errHas: []string{"invalid tag", "129 characters", tagGrammar, usageRollback}},
	{name: "tag starting with dot", line: "rollback checkout prod to .hidden", errHas: []string{`invalid tag ".hidden"`, tagGrammar}},
	{name: "tag with slash", line: "rollback checkout prod to v1/2", errHas: []string{`invalid tag "v1/2"`, tagGrammar}},
	{name: "tag with colon", line: "rollback checkout prod to app:v1", errHas: []string{`invalid tag "app:v1"`}},
	{name: "tag with space", line: `rollback checkout prod to "v1 2"`, errHas: []string{`invalid tag "v1 2"`}},
	{name: "tag with command substitution", line: "rollback checkout prod to v1$(reboot)", errHas: []string{"invalid tag", tagGrammar}},
	{name: "tag non-ascii", line: "rollback checkout prod to vé", errHas: []string{`invalid tag "vé"`, `'é' is not allowed`}},
	{name: "tag empty", line: `rollback checkout prod to ""`, errHas: []string{"tag is empty", tagGrammar, usageRollback}},

	// names
	{name: "app upper case", line: "rollback Checkout prod --why x",
		errHas: []string{`invalid app name "Checkout"`, nameGrammar, `Did you mean "checkout"?`, usageRollback}},
	{name: "app underscore", line: "status check_out", errHas: []string{`invalid app name "check_out"`, `'_' is not allowed`, nameGrammar, usageStatus}},
	{name: "app dot", line: "status check.out", errHas: []string{`invalid app name "check.out"`, nameGrammar}},
	{name: "app trailing dash", line: "status checkout-", errHas: []string{`invalid app name "checkout-"`, `cannot start or end with "-"`}},
	{name: "app 64 chars", line: "status " + strings.Repeat("a", 64), errHas: []string{"invalid app name", "64 characters", nameGrammar}},
	{name: "app empty", line: `status ""`, errHas: []string{"app name is empty", nameGrammar, usageStatus}},
	{name: "app non-ascii", line: "status chéckout", errHas: []string{`invalid app name "chéckout"`}},
	{name: "app zero-width space", line: "status check\u200bout", errHas: []string{`invalid app name "check\u200bout"`}},
	{name: "app path traversal", line: "status ../../etc", errHas: []string{`invalid app name "../../etc"`}},
	{name: "env upper case", line: "restart checkout Prod", errHas: []string{`invalid environment name "Prod"`, `Did you mean "prod"?`, usageRestart}},
	{name: "history bad env", line: "history checkout prod/eu", errHas: []string{`invalid environment name "prod/eu"`, usageHistory}},
	{name: "promote bad from", line: "promote checkout Staging to prod", errHas: []string{`invalid source environment name "Staging"`, usagePromote}},
	{name: "promote bad to", line: "promote checkout staging to -prod", errHas: []string{`invalid target environment name "-prod"`, usagePromote}},

	// --why errors
	{name: "why empty", line: "rollback checkout prod --why", errHas: []string{"--why needs a reason", usageRollback}},
	{name: "why blank", line: "rollback checkout prod --why  \t ", errHas: []string{"--why needs a reason", usageRollback}},
	{name: "why equals empty", line: "rollback checkout prod --why=", errHas: []string{"--why needs a reason"}},
	{name: "why empty quotes", line: `restart checkout prod --why ""`, errHas: []string{"--why needs a reason", usageRestart}},
	{name: "why blank quotes", line: `restart checkout prod --why '  '`, errHas: []string{"--why needs a reason"}},

	// flags
	{name: "unknown long flag", line: "rollback checkout prod --force --why x",
		errHas: []string{`unknown flag "--force"`, "--why", usageRollback}},
	{name: "unknown short flag", line: "restart checkout prod -f", errHas: []string{`unknown flag "-f"`, usageRestart}},
	{name: "flag that starts like why", line: "rollback checkout prod --why-not x", errHas: []string{`unknown flag "--why-not"`, usageRollback}},
	{name: "unknown flag without command", line: "--verbose", errHas: []string{`unknown flag "--verbose"`, "help"}},
	{name: "unknown flag before unknown command", line: "--verbose frobnicate", errHas: []string{`unknown command "frobnicate"`}},

	// lexing and hostile input
	{name: "unterminated double quote", line: `rollback "checkout prod --why x`,
		errHas: []string{`unterminated " quote`, usageRollback}},
	{name: "unterminated single quote", line: "rollback checkout prod it's broken",
		errHas: []string{"unterminated ' quote", "--why", usageRollback}},
	{name: "unterminated quote unknown command", line: `frob "x`, errHas: []string{"unterminated"}},
	{name: "NUL in why", line: "rollback checkout prod --why a\x00b", errHas: []string{"NUL"}},
	{name: "NUL in name", line: "status check\x00out", errHas: []string{"NUL"}},
	{name: "line over 4 KiB", line: "rollback checkout prod --why " + strings.Repeat("x", 4068),
		errHas: []string{"4097 bytes", "4 KiB", "--why"}},
	{name: "invalid UTF-8", line: "status check\xffout", errHas: []string{"UTF-8"}},

	// review: approve, reject, proposals
	{name: "approve", line: "approve shp-abcde23456",
		want: R{Action: gitops.ActionApprove, Proposal: "shp-abcde23456"}},
	{name: "approve with brackets and capitals as copied from a reply", line: "approve [SHP-ABCDE23456]",
		want: R{Action: gitops.ActionApprove, Proposal: "shp-abcde23456"}},
	{name: "approve without id", line: "approve", errHas: []string{"missing REQUEST-ID", "approve REQUEST-ID"}},
	{name: "approve bad id", line: "approve checkout", errHas: []string{`"checkout" is not a request id`}},
	{name: "approve bad id chars", line: "approve shp-abcde1234x", errHas: []string{"is not a request id"}},
	{name: "approve extra", line: "approve shp-abcde23456 now", errHas: []string{`unexpected argument "now"`}},
	{name: "reject", line: "reject shp-abcde23456 --why the diff bumps the wrong tag",
		want: R{Action: gitops.ActionReject, Proposal: "shp-abcde23456", Why: "the diff bumps the wrong tag"}},
	{name: "reject without why", line: "reject shp-abcde23456", errHas: []string{"needs a reason", "--why"}},
	{name: "proposals", line: "proposals", want: R{Action: gitops.ActionProposals}},
	{name: "proposals app env", line: "proposals checkout prod",
		want: R{Action: gitops.ActionProposals, App: "checkout", Env: "prod"}},
	{name: "proposals too many", line: "proposals checkout prod x", errHas: []string{`unexpected argument "x"`}},

	// freeze, unfreeze, break-glass
	{name: "freeze", line: "freeze prod --why release week",
		want: R{Action: gitops.ActionFreeze, Env: "prod", Why: "release week"}},
	{name: "freeze until keyword", line: "freeze prod until 2026-11-28T08:00 --why release week",
		want: R{Action: gitops.ActionFreeze, Env: "prod", Until: "2026-11-28T08:00", Why: "release week"}},
	{name: "freeze --until before why", line: "freeze prod --until 4h --why incident",
		want: R{Action: gitops.ActionFreeze, Env: "prod", Until: "4h", Why: "incident"}},
	{name: "freeze --until after why", line: "freeze prod --why release week --until 2026-11-28",
		want: R{Action: gitops.ActionFreeze, Env: "prod", Until: "2026-11-28", Why: "release week"}},
	{name: "freeze --until= form", line: "freeze prod --until=2d --why x",
		want: R{Action: gitops.ActionFreeze, Env: "prod", Until: "2d", Why: "x"}},
	{name: "freeze needs why", line: "freeze prod", errHas: []string{"needs a reason", "freeze ENV"}},
	{name: "freeze bad until", line: "freeze prod until friday --why x", errHas: []string{`"friday" is not a time`}},
	{name: "freeze --until without value", line: "freeze prod --until", errHas: []string{"--until needs a time"}},
	{name: "until on rollback", line: "rollback checkout prod --until 4h --why x", errHas: []string{"--until only applies to freeze"}},
	{name: "health", line: "health prod", want: R{Action: gitops.ActionHealth, Env: "prod"}},
	{name: "health needs env", line: "health", errHas: []string{"missing ENV", "health ENV"}},
	{name: "unfreeze", line: "unfreeze prod", want: R{Action: gitops.ActionUnfreeze, Env: "prod"}},
	{name: "unfreeze extra", line: "unfreeze prod now", errHas: []string{`unexpected argument "now"`}},
	{name: "promote break glass", line: "promote checkout staging to prod --break-glass --why OPS-9",
		want: R{Action: gitops.ActionPromote, App: "checkout", FromEnv: "staging", Env: "prod", BreakGlass: true, Why: "OPS-9"}},
	{name: "break glass on status", line: "status checkout --break-glass", errHas: []string{"--break-glass only applies"}},

	// unpin, pins (issue 16)
	{name: "unpin", line: "unpin checkout prod --why 1.4.2 fixed in 1.4.3",
		want: R{Action: gitops.ActionUnpin, App: "checkout", Env: "prod", Why: "1.4.2 fixed in 1.4.3"}},
	{name: "unpin upper case", line: "UNPIN checkout prod --why=fixed",
		want: R{Action: gitops.ActionUnpin, App: "checkout", Env: "prod", Why: "fixed"}},
	{name: "unpin needs why", line: "unpin checkout prod", errHas: []string{"lifting a pin needs a reason", "unpin APP ENV --why TEXT"}},
	{name: "unpin needs env", line: "unpin checkout --why x", errHas: []string{"missing ENV", "unpin APP ENV"}},
	{name: "unpin extra", line: "unpin checkout prod now --why x", errHas: []string{`unexpected argument "now"`}},
	{name: "unpin reason without --why", line: "unpin checkout prod because fixed", errHas: []string{`(to give a reason, write "--why fixed")`}},
	{name: "unpin break glass", line: "unpin checkout prod --break-glass --why x", errHas: []string{"--break-glass only applies"}},
	{name: "unpin bad app", line: "unpin Check_out prod --why x", errHas: []string{"unpin APP ENV"}},
	{name: "pins", line: "pins", want: R{Action: gitops.ActionPins}},
	{name: "pins env", line: "pins prod", want: R{Action: gitops.ActionPins, Env: "prod"}},
	{name: "pins too many", line: "pins checkout prod", errHas: []string{`unexpected argument "prod"`, "pins [ENV]"}},
	{name: "pin typed", line: "pin checkout prod", errHas: []string{`unknown command "pin"; did you mean pins? (pins [ENV])`}},
	{name: "unpins typo", line: "unpins checkout prod --why x", errHas: []string{"did you mean unpin? (unpin APP ENV --why TEXT)"}},
}

func TestParse(t *testing.T) {
	seen := map[string]bool{}
	for _, tc := range parseTests {
		if seen[tc.name] {
			t.Fatalf("duplicate test name %q", tc.name)
		}
		seen[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.line)
			if tc.errHas == nil {
				if err != nil {
					t.Fatalf("Parse(%q): unexpected error: %v", tc.line, err)
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("Parse(%q)\n got %+v\nwant %+v", tc.line, got, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want an error containing %q", tc.line, got, tc.errHas)
			}
			var ue *gitops.UserError
			if !errors.As(err, &ue) {
				t.Fatalf("Parse(%q): error %T %v is not a *gitops.UserError", tc.line, err, err)
			}
			for _, s := range tc.errHas {
				if !strings.Contains(ue.Message, s) {
					t.Errorf("Parse(%q): message %q\ndoes not contain %q", tc.line, ue.Message, s)
				}
			}
			if !reflect.DeepEqual(got, R{}) {
				t.Errorf("Parse(%q): request %+v returned with an error, want the zero request", tc.line, got)
			}
		})
	}
}

// TestParseErrorMessagesAreBounded checks that hostile input echoed in an
// error is cut short and escaped.
func TestParseErrorMessagesAreBounded(t *testing.T) {
	long := strings.Repeat("A", 3000)
	for _, line := range []string{
		"status " + long,
		"rollback checkout prod to " + long,
		long,
		"status x\x1b[31mred",
		"history checkout prod " + long,
	} {
		_, err := Parse(line)
		if err == nil {
			t.Fatalf("Parse(%.40q…) succeeded, want an error", line)
		}
		msg := err.(*gitops.UserError).Message
		if len(msg) > 600 {
			t.Errorf("message for %.40q… is %d bytes long: %.200q…", line, len(msg), msg)
		}
		if strings.ContainsRune(msg, 0x1b) {
			t.Errorf("message for %q contains a raw escape character: %q", line, msg)
		}
	}
}

func TestUsage(t *testing.T) {
	for a, want := range map[gitops.Action]string{
		rollback:               "rollback APP ENV [to TAG] --why TEXT",
		restart:                "restart APP ENV --why TEXT",
		promote:                "promote APP FROM to TO --why TEXT",
		status:                 "status APP",
		history:                "history APP ENV [N]",
		gitops.ActionUnpin:     "unpin APP ENV --why TEXT",
		gitops.ActionPins:      "pins [ENV]",
		help:                   "help [COMMAND]",
		gitops.Action("nope"):  "",
		gitops.Action(""):      "",
		gitops.Action("HELP"):  "",
		gitops.Action("statu"): "",
	} {
		if got := Usage(a); got != want {
			t.Errorf("Usage(%q) = %q, want %q", a, got, want)
		}
	}
}

func TestHelp(t *testing.T) {
	h := Help()
	lines := strings.Split(strings.TrimSuffix(h, "\n"), "\n")
	for _, c := range commands {
		n := 0
		for _, l := range lines {
			if strings.HasPrefix(strings.TrimSpace(l), Usage(c)+"  ") {
				n++
				if len(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), Usage(c)))) == 0 {
					t.Errorf("help line for %s has no description: %q", c, l)
				}
			}
		}
		if n != 1 {
			t.Errorf("help has %d lines for %s, want 1:\n%s", n, c, h)
		}
	}
	var example string
	for _, l := range lines {
		if after, ok := strings.CutPrefix(l, "Example: "); ok {
			example = after
		}
	}
	if example == "" {
		t.Fatalf("help has no example:\n%s", h)
	}
	if _, err := Parse(example); err != nil {
		t.Errorf("the example in help does not parse: %v", err)
	}
}

func TestValidTag(t *testing.T) {
	for _, tag := range []string{"v1", "1.4.1", "_x", "latest", "V1.2.3-rc.1_build.7", "sha-0a1b2c3", "a..b", "a--", strings.Repeat("x", 128)} {
		if err := ValidTag(tag); err != nil {
			t.Errorf("ValidTag(%q) = %v, want nil", tag, err)
		}
	}
	for _, tag := range []string{"", ".x", "-x", "a b", "1.4.1;rm", "v1/2", "v1:2", "v1@sha256", "vé", "a\nb", "a\x00", strings.Repeat("x", 129), "$(id)"} {
		err := ValidTag(tag)
		if err == nil {
			t.Errorf("ValidTag(%q) = nil, want an error", tag)
			continue
		}
		var ue *gitops.UserError
		if !errors.As(err, &ue) || !strings.Contains(ue.Message, "[A-Za-z0-9_][A-Za-z0-9._-]{0,127}") {
			t.Errorf("ValidTag(%q) = %v, want a *gitops.UserError quoting the grammar", tag, err)
		}
	}
}

func TestSuggest(t *testing.T) {
	for _, tc := range []struct {
		word string
		want gitops.Action
	}{
		{"rollbak", rollback},
		{"rolback", rollback},
		{"rollbcak", rollback},
		{"roll", rollback},
		{"undo", rollback},
		{"restrat", restart},
		{"reset", ""},
		{"promot", promote},
		{"PROMTOE", promote},
		{"stat", status},
		{"stauts", status},
		{"histroy", history},
		{"unpni", gitops.ActionUnpin},
		{"upnin", gitops.ActionUnpin},
		{"pins", gitops.ActionPins},
		{"pin", gitops.ActionPins},
		{"pinned", gitops.ActionPins},
		{"hlep", help},
		{"x", ""},
		{"xyzzy", ""},
		{"", ""},
		{strings.Repeat("r", 200), ""},
	} {
		if got := suggest(tc.word); got != tc.want {
			t.Errorf("suggest(%q) = %q, want %q", tc.word, got, tc.want)
		}
	}
}

func TestDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"", "abc", 3}, {"abc", "", 3}, {"abc", "abc", 0},
		{"rollbak", "rollback", 1}, {"rollbcak", "rollback", 1}, {"kitten", "sitting", 3},
		{"ca", "abc", 3}, // optimal string alignment, not full Damerau-Levenshtein
	} {
		if got := distance(tc.a, tc.b); got != tc.want {
			t.Errorf("distance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
