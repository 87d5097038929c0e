package argo

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The types below are what the rollout checks read: the resource tree with
// parents, info items and images, a live manifest, and Kubernetes events. They are kept apart from
// ResourceTree and ResourceNode, whose fields the contract test pins.

// Tree is an app's resource tree as GET .../resource-tree returns it
// (v1alpha1.ApplicationTree; the same on v2 and v3).
type Tree struct {
	Nodes []TreeNode `json:"nodes,omitempty"`
}

// ResourceRef names one Kubernetes object.
type ResourceRef struct {
	Group     string `json:"group,omitempty"`
	Version   string `json:"version,omitempty"`
	Kind      string `json:"kind,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
	UID       string `json:"uid,omitempty"`
}

func (r ResourceRef) String() string { return resourceName(r.Kind, r.Namespace, r.Name) }

// key identifies r whatever its version and uid.
func (r ResourceRef) key() string {
	return r.Group + "/" + r.Kind + "/" + r.Namespace + "/" + r.Name
}

// TreeNode is one node of a Tree: a managed resource or one of its
// children. For a Pod, Argo CD's controller fills Info with "Status Reason"
// (the container's waiting reason, e.g. ImagePullBackOff, CrashLoopBackOff,
// else the phase), "Containers" ("ready/total") and "Restart Count", and
// Images with the pod's images; its health is Degraded with the container's
// own message while a container waits on an error (Err*, *Error, *BackOff).
type TreeNode struct {
	ResourceRef
	ParentRefs []ResourceRef  `json:"parentRefs,omitempty"`
	Info       []InfoItem     `json:"info,omitempty"`
	Networking *NetworkingRef `json:"networkingInfo,omitempty"`
	Images     []string       `json:"images,omitempty"`
	Health     *HealthStatus  `json:"health,omitempty"`
	CreatedAt  *time.Time     `json:"createdAt,omitempty"`
}

// InfoItem is one name/value of a node's info.
type InfoItem struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// NetworkingRef is the part of a node's networkingInfo shipbot reads: a
// Pod's labels (pod-template-hash, controller-revision-hash).
type NetworkingRef struct {
	Labels map[string]string `json:"labels,omitempty"`
}

// info returns the value of the info item name.
func (n *TreeNode) info(name string) string {
	for _, i := range n.Info {
		if i.Name == name {
			return i.Value
		}
	}
	return ""
}

// Event is a Kubernetes core/v1 Event as GET .../events returns it.
type Event struct {
	Type           string       `json:"type,omitempty"` // Normal, Warning
	Reason         string       `json:"reason,omitempty"`
	Message        string       `json:"message,omitempty"`
	Count          int          `json:"count,omitempty"`
	Series         *EventSeries `json:"series,omitempty"` // events.k8s.io reporters: the count is here
	FirstTimestamp *time.Time   `json:"firstTimestamp,omitempty"`
	LastTimestamp  *time.Time   `json:"lastTimestamp,omitempty"`
	EventTime      *time.Time   `json:"eventTime,omitempty"`
	InvolvedObject ResourceRef  `json:"involvedObject"`
}

// EventSeries is how often an event recurred (events.k8s.io reporters).
type EventSeries struct {
	Count int `json:"count"`
}

// Times is how often the event happened.
func (e *Event) Times() int {
	n := e.Count
	if e.Series != nil && e.Series.Count > n {
		n = e.Series.Count
	}
	return max(n, 1)
}

// last is when the event last happened.
func (e *Event) last() time.Time {
	for _, t := range []*time.Time{e.LastTimestamp, e.EventTime, e.FirstTimestamp} {
		if t != nil {
			return *t
		}
	}
	return time.Time{}
}

// Tree returns the app's resource tree with parents, info and images
// (GET /api/v1/applications/{name}/resource-tree).
func (c *Client) Tree(ctx context.Context, name string) (*Tree, error) {
	ref := parseRef(name)
	q := url.Values{}
	ref.query(q)
	var tree Tree
	if err := c.call(ctx, c.opts.Timeout, http.MethodGet, "/api/v1/applications/"+url.PathEscape(ref.name)+"/resource-tree", q, nil, &tree); err != nil {
		return nil, err
	}
	return &tree, nil
}

// LiveManifest returns the live manifest (JSON) of one resource of the app,
// e.g. a Pod (GET /api/v1/applications/{name}/resource). Argo CD checks
// that the resource belongs to the app.
func (c *Client) LiveManifest(ctx context.Context, name string, r ResourceRef) ([]byte, error) {
	ref := parseRef(name)
	q := url.Values{"namespace": {r.Namespace}, "resourceName": {r.Name}, "version": {r.Version}, "group": {r.Group}, "kind": {r.Kind}}
	if r.Version == "" {
		q.Set("version", "v1")
	}
	ref.query(q)
	var out struct {
		Manifest string `json:"manifest"`
	}
	if err := c.call(ctx, c.opts.Timeout, http.MethodGet, "/api/v1/applications/"+url.PathEscape(ref.name)+"/resource", q, nil, &out); err != nil {
		return nil, err
	}
	return []byte(out.Manifest), nil
}

// Events returns the Kubernetes events of one resource of the app (its
// name, namespace and uid must all match; GET .../events).
func (c *Client) Events(ctx context.Context, name string, r ResourceRef) ([]Event, error) {
	ref := parseRef(name)
	q := url.Values{"resourceNamespace": {r.Namespace}, "resourceName": {r.Name}, "resourceUID": {r.UID}}
	ref.query(q)
	var out struct {
		Items []Event `json:"items"`
	}
	if err := c.call(ctx, c.opts.Timeout, http.MethodGet, "/api/v1/applications/"+url.PathEscape(ref.name)+"/events", q, nil, &out); err != nil {
		return nil, err
	}
	return out.Items, nil
}

// SyncWindow is one sync window of an AppProject (v1alpha1.SyncWindow).
// The application's syncwindows answer carries kind, schedule, duration
// and manualSync only; the project has them all.
type SyncWindow struct {
	Kind         string   `json:"kind,omitempty"`     // allow, deny
	Schedule     string   `json:"schedule,omitempty"` // cron: minute hour dom month dow
	Duration     string   `json:"duration,omitempty"` // Go duration, e.g. 1h30m
	Applications []string `json:"applications,omitempty"`
	Namespaces   []string `json:"namespaces,omitempty"`
	Clusters     []string `json:"clusters,omitempty"`
	ManualSync   bool     `json:"manualSync,omitempty"`
	TimeZone     string   `json:"timeZone,omitempty"`
	// UseAndOperator (v2.11+): applications, namespaces and clusters must
	// all match.
	UseAndOperator bool   `json:"andOperator,omitempty"`
	Description    string `json:"description,omitempty"` // v3
	SyncOverrun    bool   `json:"syncOverrun,omitempty"` // v3.3+
}

func (w SyncWindow) String() string {
	s := fmt.Sprintf("%s %q for %s", w.Kind, w.Schedule, w.Duration)
	if w.TimeZone != "" {
		s += " (" + w.TimeZone + ")"
	}
	if w.Description != "" {
		s += ": " + w.Description
	}
	return s
}

// same reports whether w and o are the same window as far as the
// application's syncwindows answer tells.
func (w SyncWindow) same(o SyncWindow) bool {
	return w.Kind == o.Kind && w.Schedule == o.Schedule && w.Duration == o.Duration && w.ManualSync == o.ManualSync
}

// AppSyncWindows is the answer of GET /api/v1/applications/{name}/syncwindows:
// the project's windows that match the app, those active now, and whether
// a manual sync may run now.
type AppSyncWindows struct {
	AssignedWindows []SyncWindow `json:"assignedWindows,omitempty"`
	ActiveWindows   []SyncWindow `json:"activeWindows,omitempty"`
	CanSync         *bool        `json:"canSync,omitempty"`
}

// AppSyncWindows returns the sync windows that apply to the app (needs get
// on the application only).
func (c *Client) AppSyncWindows(ctx context.Context, name string) (*AppSyncWindows, error) {
	ref := parseRef(name)
	q := url.Values{}
	ref.query(q)
	var out AppSyncWindows
	if err := c.call(ctx, c.opts.Timeout, http.MethodGet, "/api/v1/applications/"+url.PathEscape(ref.name)+"/syncwindows", q, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AppProject is the part of an AppProject shipbot reads.
type AppProject struct {
	Metadata ObjectMeta `json:"metadata"`
	Spec     struct {
		SyncWindows []SyncWindow `json:"syncWindows,omitempty"`
	} `json:"spec"`
}

// Project returns an AppProject (GET /api/v1/projects/{name}; needs get on
// projects, which an account limited to applications lacks).
func (c *Client) Project(ctx context.Context, name string) (*AppProject, error) {
	var p AppProject
	if err := c.call(ctx, c.opts.Timeout, http.MethodGet, "/api/v1/projects/"+url.PathEscape(name), nil, nil, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// ProjectOf returns the name of the app's project (spec.project).
func (c *Client) ProjectOf(ctx context.Context, name string) (string, error) {
	ref := parseRef(name)
	q := url.Values{}
	ref.query(q)
	var app struct {
		Spec struct {
			Project string `json:"project"`
		} `json:"spec"`
	}
	if err := c.call(ctx, c.opts.Timeout, http.MethodGet, "/api/v1/applications/"+url.PathEscape(ref.name), q, nil, &app); err != nil {
		return "", err
	}
	return app.Spec.Project, nil
}

// podTemplate is what a workload's pod template (or a Pod) says that the
// rollout checks compare: images and annotations.
type podTemplate struct {
	Images      []string
	Annotations map[string]string
}

// templateOf reads the pod template of a workload manifest (Deployment,
// StatefulSet, DaemonSet, ReplicaSet, Job, Argo Rollout: spec.template;
// CronJob: spec.jobTemplate.spec.template) or of a Pod itself.
func templateOf(manifest []byte) (*podTemplate, error) {
	type podSpec struct {
		Containers     []struct{ Image string } `json:"containers"`
		InitContainers []struct{ Image string } `json:"initContainers"`
	}
	type template struct {
		Metadata struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
		Spec *podSpec `json:"spec"`
	}
	var m struct {
		Kind     string `json:"kind"`
		Metadata struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
		Spec struct {
			podSpec
			Template    *template `json:"template"`
			JobTemplate *struct {
				Spec struct {
					Template *template `json:"template"`
				} `json:"spec"`
			} `json:"jobTemplate"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(manifest, &m); err != nil {
		return nil, err
	}
	var t *template
	switch {
	case m.Kind == "Pod":
		t = &template{Spec: &podSpec{Containers: m.Spec.Containers, InitContainers: m.Spec.InitContainers}}
		t.Metadata.Annotations = m.Metadata.Annotations
	case m.Spec.Template != nil:
		t = m.Spec.Template
	case m.Spec.JobTemplate != nil && m.Spec.JobTemplate.Spec.Template != nil:
		t = m.Spec.JobTemplate.Spec.Template
	}
	if t == nil || t.Spec == nil {
		return nil, nil
	}
	pt := &podTemplate{Annotations: t.Metadata.Annotations}
	for _, c := range append(t.Spec.InitContainers, t.Spec.Containers...) {
		pt.Images = append(pt.Images, c.Image)
	}
	return pt, nil
}

// podStatus is the part of a Pod's live status the failure messages use:
// each container's last termination.
type podStatus struct {
	Status struct {
		ContainerStatuses []struct {
			Name         string `json:"name"`
			RestartCount int    `json:"restartCount"`
			State        struct {
				Waiting *struct{ Reason, Message string } `json:"waiting"`
			} `json:"state"`
			LastState struct {
				Terminated *struct {
					ExitCode int    `json:"exitCode"`
					Reason   string `json:"reason"`
					Message  string `json:"message"`
				} `json:"terminated"`
			} `json:"lastState"`
		} `json:"containerStatuses"`
	} `json:"status"`
}

// lastExit says how the containers of a crash-looping pod last ended, e.g.
// `container "checkout" exited with code 1 (Error): panic: no DATABASE_URL`.
func lastExit(manifest []byte) string {
	var p podStatus
	if json.Unmarshal(manifest, &p) != nil {
		return ""
	}
	var out []string
	for _, c := range p.Status.ContainerStatuses {
		t := c.LastState.Terminated
		if t == nil || c.State.Waiting == nil {
			continue
		}
		s := fmt.Sprintf("container %q exited with code %s", c.Name, strconv.Itoa(t.ExitCode))
		if t.Reason != "" {
			s += " (" + t.Reason + ")"
		}
		if m := strings.TrimSpace(t.Message); m != "" {
			s += ": " + m
		}
		out = append(out, s)
	}
	return strings.Join(out, "; ")
}
