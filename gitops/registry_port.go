package gitops

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/shipbot/shipbot/gitops/repo"
)

// Registry is the image registry, as the plan of a rollback or a promotion
// asks it: does the target tag exist, and which manifest does it name?
type Registry interface {
	// Resolve returns the digest ("sha256:...") that image:tag names. The
	// error wraps ErrTagNotFound when the registry says the tag does not
	// exist; any other error means the registry could not tell
	// (unreachable, timed out, credentials refused).
	Resolve(ctx context.Context, image, tag string) (digest string, err error)
}

// ErrTagNotFound means the registry answered that the tag does not exist.
var ErrTagNotFound = errors.New("tag not found in the registry")

// RegistryOnError is what a plan does when the registry can't tell whether
// the target tag exists.
type RegistryOnError string

const (
	// RegistryRefuse refuses the plan: nothing is written (fail closed, the
	// default).
	RegistryRefuse RegistryOnError = "refuse"
	// RegistryWarn lets the plan proceed; it says the tag could not be
	// checked.
	RegistryWarn RegistryOnError = "warn"
)

// Valid reports whether o is a known value.
func (o RegistryOnError) Valid() bool { return o == RegistryRefuse || o == RegistryWarn }

// checkTag asks the registry whether p.To exists (rollback and promote, when
// a Registry is configured) and fills p.Digest and p.TagNote: a tag that
// does not exist is refused; a registry that can't tell refuses the plan
// unless RegistryOnError is warn. A re-plan of the same tag (the committer's
// retry on a new tip) keeps what the first plan learnt. A re-plan of a
// proposal (pinned) never fails because the registry is down: the tag was
// checked when it was proposed, and an outage must not close an approved
// proposal; a tag deleted since is still refused.
func (s *Service) checkTag(ctx context.Context, snap *repo.Snapshot, p *Plan) error {
	if s.o.Registry == nil {
		return nil
	}
	if p.checked != "" && p.checked == p.To {
		return nil
	}
	p.Digest, p.TagNote, p.checked = "", "", ""
	req, t := p.Request, p.Target
	ref := t.Location.Image + ":" + p.To
	log := s.requestLogger(req)
	// The history of the target environment: which tags it ran (newest
	// first). Reading it is cheap (an in-memory index); without it the
	// plan only loses its hints.
	deployed, herr := s.deployedTags(ctx, snap, t)
	if herr != nil {
		log.Warn("registry check: can't read the history of the target", "err", herr)
	}
	digest, err := s.o.Registry.Resolve(ctx, t.Location.Image, p.To)
	var notes []string
	switch {
	case errors.Is(err, ErrTagNotFound):
		log.Info("tag not found in the registry", "image", ref, "err", err)
		msg := fmt.Sprintf("%s does not exist in the registry", ref)
		if len(deployed) > 0 {
			msg += fmt.Sprintf("; the tags deployed in %s were %s", req.Env, strings.Join(firstN(deployed, 5), ", "))
		}
		return &UserError{Message: msg + ". Nothing was written.", Err: err}
	case err != nil:
		log.Warn("registry check failed", "image", ref, "err", err, "on_error", string(s.o.RegistryOnError))
		if s.o.RegistryOnError != RegistryWarn && p.pinned == "" {
			return &UserError{Message: fmt.Sprintf("can't check that %s exists: the registry did not answer (%s). Nothing was written; try again later.", ref, userSafe(err)), Err: err}
		}
		notes = append(notes, fmt.Sprintf("%s could not be checked in the registry", p.To))
	default:
		p.Digest = digest
		notes = append(notes, fmt.Sprintf("%s found in the registry: %s", p.To, shortDigest(digest)))
	}
	if herr == nil && !slices.Contains(deployed, p.To) && p.tagSeen != p.To { // (a rollback's named tag: the plan says more, checkRollbackTag)
		notes = append(notes, fmt.Sprintf("never deployed in %s before", req.Env))
	}
	p.TagNote = strings.Join(notes, "; ")
	p.checked = p.To
	return nil
}

// deployedTags returns the tags t ran, newest first, each once, as the
// repo's history records them (the oldest state included).
func (s *Service) deployedTags(ctx context.Context, snap *repo.Snapshot, t Target) ([]string, error) {
	h := s.historyReader()
	ds, err := h.deploys(ctx, snap, t, walk{})
	if err != nil {
		return nil, err
	}
	var out []string
	add := func(tag string) {
		if tag != "" && !slices.Contains(out, tag) {
			out = append(out, tag)
		}
	}
	for _, d := range ds {
		add(d.Tag)
		add(d.From)
	}
	return out, nil
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// shortDigest shortens "sha256:0123456789abcdef..." to "sha256:0123456789ab".
func shortDigest(d string) string {
	algo, hex, ok := strings.Cut(d, ":")
	if !ok || len(hex) <= 12 {
		return d
	}
	return algo + ":" + hex[:12]
}
