package edit

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/pmezard/go-difflib/difflib"
	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite the after/ trees of testdata/golden")

// goldenCase is testdata/golden/<name>/case.yaml: which operation to run on
// the before/ tree, and how many lines the edit may remove and add.
type goldenCase struct {
	name string
	dir  string

	Layout          Layout   `yaml:"layout"`
	Path            string   `yaml:"path"`
	Image           string   `yaml:"image"`
	TagPath         string   `yaml:"tagPath"`
	AnnotationsPath string   `yaml:"annotationsPath"`
	DigestPath      string   `yaml:"digestPath"`
	ValuesFiles     []string `yaml:"valuesFiles"`
	Chart           string   `yaml:"chart"`
	Names           []string `yaml:"names"`
	// Digest is the new tag's digest given to SetImage (op tag).
	Digest string `yaml:"digest"`
	// Pins are the notes the edit must return about digest pins, in order.
	Pins []string `yaml:"pins"`
	// From, when set, is what CurrentTag reads on before/; FromError, the
	// ErrNoTag it must fail with there instead.
	From      string `yaml:"from"`
	FromError string `yaml:"fromError"`
	Op        string `yaml:"op"` // "tag" or "restart"
	Value     string `yaml:"value"`
	Removed   int    `yaml:"removed"`
	Added     int    `yaml:"added"`
	// Error, when set, is the error the operation must fail with (an
	// ErrNotFound); the case then has no after/ tree.
	Error string `yaml:"error"`
}

func (c goldenCase) loc() Location {
	return Location{Layout: c.Layout, Path: c.Path, Image: c.Image, TagPath: c.TagPath, AnnotationsPath: c.AnnotationsPath, DigestPath: c.DigestPath,
		ValuesFiles: c.ValuesFiles, Chart: c.Chart, Names: c.Names}
}

func (c goldenCase) run(f Files) ([]Change, error) {
	changes, _, err := c.runNotes(f)
	return changes, err
}

// runNotes runs the operation and returns the notes on digest pins too.
func (c goldenCase) runNotes(f Files) ([]Change, []string, error) {
	if c.Op == "restart" {
		changes, err := SetRestart(f, c.loc(), c.Value)
		return changes, nil, err
	}
	e, err := SetImage(f, c.loc(), SetImageOptions{Tag: c.Value, Digest: c.Digest})
	if err == nil && c.Digest == "" {
		// SetTag is SetImage without a digest.
		changes, err := SetTag(f, c.loc(), c.Value)
		if err != nil || cmp.Diff(changes, e.Changes) != "" {
			return nil, nil, fmt.Errorf("SetTag differs from SetImage without a digest: %v", err)
		}
	}
	return e.Changes, e.Notes(), err
}

func (c goldenCase) current(f Files) (string, error) {
	if c.Op == "restart" {
		return CurrentRestart(f, c.loc())
	}
	return CurrentTag(f, c.loc())
}

func goldenCases(t testing.TB) []goldenCase {
	t.Helper()
	specs, err := filepath.Glob("testdata/golden/*/case.yaml")
	if err != nil || len(specs) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	var cases []goldenCase
	for _, spec := range specs {
		b, err := os.ReadFile(spec)
		if err != nil {
			t.Fatal(err)
		}
		c := goldenCase{dir: filepath.Dir(spec), name: filepath.Base(filepath.Dir(spec))}
		dec := yaml.NewDecoder(strings.NewReader(string(b)))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil {
			t.Fatalf("%s: %v", spec, err)
		}
		if c.Op != "tag" && c.Op != "restart" {
			t.Fatalf("%s: op must be tag or restart", spec)
		}
		cases = append(cases, c)
	}
	return cases
}

// readTree loads a directory into MapFiles (nil if the directory is absent).
func readTree(t testing.TB, dir string) MapFiles {
	t.Helper()
	files := MapFiles{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = b
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func writeTree(t testing.TB, dir string, files MapFiles) {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	for p, b := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// applyChanges returns a copy of files with changes applied.
func applyChanges(t testing.TB, files MapFiles, changes []Change) MapFiles {
	t.Helper()
	out, err := applied(files, changes)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// applied returns a copy of files with changes applied; an error when a
// change doesn't fit the tree (it creates a file that exists, or its Old
// is not the file's content).
func applied(files MapFiles, changes []Change) (MapFiles, error) {
	out := MapFiles{}
	for p, b := range files {
		out[p] = b
	}
	for _, c := range changes {
		old, ok := files[c.Path]
		switch {
		case c.Old == nil && ok:
			return nil, fmt.Errorf("the change creates %s, which exists", c.Path)
		case c.Old != nil && string(old) != string(c.Old):
			return nil, fmt.Errorf("the change to %s: Old is not the file's content", c.Path)
		}
		out[c.Path] = c.New
	}
	return out, nil
}

func asStrings(files MapFiles) map[string]string {
	m := map[string]string{}
	for p, b := range files {
		m[p] = string(b)
	}
	return m
}

func TestGolden(t *testing.T) {
	for _, c := range goldenCases(t) {
		t.Run(c.name, func(t *testing.T) {
			before := readTree(t, filepath.Join(c.dir, "before"))
			if c.From != "" || c.FromError != "" {
				from, err := CurrentTag(before, c.loc())
				if c.FromError != "" && (err == nil || err.Error() != c.FromError || !errors.Is(err, ErrNoTag)) {
					t.Errorf("before the edit: CurrentTag = %q, %v; want ErrNoTag %q", from, err, c.FromError)
				}
				if c.From != "" && (err != nil || from != c.From) {
					t.Errorf("before the edit: CurrentTag = %q, %v; want %q", from, err, c.From)
				}
			}
			changes, notes, err := c.runNotes(before)
			if d := cmp.Diff(c.Pins, notes); err == nil && d != "" {
				t.Errorf("pin notes (-want +got):\n%s", d)
			}
			if c.Error != "" {
				if err == nil || err.Error() != c.Error || !errors.Is(err, ErrNotFound) {
					t.Fatalf("%s %s: got %d changes, err %v; want ErrNotFound %q", c.Op, c.Value, len(changes), err, c.Error)
				}
				if after := readTree(t, filepath.Join(c.dir, "after")); after != nil {
					t.Errorf("a case that fails has an after/ tree")
				}
				return
			}
			if err != nil {
				t.Fatalf("%s %s: %v", c.Op, c.Value, err)
			}
			got := applyChanges(t, before, changes)
			afterDir := filepath.Join(c.dir, "after")
			if *update {
				writeTree(t, afterDir, got)
			}
			want := readTree(t, afterDir)
			if d := cmp.Diff(asStrings(want), asStrings(got)); d != "" {
				t.Errorf("tree after %s %s differs from %s (-want +got):\n%s\ndiff:\n%s", c.Op, c.Value, afterDir, d, Diff(changes))
			}

			// Reading back gives the value; doing it again changes nothing.
			if v, err := c.current(got); err != nil || v != c.Value {
				t.Errorf("after the edit, current %s = %q, %v; want %q", c.Op, v, err, c.Value)
			}
			if again, err := c.run(got); !errors.Is(err, ErrUnchanged) {
				t.Errorf("second %s %s: got %d changes, err %v; want ErrUnchanged", c.Op, c.Value, len(again), err)
			}
			// Inputs covers every changed file.
			inputs, err := Inputs(got, c.loc())
			if err != nil {
				t.Fatalf("Inputs: %v", err)
			}
			for _, ch := range changes {
				if i := sort.SearchStrings(inputs, ch.Path); i == len(inputs) || inputs[i] != ch.Path {
					t.Errorf("Inputs %v misses changed file %s", inputs, ch.Path)
				}
			}
		})
	}
}

// TestGoldenMinimal checks that each golden edit touches exactly the lines
// its case.yaml says: a line-level diff of before and after (all files)
// removes and adds that many lines, no more.
func TestGoldenMinimal(t *testing.T) {
	for _, c := range goldenCases(t) {
		if c.Error != "" {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			before := readTree(t, filepath.Join(c.dir, "before"))
			after := readTree(t, filepath.Join(c.dir, "after"))
			removed, added := 0, 0
			paths := map[string]bool{}
			for p := range before {
				paths[p] = true
			}
			for p := range after {
				paths[p] = true
			}
			for p := range paths {
				if _, ok := after[p]; !ok {
					t.Errorf("%s was deleted", p)
					continue
				}
				r, a := changedLines(string(before[p]), string(after[p]))
				removed += r
				added += a
			}
			if removed != c.Removed || added != c.Added {
				t.Errorf("edit removed %d and added %d lines; want %d and %d", removed, added, c.Removed, c.Added)
			}
			// And the edit itself, not just the after/ files, agrees.
			changes, err := c.run(before)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(asStrings(after), asStrings(applyChanges(t, before, changes))); d != "" {
				t.Errorf("edit differs from after/ (-want +got):\n%s", d)
			}
		})
	}
}

// changedLines counts the lines a line-level diff removes from a and adds in b.
func changedLines(a, b string) (removed, added int) {
	m := difflib.NewMatcher(splitKeep(a), splitKeep(b))
	for _, op := range m.GetOpCodes() {
		switch op.Tag {
		case 'r', 'd', 'i':
			removed += op.I2 - op.I1
			added += op.J2 - op.J1
		}
	}
	return removed, added
}

func splitKeep(s string) []string {
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}
