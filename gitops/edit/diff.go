package edit

import (
	"bytes"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
)

// Diff renders changes as a unified diff with a/ and b/ headers and three
// lines of context; a created file is diffed against /dev/null.
func Diff(changes []Change) string {
	var b strings.Builder
	for _, c := range changes {
		if c.Old != nil && c.New != nil && bytes.Equal(c.Old, c.New) {
			continue
		}
		from, to := "a/"+c.Path, "b/"+c.Path
		if c.Old == nil {
			from = "/dev/null"
		}
		if c.New == nil {
			to = "/dev/null"
		}
		s, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
			A:        diffLines(c.Old),
			B:        diffLines(c.New),
			FromFile: from,
			ToFile:   to,
			Context:  3,
		})
		if err != nil {
			s = "diff of " + c.Path + " failed: " + err.Error() + "\n"
		}
		b.WriteString(s)
	}
	return b.String()
}

// diffLines splits content into lines that keep their line breaks; a last
// line without one is marked the way diff(1) marks it.
func diffLines(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	lines := strings.SplitAfter(string(b), "\n")
	if last := len(lines) - 1; lines[last] == "" {
		lines = lines[:last]
	} else {
		lines[last] += "\n\\ No newline at end of file\n"
	}
	return lines
}
