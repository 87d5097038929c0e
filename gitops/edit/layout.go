package edit

import "context"

// layout is one way an app's manifests can be laid out for an environment.
// Each layout is one implementation, in its own file: kustomize.go,
// helm.go, manifest.go, application.go. The exported functions (CurrentTag,
// SetImage, CurrentRestart, SetRestart, Inputs) validate the Location, pick
// the layout and check its result; a layout only finds and edits fields.
type layout interface {
	// validate checks the layout's own fields of a normalized loc.
	validate(loc Location) error
	// currentTag returns the tag deployed at loc; ErrNoTag when it isn't
	// written where the layout keeps it.
	currentTag(f Files, loc Location) (string, error)
	// setImage writes opts.Tag (and keeps digest pins consistent).
	setImage(f Files, loc Location, opts SetImageOptions) (ImageEdit, error)
	// currentRestart returns the restart value, "" if none yet.
	currentRestart(f Files, loc Location) (string, error)
	// setRestart restarts exactly the app's workloads with value.
	setRestart(f Files, loc Location, value string) ([]Change, error)
	// inputs lists the repo paths whose content determines the tag and the
	// restart (files that may not exist yet included).
	inputs(f Files, loc Location) ([]string, error)
	// renderer says how Verify renders the app at loc (see verify.go).
	renderer(ctx context.Context, f Files, loc Location, opts RenderOptions) appRenderer
}

// appRenderer is how one app is rendered to check a change.
type appRenderer struct {
	name string // Verification.Renderer
	what string // what is rendered, for messages: "the kustomization in …"
	// hint is said when a restart reaches no pod template: where the
	// layout puts the restart, and what to check.
	hint   string
	render func(Files) ([]map[string]any, error)
	// reason says why the app can't be rendered (render is nil).
	reason string
}

// layoutOf returns the implementation of l, nil if l is unknown.
func layoutOf(l Layout) layout {
	switch l {
	case LayoutKustomize:
		return kustomizeLayout{}
	case LayoutHelm:
		return helmLayout{}
	case LayoutManifest:
		return manifestLayout{}
	case LayoutApplication:
		return applicationLayout{}
	}
	return nil
}
