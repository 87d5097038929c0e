package argo

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/shipbot/shipbot/gitops"
)

var _ gitops.Canaries = (*Watcher)(nil)

// rolloutUpdating are the health states Argo CD gives an Argo Rollout in
// the middle of an update: Progressing while it shifts traffic or waits for
// its analysis, Suspended while a canary step pauses.
var rolloutUpdating = map[string]bool{"Progressing": true, "Suspended": true, "Paused": true}

// Canary finds a Rollout of the app that deploys t in the middle of an
// update, from the app's resource tree (nil: none).
func (w *Watcher) Canary(ctx context.Context, t gitops.Target) (*gitops.Canary, error) {
	name, _, err := w.appOf(ctx, t)
	if err != nil {
		return nil, err
	}
	tree, err := w.client.Tree(ctx, name)
	if err != nil {
		return nil, err
	}
	for _, n := range tree.Nodes {
		if n.Kind != "Rollout" || n.Group != "argoproj.io" || n.Health == nil || !rolloutUpdating[n.Health.Status] {
			continue
		}
		return &gitops.Canary{ArgoApp: name, Namespace: n.Namespace, Name: n.Name, Health: n.Health.Status, Message: n.Health.Message}, nil
	}
	return nil, nil
}

// AbortCanary runs Argo CD's "abort" resource action on the Rollout (POST
// /api/v1/applications/{name}/resource/actions, the action name as the
// JSON body): Argo Rollouts scales the canary down and sends all traffic
// to the stable pods.
func (w *Watcher) AbortCanary(ctx context.Context, c gitops.Canary) error {
	return w.client.RunAction(ctx, c.ArgoApp, ResourceRef{Group: "argoproj.io", Version: "v1alpha1", Kind: "Rollout", Namespace: c.Namespace, Name: c.Name}, "abort")
}

// RunAction runs a resource action (restart, abort, promote-full, ...) on
// r, a resource of the application name.
func (c *Client) RunAction(ctx context.Context, name string, r ResourceRef, action string) error {
	ref := parseRef(name)
	q := url.Values{"namespace": {r.Namespace}, "resourceName": {r.Name}, "version": {r.Version}, "group": {r.Group}, "kind": {r.Kind}}
	ref.query(q)
	body, err := json.Marshal(action)
	if err != nil {
		return err
	}
	var answer json.RawMessage // {} on v2 and v3
	if err := c.call(ctx, c.opts.Timeout, http.MethodPost, "/api/v1/applications/"+url.PathEscape(ref.name)+"/resource/actions", q, json.RawMessage(body), &answer); err != nil {
		return fmt.Errorf("%s on %s of %s: %w", action, r, name, err)
	}
	return nil
}
