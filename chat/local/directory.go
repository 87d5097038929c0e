package local

import (
	"context"

	"github.com/shipbot/shipbot/gitops"
)

// Directory makes chat user "alice" the commit author alice <alice@Domain>.
// The local chat has no identity provider; Slack reads profile emails.
type Directory struct{ Domain string }

var _ gitops.Directory = Directory{}

// Person returns the git identity of a local chat user.
func (d Directory) Person(_ context.Context, user string) (gitops.Person, error) {
	if !userName.MatchString(user) {
		return gitops.Person{}, gitops.Userf("%q is not a valid user name", user)
	}
	return gitops.Person{Name: user, Email: user + "@" + d.Domain}, nil
}
