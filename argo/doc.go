// Package argo is shipbot's Argo CD adapter: after shipbot's commit lands in
// the environment repo, it asks Argo CD to refresh (and, where allowed, to
// sync) the Application and watches it until the commit is Synced and
// Healthy, failed, Degraded or timed out.
//
// It talks to Argo CD's REST API (grpc-gateway) with its own small structs
// for the fields it reads, never Argo CD's Go module: importing it costs
// 450-570 modules and an 86-103 MB binary against 16 MB, and forces old
// replaces of k8s.io and filepath-securejoin. The API is the same on Argo CD v2 and v3
// servers; the one difference shipbot meets is that v3 no longer stores
// resource health in the Application: its API server fills it in on Get
// and on the watch stream, but not on List.
//
// The parts:
//
//   - Client: Get (with ?refresh=normal|hard), List, Sync / SyncSource,
//     ResourceTree / Tree, LiveManifest, Events,
//     AppSyncWindows, Project and Watch (the newline-delimited watch
//     stream), with a bearer token read from a file, TLS options and
//     per-call timeouts.
//   - Finder: which Application deploys a target (repoURL + path +
//     targetRevision, Helm valueFiles), from a cached list of all apps.
//   - Watcher: gitops.SyncWatcher and gitops.ChangeWatcher on top of both;
//     gitops.SyncWindows (SyncHold) for plans.
//   - Rollout checks (rollout.go): while our revision rolls out, the
//     resource tree is read on events and every TreeInterval; a pod of our
//     revision (our tag, or our restart annotation) waiting on
//     ErrImagePull, ImagePullBackOff, CrashLoopBackOff, ... or failing
//     readiness ends the watch at once with the pod's own message (the
//     kubelet's "Failed to pull image" event, the container's last exit),
//     as a *gitops.RolloutFailure. Pods of the ReplicaSet before are never
//     blamed.
//   - Sync windows (windows.go): Hold judges a project's windows like Argo
//     CD's CanSync (robfig/cron/v3, Argo CD's own cron parser) and finds
//     when a held sync may run. A sync refused by a window (PermissionDenied
//     "cannot sync: blocked by sync window") is ErrSyncWindow, never
//     ErrPermissionDenied.
//
// Endpoints used. shipbot's account needs get and sync on applications,
// nothing more. A server that sets
// application.sync.requireOverridePrivilegeForRevisionSync (v3.3+; Argo CD
// recommends it and plans it as the default) refuses a sync to a commit
// without override: shipbot then syncs the app's targetRevision instead,
// once Argo CD resolves it to our commit or a newer one on top of it
// (ErrOverrideRequired). get on projects is optional: without it a
// window's time zone is taken to be UTC (and said). Resource actions
// (the canary abort) need action/argoproj.io/Rollout/abort.
//
//	GET  /api/v1/applications                       List
//	GET  /api/v1/applications/{name}?refresh=normal Get
//	POST /api/v1/applications/{name}/sync           Sync {"revision": sha}, SyncTarget {}
//	POST /api/v1/applications/{name}/resource/actions/v2  RunAction (v3.1+; else the v1 path)
//	GET  /api/v1/applications/{name}/resource-tree  ResourceTree, Tree
//	GET  /api/v1/applications/{name}/resource       LiveManifest (a Pod)
//	GET  /api/v1/applications/{name}/events         Events (a Pod's)
//	GET  /api/v1/applications/{name}/syncwindows    AppSyncWindows
//	GET  /api/v1/projects/{project}                 Project (time zones)
//	GET  /api/v1/stream/applications?name={name}    Watch
//
// Argo CD v2 and v3 differences shipbot meets: v3 leaves resource health
// out of the Application it stores (resourceHealthSource: appTree) and of
// List answers; v3.1+ adds images to sync results, v3 adds description and
// syncOverrun to sync windows (v2.11+: andOperator); Kubernetes events
// written through events.k8s.io carry their count in series.count. None of
// these changes a verdict.
//
// Limitations:
//
//   - A newer commit on top of shipbot's counts only with an Ancestry (the
//     core's git cache); without one, Argo CD syncing the newer commit
//     makes the watch time out.
//   - A commit that does not change the rendered manifests starts no sync
//     on an app with automated sync, so operationState never names it and
//     the watch times out. shipbot's own commits always change manifests.
//   - Pods are matched to the change by tag or restart annotation: an
//     image whose tag a chart rewrites (a "v" prefix), a digest-only
//     image, or an Argo Rollouts restart (spec.restartAt) is not matched,
//     and then only Argo CD's own Degraded ends the watch early.
//   - Apps with a source hydrator, and Helm charts from a Helm repository
//     without a values file in the environment repo, are not discovered:
//     name them with argoApp.
//   - An app whose targetRevision is HEAD (or empty) is taken to follow
//     shipbot's branch.
//   - A directory app with directory.recurse is matched on its own path
//     only, not on the directories below it.
//   - Several apps deploying the same path (one per cluster) are an error
//     for discovery: name the one to watch with argoApp.
package argo
