package argo

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/shipbot/shipbot/gitops"
)

// The rollout checks report pods of our revision that won't come up as soon
// as the resource tree shows them, with the pod's own message, instead of
// waiting for the Deployment's progress deadline (10 minutes by default) to
// make Argo CD call the app Degraded.
//
// A pod is ours when it runs the change: for a tag change, one of its images
// has the new tag (and the image's last path element is the target's); for
// a restart, its restart annotation has the restart's value (read from the
// pod's live manifest). Pods of the ReplicaSet before (the old tag, no or an
// older annotation) are never blamed: a rollback away from a crash-looping
// version is the usual case. Without a tag or restart value (a plain
// SyncWatcher.Watch) no pod is blamed early.

// badReasons are container waiting reasons (Argo CD's "Status Reason" of a
// Pod) that do not clear by themselves: reported at once.
var badReasons = map[string]bool{
	"ErrImagePull":               true,
	"ImagePullBackOff":           true,
	"InvalidImageName":           true,
	"ErrImageNeverPull":          true,
	"CrashLoopBackOff":           true,
	"CreateContainerConfigError": true,
	"CreateContainerError":       true,
	"RunContainerError":          true,
	"PreCreateHookError":         true,
	"PostStartHookError":         true,
}

// imagePullReasons are the reasons whose best message is the kubelet's
// "Failed to pull image" event (the container only says "Back-off pulling").
var imagePullReasons = map[string]bool{"ErrImagePull": true, "ImagePullBackOff": true, "InvalidImageName": true, "ErrImageNeverPull": true}

// ReasonReadiness is PodFailure.Reason for a readiness probe that keeps
// failing.
const ReasonReadiness = "Readiness"

// podChecks is what a watch remembers about pods between checks.
type podChecks struct {
	next      time.Time          // when the tree may be read again
	ours      map[string]bool    // pod uid: runs our change
	manifests map[string][]byte  // pod uid: live manifest
	notReady  map[string]int     // pod uid: checks it was seen running and not ready
	events    map[string][]Event // pod uid: events read in this check
}

func newPodChecks() *podChecks {
	return &podChecks{ours: map[string]bool{}, manifests: map[string][]byte{}, notReady: map[string]int{}}
}

// expects reports whether the watch knows what our pods look like.
func (r *run) expects() bool { return r.change.Tag != "" || r.change.Restart != "" }

// rollingOut reports whether app is rolling our revision out: our sync
// operation runs or succeeded at a revision of ours, and the app is not yet
// Synced and Healthy. Then the pods are worth a look.
func (r *run) rollingOut(app *Application, st gitops.SyncStatus) bool {
	if !r.expects() || (st.Phase != PhaseRunning && st.Phase != PhaseSucceeded) {
		return false
	}
	return r.isOurs(app.SyncedRevision(r.source)) && !(st.Sync == SyncSynced && st.Health == HealthHealthy)
}

// checkPodsWhenDue reads the tree when TreeInterval has passed since the
// last read, and returns the failure it shows, if any.
func (r *run) checkPodsWhenDue(ctx context.Context) *gitops.RolloutFailure {
	now := time.Now()
	if now.Before(r.pods.next) {
		return nil
	}
	r.pods.next = now.Add(r.w.opts.TreeInterval)
	tree, err := r.w.client.Tree(ctx, r.ref)
	if err != nil {
		r.log.Debug("no resource tree", "err", err)
		return nil
	}
	return r.podFailures(ctx, tree)
}

// podFailures returns the failure the tree shows for pods of our revision,
// or nil. Detail (events, the pod's manifest) is read for a few pods only.
func (r *run) podFailures(ctx context.Context, tree *Tree) *gitops.RolloutFailure {
	if !r.expects() {
		return nil
	}
	idx := indexTree(tree)
	r.pods.events = map[string][]Event{}
	var fails []gitops.PodFailure
	detailed := 0
	seen := map[string]bool{}
	for i := range tree.Nodes {
		n := &tree.Nodes[i]
		if n.Kind != "Pod" || n.Group != "" {
			continue
		}
		seen[n.UID] = true
		reason := n.info("Status Reason")
		bad := badReasons[strings.TrimPrefix(reason, "Init:")]
		waiting := !bad && reason == "Running" && notAllReady(n.info("Containers"))
		if !waiting {
			delete(r.pods.notReady, n.UID)
		}
		if !bad && !waiting {
			continue
		}
		if waiting {
			// A new pod is not ready for a while: only one seen so in two
			// checks is looked at closer.
			if r.pods.notReady[n.UID]++; r.pods.notReady[n.UID] < 2 {
				continue
			}
		}
		if !r.podIsOurs(ctx, n) {
			continue
		}
		f := gitops.PodFailure{
			Pod:      n.Namespace + "/" + n.Name,
			Workload: idx.workload(n).String(),
			Reason:   reason,
			Image:    r.ourImage(n),
		}
		f.Restarts, _ = strconv.Atoi(n.info("Restart Count"))
		if n.Health != nil {
			f.Message = n.Health.Message
		}
		if waiting {
			msg, ok := r.readinessFailing(ctx, n)
			if !ok {
				continue
			}
			f.Reason, f.Message = ReasonReadiness, msg
		} else if detailed < 2 {
			detailed++
			f.Message = r.podDetail(ctx, n, f.Reason, f.Message)
		}
		fails = append(fails, f)
	}
	for uid := range r.pods.notReady {
		if !seen[uid] {
			delete(r.pods.notReady, uid)
		}
	}
	if len(fails) == 0 {
		return nil
	}
	// Errors first (an image that can't be pulled explains the rest), then
	// by name: the reply is stable.
	sort.SliceStable(fails, func(i, j int) bool {
		if (fails[i].Reason == ReasonReadiness) != (fails[j].Reason == ReasonReadiness) {
			return fails[j].Reason == ReasonReadiness
		}
		return fails[i].Pod < fails[j].Pod
	})
	if len(fails) > maxItems {
		fails = fails[:maxItems]
	}
	return &gitops.RolloutFailure{App: r.ref, Revision: r.liveRevision(), Pods: fails}
}

// liveRevision is the revision of ours the app is at.
func (r *run) liveRevision() string {
	if r.app != nil {
		if rev := r.app.SyncedRevision(r.source); r.isOurs(rev) {
			return rev
		}
	}
	return r.commit
}

// notAllReady reports whether a Pod's "Containers" info ("ready/total")
// has containers not ready.
func notAllReady(containers string) bool {
	ready, total, ok := strings.Cut(containers, "/")
	if !ok {
		return false
	}
	a, err1 := strconv.Atoi(ready)
	b, err2 := strconv.Atoi(total)
	return err1 == nil && err2 == nil && a < b
}

// podIsOurs reports whether pod n runs our change (see the top of this
// file); remembered per pod.
func (r *run) podIsOurs(ctx context.Context, n *TreeNode) bool {
	if v, ok := r.pods.ours[n.UID]; ok && n.UID != "" {
		return v
	}
	var ours, known bool
	switch {
	case r.change.Restart != "":
		m := r.podManifest(ctx, n)
		if m == nil {
			return false // can't tell now: not blamed, asked again later
		}
		t, err := templateOf(m)
		known = err == nil && t != nil
		ours = known && t.Annotations[gitops.RestartAnnotation] == r.change.Restart
	default:
		images := n.Images
		if len(images) == 0 {
			m := r.podManifest(ctx, n)
			if m == nil {
				return false
			}
			if t, err := templateOf(m); err == nil && t != nil {
				images = t.Images
			}
		}
		known = len(images) > 0
		ours = r.hasOurImage(images)
	}
	if known && n.UID != "" {
		r.pods.ours[n.UID] = ours
	}
	return ours
}

// hasOurImage reports whether one of images carries our tag.
func (r *run) hasOurImage(images []string) bool {
	for _, im := range images {
		if imageIsOurs(im, r.change.Target.Image, r.change.Tag) {
			return true
		}
	}
	return false
}

// ourImage is the image of n that carries our change, or its first image.
func (r *run) ourImage(n *TreeNode) string {
	images := append([]string(nil), n.Images...)
	sort.Strings(images)
	for _, im := range images {
		if r.change.Tag != "" && imageIsOurs(im, r.change.Target.Image, r.change.Tag) {
			return im
		}
	}
	if len(images) > 0 {
		return images[0]
	}
	return ""
}

// imageIsOurs reports whether the image reference ref has tag, and (when
// image is known) the same last path element as image: a registry mirror
// or kustomize's newName may change the rest.
func imageIsOurs(ref, image, tag string) bool {
	name, t := splitImage(ref)
	if tag == "" || t != tag {
		return false
	}
	if image == "" {
		return true
	}
	base, _ := splitImage(image)
	return path.Base(name) == path.Base(base)
}

// splitImage splits "registry:5000/shop/checkout:1.4.1@sha256:..." into
// name and tag.
func splitImage(ref string) (name, tag string) {
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[:i], ref[i+1:]
	}
	return ref, ""
}

// podManifest reads the pod's live manifest once (nil when Argo CD can't
// give it now).
func (r *run) podManifest(ctx context.Context, n *TreeNode) []byte {
	if m, ok := r.pods.manifests[n.UID]; ok {
		return m
	}
	m, err := r.w.client.LiveManifest(ctx, r.ref, n.ResourceRef)
	if err != nil {
		r.log.Debug("no pod manifest", "pod", n.Name, "err", err)
		return nil
	}
	if n.UID != "" {
		r.pods.manifests[n.UID] = m
	}
	return m
}

// podEvents reads the pod's events once per check.
func (r *run) podEvents(ctx context.Context, n *TreeNode) []Event {
	if ev, ok := r.pods.events[n.UID]; ok {
		return ev
	}
	ev, err := r.w.client.Events(ctx, r.ref, n.ResourceRef)
	if err != nil {
		r.log.Debug("no pod events", "pod", n.Name, "err", err)
	}
	r.pods.events[n.UID] = ev
	return ev
}

// podDetail is the best message for a pod in trouble: for an image that
// can't be pulled, the kubelet's last "Failed" event (the registry's own
// answer: "... not found", "... unauthorized"); for a crash loop, how the
// container last ended (exit code, reason, termination message) — read
// fresh, a crash-looping pod's manifest changes. have is the container's
// message from the tree.
func (r *run) podDetail(ctx context.Context, n *TreeNode, reason, have string) string {
	reason = strings.TrimPrefix(reason, "Init:")
	switch {
	case imagePullReasons[reason]:
		if e := lastEvent(r.podEvents(ctx, n), func(e *Event) bool {
			// Not the "Error: ImagePullBackOff" that follows it.
			return e.Type == "Warning" && e.Reason == "Failed" && !strings.HasPrefix(e.Message, "Error: ") && containsFold(e.Message, "image")
		}); e != nil {
			return e.Message
		}
	case reason == "CrashLoopBackOff" || reason == "RunContainerError":
		delete(r.pods.manifests, n.UID)
		if exit := lastExit(r.podManifest(ctx, n)); exit != "" {
			return exit
		}
	}
	return have
}

// readinessFailing reports whether a running pod's readiness probe failed
// at least ReadinessFailures times (its Unhealthy events), with the probe's
// message.
func (r *run) readinessFailing(ctx context.Context, n *TreeNode) (string, bool) {
	e := lastEvent(r.podEvents(ctx, n), func(e *Event) bool {
		return e.Type == "Warning" && e.Reason == "Unhealthy" && strings.HasPrefix(e.Message, "Readiness probe failed")
	})
	if e == nil || e.Times() < r.w.opts.ReadinessFailures {
		return "", false
	}
	return fmt.Sprintf("%s (%d times)", strings.TrimSpace(e.Message), e.Times()), true
}

// lastEvent returns the latest event that matches.
func lastEvent(evs []Event, match func(*Event) bool) *Event {
	var best *Event
	for i := range evs {
		e := &evs[i]
		if match(e) && (best == nil || !e.last().Before(best.last())) {
			best = e
		}
	}
	return best
}

// treeIndex finds nodes by uid, or by group/kind/namespace/name for a
// reference without uid.
type treeIndex struct {
	byUID map[string]*TreeNode
	byKey map[string]*TreeNode
}

func indexTree(t *Tree) treeIndex {
	ix := treeIndex{byUID: map[string]*TreeNode{}, byKey: map[string]*TreeNode{}}
	for i := range t.Nodes {
		n := &t.Nodes[i]
		if n.UID != "" {
			ix.byUID[n.UID] = n
		}
		ix.byKey[n.key()] = n
	}
	return ix
}

func (ix treeIndex) find(ref ResourceRef) *TreeNode {
	if n, ok := ix.byUID[ref.UID]; ok && ref.UID != "" {
		return n
	}
	return ix.byKey[ref.key()]
}

// workload is what runs n: its top ancestor (Pod -> ReplicaSet ->
// Deployment, or Pod -> StatefulSet).
func (ix treeIndex) workload(n *TreeNode) ResourceRef {
	cur := n.ResourceRef
	parents := n.ParentRefs
	for range 8 {
		if len(parents) == 0 {
			break
		}
		cur = parents[0]
		p := ix.find(cur)
		if p == nil {
			break
		}
		parents = p.ParentRefs
	}
	return cur
}
