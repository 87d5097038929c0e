package gitops

import (
	"context"
	"fmt"

	"github.com/shipbot/shipbot/templates"
)

// RecentChanges is what changed for app in env, newest first: shipbot's
// changes and anyone else's commits to the app's files, with who, why and
// when, as `history` shows them (at most limit; 0 = the default). It is
// what an incident message shows when an alert for the app fires: the
// operator chose the channel, so no requester's policy applies; the
// rollback it offers goes through the policy like any request.
func (s *Service) RecentChanges(ctx context.Context, app, env string, limit int) (string, error) {
	t, _, err := s.o.Catalog.Target(app, env)
	if err != nil {
		return "", err
	}
	snap, err := s.o.Repo.Fetch(ctx)
	if err != nil {
		return "", fmt.Errorf("what changed for %s in %s: %w", app, env, err)
	}
	if limit <= 0 {
		limit = s.o.HistoryLimit
	}
	deploys, err := s.historyReader().deploys(ctx, snap, t, walk{limit: limit})
	if err != nil {
		return "", fmt.Errorf("what changed for %s in %s: %w", app, env, err)
	}
	data := templates.History{App: app, Env: env, Now: s.o.Now()}
	for _, d := range deploys {
		data.Changes = append(data.Changes, change(d))
	}
	return templates.HistoryReply(data)
}
