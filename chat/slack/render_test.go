package slack

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shipbot/shipbot/gitops"
)

func TestEscape(t *testing.T) {
	in := "<!channel> <@U123> <https://evil.example|click> a & b"
	want := "&lt;!channel&gt; &lt;@U123&gt; &lt;https://evil.example|click&gt; a &amp; b"
	if got := escape(in); got != want {
		t.Errorf("escape = %q, want %q", got, want)
	}
	if got := unescaper.Replace("a &amp;lt; b &lt;x&gt;"); got != "a &lt; b <x>" {
		t.Errorf("unescape = %q", got)
	}
}

func TestDiffTextCut(t *testing.T) {
	var b strings.Builder
	for i := range 100 {
		fmt.Fprintf(&b, "+line %d <@U1>\n", i)
	}
	got := diffText(b.String(), 40)
	if !strings.HasPrefix(got, "```\n+line 0 &lt;@U1&gt;\n") || !strings.HasSuffix(got, "\n… 60 more lines\n```") {
		t.Errorf("cut diff:\n%s", got)
	}
	if n := strings.Count(got, "\n"); n != 42 {
		t.Errorf("%d lines, want 40 + note + fences", n)
	}

	// Long lines: the byte budget cuts before the line count does.
	long := strings.Repeat(strings.Repeat("x", 500)+"\n", 30)
	got = diffText(long, 40)
	if len(got) > 3000 || !strings.Contains(got, "more lines") {
		t.Errorf("%d bytes, want <= 3000 with a note", len(got))
	}
	// One huge line is shortened, on a rune boundary.
	got = diffText(strings.Repeat("é", 5000), 40)
	if len(got) > 3000 || !strings.Contains(got, "…") || !json.Valid([]byte(fmt.Sprintf("%q", got))) {
		t.Errorf("huge line: %d bytes", len(got))
	}
	if diffText("", 40) != "_(no diff)_" {
		t.Error("empty diff")
	}
	if got := diffText("-a\n+b\n", 40); got != "```\n-a\n+b\n```" {
		t.Errorf("short diff = %q", got)
	}
}

func TestTextSections(t *testing.T) {
	if got := textSections("hello"); len(got) != 1 || got[0] != "hello" {
		t.Errorf("short = %q", got)
	}
	// A code block longer than one section is closed and reopened.
	var b strings.Builder
	b.WriteString("history:\n```\n")
	for i := range 200 {
		fmt.Fprintf(&b, "  2026-11-%02d  rollback 1.4.%d -> 1.4.%d  by alice  abc1234  INC-%d\n", i%28+1, i+1, i, i)
	}
	b.WriteString("```\nend")
	secs := textSections(b.String())
	if len(secs) < 3 {
		t.Fatalf("%d sections, want several", len(secs))
	}
	for i, s := range secs {
		if len(s) > 3000 {
			t.Errorf("section %d: %d bytes", i, len(s))
		}
		if strings.Count(s, "```")%2 != 0 {
			t.Errorf("section %d has unbalanced fences:\n%s", i, s)
		}
	}
	if !strings.HasSuffix(secs[len(secs)-1], "end") {
		t.Errorf("last section: %q", secs[len(secs)-1])
	}
	// Past the section limit the rest is counted, not sent.
	huge := strings.Repeat(strings.Repeat("y", 200)+"\n", 2000)
	secs = textSections(huge)
	if len(secs) != maxTextSections || !strings.Contains(secs[len(secs)-1], "more lines") {
		t.Errorf("%d sections, last %q", len(secs), secs[len(secs)-1][max(0, len(secs[len(secs)-1])-40):])
	}
}

func TestPlanMessage(t *testing.T) {
	p := &gitops.Plan{
		Request:       gitops.Request{ID: "shp-abc", Action: gitops.ActionRollback, App: "checkout", Env: "prod"},
		Environment:   gitops.Environment{Name: "prod", Protected: true},
		Justification: gitops.Justification{Text: "<!here> INC-1"},
		Summary:       "rollback checkout in prod: 1.4.2 -> 1.4.1",
		Diff:          "-    newTag: 1.4.2\n+    newTag: 1.4.1\n",
	}
	m := planMessage(p, "UALICE", (2 * time.Minute).String(), p.Request.ID, 40)
	b, err := json.Marshal(m.blocks)
	if err != nil {
		t.Fatal(err)
	}
	got := shown(string(b))
	for _, want := range []string{"why: &lt;!here&gt; INC-1", "*prod is protected.*", "Only <@UALICE> can confirm", "cancelled after 2m0s", "Confirm", "Cancel"} {
		if !strings.Contains(got, want) {
			t.Errorf("plan lacks %q:\n%s", want, got)
		}
	}
	if len(m.blocks) > 50 {
		t.Errorf("%d blocks", len(m.blocks))
	}
	if strings.Contains(m.text, "<!here>") {
		t.Errorf("fallback text not escaped: %q", m.text)
	}
}
