package argo

import (
	"context"
	"encoding/json"
	"errors"
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

// AbortCanary runs Argo CD's "abort" resource action on the Rollout:
// Argo Rollouts scales the canary down and sends all traffic to the stable
// pods.
func (w *Watcher) AbortCanary(ctx context.Context, c gitops.Canary) error {
	return w.client.RunAction(ctx, c.ArgoApp, ResourceRef{Group: "argoproj.io", Version: "v1alpha1", Kind: "Rollout", Namespace: c.Namespace, Name: c.Name}, "abort")
}

// actionRequest is the part of Argo CD's ResourceActionRunRequestV2 shipbot
// sends (POST .../resource/actions/v2, v3.1 and later).
type actionRequest struct {
	Name         string `json:"name"`
	AppNamespace string `json:"appNamespace,omitempty"`
	Namespace    string `json:"namespace,omitempty"`
	ResourceName string `json:"resourceName"`
	Version      string `json:"version"`
	Group        string `json:"group,omitempty"`
	Kind         string `json:"kind"`
	Action       string `json:"action"`
}

// RunAction runs a resource action (restart, abort, promote-full, ...) on
// r, a resource of the application name. It uses the v2 endpoint (POST
// .../resource/actions/v2, everything in the JSON body), which Argo CD v3.1
// added and the v1 endpoint's deprecation points to; a server without it
// (v2.x, v3.0) answers 404 or 405, and shipbot then uses v1 (POST
// .../resource/actions, the resource in the query, the action name as the
// JSON body), as Argo CD's own CLI does.
func (c *Client) RunAction(ctx context.Context, name string, r ResourceRef, action string) error {
	ref := parseRef(name)
	path := "/api/v1/applications/" + url.PathEscape(ref.name) + "/resource/actions"
	var answer json.RawMessage // {} on v2 and v3
	err := c.call(ctx, c.opts.Timeout, http.MethodPost, path+"/v2", nil, actionRequest{
		Name: ref.name, AppNamespace: ref.namespace, Namespace: r.Namespace, ResourceName: r.Name,
		Version: r.Version, Group: r.Group, Kind: r.Kind, Action: action,
	}, &answer)
	var ae *APIError
	if errors.As(err, &ae) && (ae.StatusCode == http.StatusNotFound || ae.StatusCode == http.StatusMethodNotAllowed || ae.StatusCode == http.StatusNotImplemented) {
		q := url.Values{"namespace": {r.Namespace}, "resourceName": {r.Name}, "version": {r.Version}, "group": {r.Group}, "kind": {r.Kind}}
		ref.query(q)
		body, merr := json.Marshal(action)
		if merr != nil {
			return merr
		}
		err = c.call(ctx, c.opts.Timeout, http.MethodPost, path, q, json.RawMessage(body), &answer)
	}
	if err != nil {
		return fmt.Errorf("%s on %s of %s: %w", action, r, name, err)
	}
	return nil
}
