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
//     ResourceTree and Watch (the newline-delimited watch stream), with a
//     bearer token read from a file, TLS options and per-call timeouts.
//   - Finder: which Application deploys a target (repoURL + path +
//     targetRevision, Helm valueFiles), from a cached list of all apps.
//   - Watcher: gitops.SyncWatcher on top of both.
//
// Endpoints used. shipbot's account needs get and sync on applications;
// on servers that set application.sync.requireOverridePrivilegeForRevisionSync
// (newer v3), syncing to a commit also needs override.
//
//	GET  /api/v1/applications                       List
//	GET  /api/v1/applications/{name}?refresh=normal Get
//	POST /api/v1/applications/{name}/sync           Sync {"revision": sha}
//	GET  /api/v1/applications/{name}/resource-tree  ResourceTree
//	GET  /api/v1/stream/applications?name={name}    Watch
//
// Limitations:
//
//   - Only the commit itself counts as live. If a newer commit reaches the
//     branch before Argo CD syncs shipbot's, Argo CD syncs the newer one
//     (which contains shipbot's) and the watch times out.
//   - A commit that does not change the rendered manifests starts no sync
//     on an app with automated sync, so operationState never names it and
//     the watch times out. shipbot's own commits always change manifests.
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
