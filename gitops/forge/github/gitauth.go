package github

import (
	"context"
	"net/http"
	"time"

	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
)

// GitAuth is how shipbot's clone of the environment repo authenticates to
// GitHub over HTTPS with the forge's own credentials: the token, or the App
// installation token, refreshed before it expires (a static password would
// stop working after an hour).
func (f *Forge) GitAuth() githttp.AuthMethod { return &gitAuth{token: f.token} }

type gitAuth struct {
	token func(context.Context) (string, error)
}

func (a *gitAuth) Name() string   { return "github-token" }
func (a *gitAuth) String() string { return "github-token: x-access-token:*******" }

// SetAuth sets HTTP basic auth with the user x-access-token, as GitHub
// documents for installation tokens (it works for personal tokens too).
func (a *gitAuth) SetAuth(r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	tok, err := a.token(ctx)
	if err != nil || tok == "" {
		return // the request goes without credentials and GitHub refuses it
	}
	r.SetBasicAuth("x-access-token", tok)
}
