// Package kubernetes holds how shipbot runs in Kubernetes: a kustomize base
// with the overlays socket and http, the Helm chart chart/shipbot with the
// same objects, and an Argo CD Application that deploys shipbot by GitOps
// (README.md). It has no Go code; its test renders the overlays in-process
// and the chart with helm, and checks that they agree and that the pod
// meets the PodSecurity "restricted" profile.
package kubernetes
