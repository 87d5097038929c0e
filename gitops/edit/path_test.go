package edit

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseValuesPath(t *testing.T) {
	k := func(s string) pathStep { return pathStep{key: s, index: -1} }
	i := func(n int) pathStep { return pathStep{index: n} }
	good := []struct {
		in   string
		want []pathStep
	}{
		{"tag", []pathStep{k("tag")}},
		{"image.tag", []pathStep{k("image"), k("tag")}},
		{"app-1.image_x.tag", []pathStep{k("app-1"), k("image_x"), k("tag")}},
		{"server.extraContainers[0].image.tag", []pathStep{k("server"), k("extraContainers"), i(0), k("image"), k("tag")}},
		{"a[1][12].b", []pathStep{k("a"), i(1), i(12), k("b")}},
		{"tags[3]", []pathStep{k("tags"), i(3)}},
		{`"my.key".tag`, []pathStep{k("my.key"), k("tag")}},
		{`labels.'app.kubernetes.io/version'`, []pathStep{k("labels"), k("app.kubernetes.io/version")}},
		{`"a.b"[0]."c d"`, []pathStep{k("a.b"), i(0), k("c d")}},
		{`'say "hi"'.x`, []pathStep{k(`say "hi"`), k("x")}},
	}
	for _, c := range good {
		vp, err := parseValuesPath(c.in)
		if err != nil || !reflect.DeepEqual(vp.steps, c.want) {
			t.Errorf("parseValuesPath(%q) = %+v, %v; want %+v", c.in, vp.steps, err, c.want)
		}
		if err := ValidateValuesPath(c.in); err != nil {
			t.Errorf("ValidateValuesPath(%q) = %v", c.in, err)
		}
	}
	bad := []struct{ in, msg string }{
		{"", "empty"},
		{"a..b", "empty key"},
		{".a", "empty key"},
		{"a.", "empty key"},
		{"a[", "list index"},
		{"a[]", "list index"},
		{"a[x]", "list index"},
		{"a[-1]", "list index"},
		{"a[1", "list index"},
		{"a[1]b", "expected . or ["},
		{"[0]", "unexpected"},
		{"a]", "expected . or ["},
		{"image tag", "expected . or ["},
		{`"a.b`, "unterminated"},
		{`"".a`, "empty quoted key"},
		{`"a"b`, "expected . or ["},
		{"a[99999999999999999999]", "too large"},
		{"a.b$", "expected . or ["},
		{"a.$b", "unexpected"},
	}
	for _, c := range bad {
		_, err := parseValuesPath(c.in)
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("parseValuesPath(%q) = %v; want an error with %q", c.in, err, c.msg)
		}
	}
}

func TestHelmIndexedPaths(t *testing.T) {
	values := []byte("a:\n  list:\n  - name: x\n    image: {tag: \"1.0\", digest: \"sha256:" + strings.Repeat("a", 64) + "\"}\n  - plain\n  map: {k: v}\n  pod:\n  - annotations: {}\n")
	f := MapFiles{"v.yaml": values}
	loc := Location{Layout: LayoutHelm, Path: "v.yaml", TagPath: "a.list[0].image.tag"}
	if tag, err := CurrentTag(f, loc); err != nil || tag != "1.0" {
		t.Fatalf("CurrentTag = %q, %v", tag, err)
	}
	for _, tp := range []string{"a.map[0].tag", "a.list[5].tag", "a.list[1].tag", "a.missing[0].tag"} {
		loc := Location{Layout: LayoutHelm, Path: "v.yaml", TagPath: tp}
		_, err := SetTag(f, loc, "2.0")
		if tp == "a.list[1].tag" {
			// a scalar list item is not a mapping
			if err == nil {
				t.Errorf("SetTag %s: no error", tp)
			}
			continue
		}
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("SetTag %s: %v; want ErrNotFound", tp, err)
		}
		if _, err := CurrentTag(f, loc); !errors.Is(err, ErrNotFound) {
			t.Errorf("CurrentTag %s: %v; want ErrNotFound", tp, err)
		}
	}
	// The digest at an indexed path is updated with the tag.
	loc.DigestPath = "a.list[0].image.digest"
	d := "sha256:" + strings.Repeat("b", 64)
	e, err := SetImage(f, loc, SetImageOptions{Tag: "2.0", Digest: d})
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(strings.Replace(string(values), `"1.0"`, `"2.0"`, 1), strings.Repeat("a", 64), strings.Repeat("b", 64), 1)
	if len(e.Changes) != 1 || string(e.Changes[0].New) != want {
		t.Fatalf("SetImage = %+v; want\n%s", e.Changes, want)
	}
	// A restart below an indexed annotations path.
	rl := Location{Layout: LayoutHelm, Path: "v.yaml", AnnotationsPath: "a.pod[0].annotations"}
	ch, err := SetRestart(f, rl, "2024-01-01T00:00:00Z")
	if err != nil || len(ch) != 1 || !strings.Contains(string(ch[0].New), `annotations: {`+RestartAnnotation+`: "2024-01-01T00:00:00Z"}`) {
		t.Fatalf("SetRestart = %+v, %v", ch, err)
	}
	if got, err := CurrentRestart(MapFiles{"v.yaml": ch[0].New}, rl); err != nil || got != "2024-01-01T00:00:00Z" {
		t.Fatalf("CurrentRestart = %q, %v", got, err)
	}
}
