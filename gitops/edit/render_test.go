package edit

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// kustomizeBuild returns a command that renders a kustomization directory:
// `kustomize build` or `kubectl kustomize`, whichever is on PATH.
func kustomizeBuild(t *testing.T) func(dir string) ([]byte, error) {
	t.Helper()
	var name string
	var args []string
	if p, err := exec.LookPath("kustomize"); err == nil {
		name, args = p, []string{"build"}
	} else if p, err := exec.LookPath("kubectl"); err == nil {
		name, args = p, []string{"kustomize"}
	} else {
		t.Skip("neither kustomize nor kubectl is on PATH")
	}
	return func(dir string) ([]byte, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, name, append(args, dir)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("%s %v %s: %v\n%s", name, args, dir, err, stderr.Bytes())
		}
		return out, nil
	}
}

// stripRestarts removes every restart (the annotation, spec.restartAt) from
// rendered documents.
func stripRestarts(docs []any) []any {
	for _, d := range docs {
		mdelete(mget(d, "spec"), "restartAt")
		for _, tp := range [][]string{{"spec", "template"}, {"spec", "jobTemplate", "spec", "template"}} {
			md := getKeys(d, append(append([]string(nil), tp...), "metadata")...)
			ann := mget(md, "annotations")
			mdelete(ann, RestartAnnotation)
			if m, ok := ann.(map[string]any); ok && len(m) == 0 {
				mdelete(md, "annotations")
			}
		}
	}
	return docs
}

// checkRestartedExactly asserts that after is before with exactly the app's
// workloads restarted (modelRestart, applied to before without any
// restart): no other pod template carries the annotation.
func checkRestartedExactly(t *testing.T, c goldenCase, before, after []byte) {
	t.Helper()
	b, err := decodeDocs(before)
	if err != nil {
		t.Fatal(err)
	}
	a, err := decodeDocs(after)
	if err != nil {
		t.Fatal(err)
	}
	// Other workloads keep whatever restart they had (removing it would
	// roll their pods too).
	want := modelRestart(b, c.Image, c.Value)
	if d := cmp.Diff(want, a, cmpopts.EquateEmpty()); d != "" {
		t.Errorf("rendered after/ is not before/ with exactly the app's workloads restarted (-want +got):\n%s", d)
	}
	restarted := 0
	for _, d := range a {
		if getKeys(d, "spec", "restartAt") == c.Value || getKeys(d, "spec", "template", "metadata", "annotations", RestartAnnotation) == c.Value {
			restarted++
		}
	}
	if restarted == 0 {
		t.Error("nothing restarted")
	}
}

// TestGoldenRendered renders the before/ and after/ trees of the kustomize
// restart cases with kustomize and checks that exactly the app's pod
// templates (Rollouts: spec.restartAt) changed, and only their restart.
func TestGoldenRendered(t *testing.T) {
	var build func(string) ([]byte, error)
	for _, c := range goldenCases(t) {
		if c.Layout != LayoutKustomize || c.Op != "restart" || c.Error != "" {
			continue
		}
		if build == nil {
			build = kustomizeBuild(t)
		}
		t.Run(c.name, func(t *testing.T) {
			after, err := build(filepath.Join(c.dir, "after", filepath.FromSlash(c.Path)))
			if err != nil {
				t.Fatal(err)
			}
			before, err := build(filepath.Join(c.dir, "before", filepath.FromSlash(c.Path)))
			if err != nil {
				// A before/ that doesn't build (a listed patch file that is
				// missing): compare after/ with itself, restarts stripped.
				t.Logf("before/ doesn't build; checking after/ alone: %v", err)
				before = after
			}
			checkRestartedExactly(t, c, before, after)
		})
	}
}

// TestGoldenManifestRestarts checks the manifest restart cases the same way,
// on the files themselves.
func TestGoldenManifestRestarts(t *testing.T) {
	for _, c := range goldenCases(t) {
		if c.Layout != LayoutManifest || c.Op != "restart" || c.Error != "" {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			before := readTree(t, filepath.Join(c.dir, "before"))
			after := readTree(t, filepath.Join(c.dir, "after"))
			for p := range before {
				checkRestartedExactlyFile(t, c, before[p], after[p])
			}
		})
	}
}

// checkRestartedExactlyFile is checkRestartedExactly for one file, which
// may hold no workload of the app (then nothing may change).
func checkRestartedExactlyFile(t *testing.T, c goldenCase, before, after []byte) {
	t.Helper()
	b, err := decodeDocs(before)
	if err != nil {
		t.Fatal(err)
	}
	a, err := decodeDocs(after)
	if err != nil {
		t.Fatal(err)
	}
	// Restarts already there stay on workloads that aren't the app's.
	want := modelRestart(b, c.Image, c.Value)
	if d := cmp.Diff(want, a, cmpopts.EquateEmpty()); d != "" {
		t.Errorf("after/ is not before/ with exactly the app's workloads restarted (-want +got):\n%s", d)
	}
}
