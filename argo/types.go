package argo

import "time"

// The structs below mirror the parts of Argo CD's v1alpha1 types that
// shipbot reads, with the same JSON names (argo-cd v2.14 and v3.x agree on
// all of them). Every other field of the wire format is ignored on decode.

// Application is an Argo CD Application as the REST API returns it.
type Application struct {
	Metadata ObjectMeta        `json:"metadata"`
	Spec     ApplicationSpec   `json:"spec"`
	Status   ApplicationStatus `json:"status"`
}

// ObjectMeta is the part of Kubernetes object metadata shipbot reads.
type ObjectMeta struct {
	Name            string `json:"name"`
	Namespace       string `json:"namespace,omitempty"`
	ResourceVersion string `json:"resourceVersion,omitempty"`
}

// ApplicationSpec says what an Application deploys and how it syncs.
type ApplicationSpec struct {
	Source     *ApplicationSource  `json:"source,omitempty"`
	Sources    []ApplicationSource `json:"sources,omitempty"` // multi-source apps
	SyncPolicy *SyncPolicy         `json:"syncPolicy,omitempty"`
}

// ApplicationSource is one source of manifests.
type ApplicationSource struct {
	RepoURL        string      `json:"repoURL"`
	Path           string      `json:"path,omitempty"`
	TargetRevision string      `json:"targetRevision,omitempty"`
	Chart          string      `json:"chart,omitempty"` // a chart from a Helm repository (no path)
	Ref            string      `json:"ref,omitempty"`   // name for $ref/ in other sources' valueFiles
	Helm           *HelmSource `json:"helm,omitempty"`
}

// HelmSource holds the Helm options shipbot reads.
type HelmSource struct {
	// ValueFiles are relative to the source's path, relative to the repo
	// root when they start with "/", or "$ref/path" into the source named
	// ref (multi-source apps).
	ValueFiles []string `json:"valueFiles,omitempty"`
}

// SyncPolicy is an Application's sync policy.
type SyncPolicy struct {
	Automated *SyncPolicyAutomated `json:"automated,omitempty"`
}

// SyncPolicyAutomated turns automated sync on.
type SyncPolicyAutomated struct {
	Prune    *bool `json:"prune,omitempty"`
	SelfHeal *bool `json:"selfHeal,omitempty"`
	// Enabled false switches automated sync off while keeping its settings
	// (newer Argo CD); absent means on.
	Enabled *bool `json:"enabled,omitempty"`
}

// ApplicationStatus is what the controller last observed.
type ApplicationStatus struct {
	Sync           SyncStatus             `json:"sync"`
	Health         HealthStatus           `json:"health"`
	OperationState *OperationState        `json:"operationState,omitempty"`
	Conditions     []ApplicationCondition `json:"conditions,omitempty"`
	Resources      []ResourceStatus       `json:"resources,omitempty"`
	// ReconciledAt is when the controller last compared live and desired state.
	ReconciledAt *time.Time `json:"reconciledAt,omitempty"`
}

// SyncStatus compares the live state with the desired state at a revision.
type SyncStatus struct {
	Status    string   `json:"status"`              // Synced, OutOfSync, Unknown
	Revision  string   `json:"revision,omitempty"`  // single-source apps
	Revisions []string `json:"revisions,omitempty"` // multi-source apps, one per source
}

// HealthStatus is a health verdict with the reason for it.
type HealthStatus struct {
	Status  string `json:"status,omitempty"` // Healthy, Progressing, Degraded, Suspended, Missing, Unknown
	Message string `json:"message,omitempty"`
}

// OperationState is the state of the current or last operation (a sync).
type OperationState struct {
	Operation  Operation            `json:"operation"`
	Phase      string               `json:"phase"` // Running, Terminating, Failed, Error, Succeeded
	Message    string               `json:"message,omitempty"`
	SyncResult *SyncOperationResult `json:"syncResult,omitempty"`
	StartedAt  *time.Time           `json:"startedAt,omitempty"`
	FinishedAt *time.Time           `json:"finishedAt,omitempty"`
}

// Operation is what was asked for.
type Operation struct {
	Sync *SyncOperation `json:"sync,omitempty"`
}

// SyncOperation is a requested sync.
type SyncOperation struct {
	Revision  string   `json:"revision,omitempty"`
	Revisions []string `json:"revisions,omitempty"`
}

// SyncOperationResult is the result of a sync.
type SyncOperationResult struct {
	Revision  string           `json:"revision"`
	Revisions []string         `json:"revisions,omitempty"`
	Resources []ResourceResult `json:"resources,omitempty"`
}

// ResourceResult is what a sync did to one resource.
type ResourceResult struct {
	Group     string `json:"group,omitempty"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	Status    string `json:"status,omitempty"` // Synced, SyncFailed, Pruned, PruneSkipped
	Message   string `json:"message,omitempty"`
	HookType  string `json:"hookType,omitempty"`
	HookPhase string `json:"hookPhase,omitempty"`
}

// ApplicationCondition is a problem the controller reports, e.g.
// ComparisonError, SyncError, InvalidSpecError.
type ApplicationCondition struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// ResourceStatus is the sync and health state of one managed resource.
// Argo CD v3 no longer stores resource health in the Application, but its
// API server fills it in on Get and on the watch stream (not on List).
type ResourceStatus struct {
	Group     string        `json:"group,omitempty"`
	Kind      string        `json:"kind,omitempty"`
	Namespace string        `json:"namespace,omitempty"`
	Name      string        `json:"name,omitempty"`
	Status    string        `json:"status,omitempty"`
	Health    *HealthStatus `json:"health,omitempty"`
}

// ResourceTree is every resource an app manages plus their children
// (ReplicaSets, Pods), with health.
type ResourceTree struct {
	Nodes []ResourceNode `json:"nodes,omitempty"`
}

// ResourceNode is one node of a ResourceTree.
type ResourceNode struct {
	Group     string        `json:"group,omitempty"`
	Kind      string        `json:"kind,omitempty"`
	Namespace string        `json:"namespace,omitempty"`
	Name      string        `json:"name,omitempty"`
	Health    *HealthStatus `json:"health,omitempty"`
}

// WatchEvent is one message of the application watch stream.
type WatchEvent struct {
	Type        string      `json:"type"` // ADDED, MODIFIED, DELETED
	Application Application `json:"application"`
}

// Argo CD's words for states shipbot acts on.
const (
	SyncSynced = "Synced"

	HealthHealthy     = "Healthy"
	HealthProgressing = "Progressing"
	HealthDegraded    = "Degraded"

	PhaseRunning   = "Running"
	PhaseSucceeded = "Succeeded"
	PhaseFailed    = "Failed"
	PhaseError     = "Error"

	ResultSyncFailed = "SyncFailed"

	RefreshNormal = "normal"
	RefreshHard   = "hard"
)

// AutomatedSync reports whether Argo CD syncs the app by itself.
func (a *Application) AutomatedSync() bool {
	p := a.Spec.SyncPolicy
	return p != nil && p.Automated != nil && (p.Automated.Enabled == nil || *p.Automated.Enabled)
}

// MultiSource reports whether the app uses spec.sources (then revisions
// are reported per source, in spec.sources order).
func (a *Application) MultiSource() bool { return len(a.Spec.Sources) > 0 }

// SourceList returns the app's sources: spec.sources, or spec.source alone.
func (a *Application) SourceList() []ApplicationSource {
	if a.MultiSource() {
		return a.Spec.Sources
	}
	if a.Spec.Source != nil {
		return []ApplicationSource{*a.Spec.Source}
	}
	return nil
}

// pick returns the single-source value, or for a multi-source app the one
// at index source (when in range).
func pick(single string, multi []string, multiSource bool, source int) string {
	if !multiSource {
		return single
	}
	if source >= 0 && source < len(multi) {
		return multi[source]
	}
	return ""
}

// SyncedRevision is the revision the app is compared at: status.sync.revision,
// or for a multi-source app status.sync.revisions[source].
func (a *Application) SyncedRevision(source int) string {
	return pick(a.Status.Sync.Revision, a.Status.Sync.Revisions, a.MultiSource(), source)
}

// resultRevision is the revision the last sync operation synced to.
func (a *Application) resultRevision(source int) string {
	op := a.Status.OperationState
	if op == nil || op.SyncResult == nil {
		return ""
	}
	return pick(op.SyncResult.Revision, op.SyncResult.Revisions, a.MultiSource(), source)
}

// requestedRevision is the revision the current or last sync operation was
// asked for (set before any result exists).
func (a *Application) requestedRevision(source int) string {
	op := a.Status.OperationState
	if op == nil || op.Operation.Sync == nil {
		return ""
	}
	return pick(op.Operation.Sync.Revision, op.Operation.Sync.Revisions, a.MultiSource(), source)
}
