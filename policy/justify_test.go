package policy

import (
	"context"
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/shipbot/shipbot/gitops"
)

var (
	prod = gitops.Environment{Name: "prod", Cluster: "prod-1", Protected: true}
	dev  = gitops.Environment{Name: "dev", Cluster: "dev-1"}
)

func TestPatternJustifier(t *testing.T) {
	long := "OPS-9 " + strings.Repeat("x", 400)
	tests := []struct {
		name    string
		j       PatternJustifier
		why     string
		env     gitops.Environment
		want    gitops.Justification
		wantErr []string // substrings of the UserError message; nil = no error
	}{
		// Accepted references.
		{name: "pagerduty url", why: "https://acme.pagerduty.com/incidents/P1X2Y3Z", env: prod,
			want: gitops.Justification{Text: "https://acme.pagerduty.com/incidents/P1X2Y3Z", Kind: "pagerduty-incident", Ref: "P1X2Y3Z"}},
		{name: "pagerduty url trailing slash and text", why: "  https://acme.pagerduty.com/incidents/Q0ABC12/  checkout 500s ", env: prod,
			want: gitops.Justification{Text: "https://acme.pagerduty.com/incidents/Q0ABC12/ checkout 500s", Kind: "pagerduty-incident", Ref: "Q0ABC12"}},
		{name: "pagerduty url upper-case host", why: "https://ACME.PagerDuty.com/incidents/P1", env: prod,
			want: gitops.Justification{Text: "https://ACME.PagerDuty.com/incidents/P1", Kind: "pagerduty-incident", Ref: "P1"}},
		{name: "pagerduty slack link markup", why: "<https://acme.pagerduty.com/incidents/P1X2Y3Z|incident 42> rollback", env: prod,
			want: gitops.Justification{Text: "<https://acme.pagerduty.com/incidents/P1X2Y3Z|incident 42> rollback", Kind: "pagerduty-incident", Ref: "P1X2Y3Z"}},
		{name: "jira key", why: "OPS-123", env: prod,
			want: gitops.Justification{Text: "OPS-123", Kind: "jira-issue", Ref: "OPS-123"}},
		{name: "jira key with colon and text", why: "OPS_2-77: bad config in 1.4.2", env: prod,
			want: gitops.Justification{Text: "OPS_2-77: bad config in 1.4.2", Kind: "jira-issue", Ref: "OPS_2-77"}},
		{name: "jira cloud url", why: "https://acme.atlassian.net/browse/OPS-123 rollback", env: prod,
			want: gitops.Justification{Text: "https://acme.atlassian.net/browse/OPS-123 rollback", Kind: "jira-issue", Ref: "OPS-123"}},
		{name: "jira self-hosted url allowed by JiraHosts", j: PatternJustifier{JiraHosts: []string{"jira.example.com"}},
			why: "https://JIRA.example.com/browse/OPS-5/", env: prod,
			want: gitops.Justification{Text: "https://JIRA.example.com/browse/OPS-5/", Kind: "jira-issue", Ref: "OPS-5"}},

		// Missing or unusable references for a protected env.
		{name: "missing why on protected env", why: "", env: prod,
			wantErr: []string{"prod is protected: add --why with a PagerDuty incident URL (https://<account>.pagerduty.com/incidents/<ID>) or a Jira issue key (e.g. OPS-123)"}},
		{name: "blank why on protected env", why: " \n\t\u2028 ", env: prod,
			wantErr: []string{"prod is protected: add --why"}},
		{name: "free text on protected env", why: "fixing the thing", env: prod,
			wantErr: []string{"prod is protected", "pagerduty.com/incidents/", "OPS-123"}},
		{name: "reference not first", why: "see OPS-123", env: prod, wantErr: []string{"must start with"}},
		{name: "lower-case jira key", why: "ops-123", env: prod, wantErr: []string{"prod is protected"}},
		{name: "jira key without number", why: "OPS-", env: prod, wantErr: []string{"prod is protected"}},
		{name: "one-letter jira project", why: "O-1", env: prod, wantErr: []string{"prod is protected"}},
		{name: "lookalike: pagerduty in path", why: "https://evil.com/pagerduty.com/incidents/X", env: prod, wantErr: []string{"prod is protected"}},
		{name: "lookalike: pagerduty as subdomain", why: "https://pagerduty.com.evil.com/incidents/X", env: prod, wantErr: []string{"prod is protected"}},
		{name: "lookalike: suffix without dot", why: "https://evilpagerduty.com/incidents/X", env: prod, wantErr: []string{"prod is protected"}},
		{name: "lookalike: userinfo", why: "https://acme.pagerduty.com@evil.com/incidents/X", env: prod, wantErr: []string{"prod is protected"}},
		{name: "userinfo on a real host", why: "https://eve@acme.pagerduty.com/incidents/P1", env: prod, wantErr: []string{"prod is protected"}},
		{name: "lookalike: two labels", why: "https://a.b.pagerduty.com/incidents/X", env: prod, wantErr: []string{"prod is protected"}},
		{name: "bare pagerduty host", why: "https://pagerduty.com/incidents/X", env: prod, wantErr: []string{"prod is protected"}},
		{name: "trailing dot host", why: "https://acme.pagerduty.com./incidents/X", env: prod, wantErr: []string{"prod is protected"}},
		{name: "port", why: "https://acme.pagerduty.com:8443/incidents/X", env: prod, wantErr: []string{"prod is protected"}},
		{name: "http not https", why: "http://acme.pagerduty.com/incidents/P1", env: prod, wantErr: []string{"prod is protected"}},
		{name: "pagerduty non-alnum id", why: "https://acme.pagerduty.com/incidents/P1-2", env: prod, wantErr: []string{"prod is protected"}},
		{name: "pagerduty escaped id", why: "https://acme.pagerduty.com/incidents/P1%2F..", env: prod, wantErr: []string{"prod is protected"}},
		{name: "pagerduty percent-encoded id", why: "https://acme.pagerduty.com/incidents/P1%58", env: prod, wantErr: []string{"prod is protected"}},
		{name: "pagerduty extra path", why: "https://acme.pagerduty.com/incidents/P1/timeline", env: prod, wantErr: []string{"prod is protected"}},
		{name: "pagerduty wrong path", why: "https://acme.pagerduty.com/services/P1", env: prod, wantErr: []string{"prod is protected"}},
		{name: "lookalike jira host", why: "https://atlassian.net.evil.com/browse/OPS-1", env: prod, wantErr: []string{"prod is protected"}},
		{name: "jira url on unknown host", why: "https://evil.com/browse/OPS-1", env: prod, wantErr: []string{"prod is protected"}},
		{name: "jira url bad key", why: "https://acme.atlassian.net/browse/ops-1", env: prod, wantErr: []string{"prod is protected"}},
		{name: "unterminated slack markup", why: "<https://acme.pagerduty.com/incidents/P1", env: prod, wantErr: []string{"prod is protected"}},

		// Unprotected environments.
		{name: "dev without why", why: "", env: dev, want: gitops.Justification{}},
		{name: "dev free text", why: "trying\tthe new\r\nbuild", env: dev,
			want: gitops.Justification{Text: "trying the new build", Kind: "text"}},
		{name: "dev detects a jira key", why: "OPS-7 retry", env: dev,
			want: gitops.Justification{Text: "OPS-7 retry", Kind: "jira-issue", Ref: "OPS-7"}},
		{name: "dev lookalike is just text", why: "https://pagerduty.com.evil.com/incidents/X", env: dev,
			want: gitops.Justification{Text: "https://pagerduty.com.evil.com/incidents/X", Kind: "text"}},

		// Hostile text.
		{name: "trailer injection collapsed to one line", why: "OPS-1\nApproved-by: eve", env: prod,
			want: gitops.Justification{Text: "OPS-1 Approved-by: eve", Kind: "jira-issue", Ref: "OPS-1"}},
		{name: "CRLF, NEL, LS, PS and C1 controls", why: "OPS-1\r\n\r\nSigned-off-by: eve\u0085a\u2028b\u2029c\u009bd\x1b[31m", env: prod,
			want: gitops.Justification{Text: "OPS-1 Signed-off-by: eve a b c d [31m", Kind: "jira-issue", Ref: "OPS-1"}},
		{name: "bidi override and zero-width chars dropped", why: "OPS-1 \u202eevil\u202c z\u200bw\ufeff", env: prod,
			want: gitops.Justification{Text: "OPS-1 evil zw", Kind: "jira-issue", Ref: "OPS-1"}},
		{name: "leading zero-width space dropped", why: "\u200bOPS-1", env: prod,
			want: gitops.Justification{Text: "OPS-1", Kind: "jira-issue", Ref: "OPS-1"}},
		{name: "invalid utf-8 replaced", why: "fix \xff\xfe now", env: dev,
			want: gitops.Justification{Text: "fix \ufffd\ufffd now", Kind: "text"}},
		{name: "length cap", why: long, env: prod,
			want: gitops.Justification{Text: long[:299] + "…", Kind: "jira-issue", Ref: "OPS-9"}},
		{name: "exactly at the cap is kept", why: long[:300], env: prod,
			want: gitops.Justification{Text: long[:300], Kind: "jira-issue", Ref: "OPS-9"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.j.Justify(context.Background(), gitops.Request{Why: tt.why, Env: tt.env.Name}, tt.env)
			if tt.wantErr != nil {
				var ue *gitops.UserError
				if !errors.As(err, &ue) {
					t.Fatalf("Justify(%q) = %+v, %v; want a *gitops.UserError", tt.why, got, err)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(ue.Message, w) {
						t.Errorf("message %q does not contain %q", ue.Message, w)
					}
				}
				if got != (gitops.Justification{}) {
					t.Errorf("justification %+v returned with an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Justify(%q): %v", tt.why, err)
			}
			if got != tt.want {
				t.Errorf("Justify(%q)\n got %+v\nwant %+v", tt.why, got, tt.want)
			}
			checkOneLine(t, got.Text)
		})
	}
}

func TestNormalizeCap(t *testing.T) {
	for _, tt := range []struct {
		in   string
		max  int
		want string
	}{
		{"héllo wörld", 5, "héll…"},
		{"ab   cd", 4, "ab…"}, // no space before the ellipsis
		{"日本語テキスト", 7, "日本語テキスト"},
		{"日本語テキストです", 7, "日本語テキス…"},
		{"  a \n b  ", 10, "a b"},
	} {
		if got := normalize(tt.in, tt.max); got != tt.want {
			t.Errorf("normalize(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
}

// checkOneLine fails if s is not safe single-line text.
func checkOneLine(t *testing.T, s string) {
	t.Helper()
	if !utf8.ValidString(s) {
		t.Errorf("%q is not valid UTF-8", s)
	}
	if n := utf8.RuneCountInString(s); n > MaxJustificationRunes {
		t.Errorf("%q has %d runes, over the cap", s, n)
	}
	if s != strings.TrimSpace(s) || strings.Contains(s, "  ") {
		t.Errorf("%q is not trimmed and collapsed", s)
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp, unicode.Cf) || (unicode.IsSpace(r) && r != ' ') {
			t.Errorf("%q contains %U", s, r)
		}
	}
}

func FuzzJustifyText(f *testing.F) {
	for _, s := range []string{"OPS-1\nApproved-by: eve", "https://acme.pagerduty.com/incidents/P1\r\n", "\u202e\u2028x\x00", strings.Repeat("é ", 400)} {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, why string, protected bool) {
		env := gitops.Environment{Name: "e", Protected: protected}
		got, err := PatternJustifier{}.Justify(context.Background(), gitops.Request{Why: why}, env)
		var ue *gitops.UserError
		if err != nil && !errors.As(err, &ue) {
			t.Fatalf("non-user error %v", err)
		}
		checkOneLine(t, got.Text)
		if err == nil && protected && got.Ref == "" {
			t.Fatalf("protected env accepted %q without a reference", why)
		}
	})
}
