package config

import (
	"strconv"
	"strings"
	"testing"
)

func TestValuesPathValidation(t *testing.T) {
	cases := []struct {
		path string
		bad  string // "" if the path is valid, else part of the problem
	}{
		{"image.tag", ""},
		{"server.extraContainers[0].image.tag", ""},
		{`"my.key".tag`, ""},
		{`labels.'app.kubernetes.io/version'`, ""},
		{"a[1][2].b", ""},
		{"a..b", "empty key at offset 2"},
		{"a[", "a list index is [N] with N a number from 0 at offset 1"},
		{"a[x]", "a list index is [N] with N a number from 0 at offset 1"},
		{"a[-1]", "a list index is [N] with N a number from 0 at offset 1"},
		{`"a.b`, "unterminated \" quote at offset 0"},
	}
	for _, c := range cases {
		for _, key := range []string{"tagPath", "annotationsPath", "digestPath"} {
			doc := strings.Replace(good, "tagPath: app.image.tag", key+": "+strconv.Quote(c.path), 1)
			_, err := Parse("shipbot.yaml", []byte(doc))
			if c.bad == "" {
				if err != nil {
					t.Errorf("%s %s: %v", key, c.path, err)
				}
				continue
			}
			want := "apps.payments.envs.prod." + key + " (line 27): " + strconv.Quote(c.path) + " is not a dotted path like image.tag"
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "("+c.bad+")") {
				t.Errorf("%s %s: err = %v; want %q ... (%s)", key, c.path, err, want, c.bad)
			}
		}
	}
}
