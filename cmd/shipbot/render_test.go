package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/shipbot/shipbot/gitops/edit"
)

// A configured helm must be an executable file; off stays off.
func TestRenderOptions(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	notExec := filepath.Join(dir, "helm.txt")
	exe := filepath.Join(dir, "helm")
	if err := os.WriteFile(notExec, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{notExec, dir, filepath.Join(dir, "missing")} {
		if _, err := renderOptions(edit.RenderOptions{Helm: bad}, log); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
	if r, err := renderOptions(edit.RenderOptions{Helm: exe}, log); err != nil || r.Helm != exe {
		t.Errorf("executable: %+v, %v", r, err)
	}
	if r, err := renderOptions(edit.RenderOptions{}, log); err != nil || r.Helm != "" {
		t.Errorf("off: %+v, %v", r, err)
	}
	t.Setenv("PATH", dir)
	if r, err := renderOptions(edit.RenderOptions{Helm: "auto"}, log); err != nil || r.Helm != exe {
		t.Errorf("auto with helm on PATH: %+v, %v", r, err)
	}
	t.Setenv("PATH", t.TempDir())
	if r, err := renderOptions(edit.RenderOptions{Helm: "auto"}, log); err != nil || r.Helm != "" {
		t.Errorf("auto without helm: %+v, %v", r, err)
	}
}
