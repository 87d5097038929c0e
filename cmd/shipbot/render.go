package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"

	"github.com/shipbot/shipbot/gitops/edit"
)

// renderOptions resolves the render: section: "auto" looks for helm on
// PATH (Helm charts are not rendered when there is none, and the plans say
// so); a configured path must be an executable.
func renderOptions(r edit.RenderOptions, log *slog.Logger) (edit.RenderOptions, error) {
	switch r.Helm {
	case "auto":
		p, err := exec.LookPath("helm")
		if err != nil {
			log.Info("plans of Helm charts in the repo are not checked by rendering: no helm on PATH (render.helm)")
			r.Helm = ""
			return r, nil
		}
		r.Helm = p
	case "":
		log.Info("plans of Helm charts are not checked by rendering (render.helm: off)")
		return r, nil
	default:
		st, err := os.Stat(r.Helm)
		if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return r, fmt.Errorf("helm %s is not an executable file", r.Helm)
		}
	}
	log.Info("plans are checked by rendering", "helm", r.Helm, "timeout", r.Timeout)
	return r, nil
}
