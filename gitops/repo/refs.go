package repo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
)

// Besides its branch, shipbot keeps two kinds of refs on the remote for
// changes under review: proposal branches (refs/heads/shipbot/*) and the
// records of each proposal (refs/shipbot/*). FetchAll brings them here as
// remote-tracking refs; PushRefs updates several refs in one atomic
// compare-and-swap push.

// Remote namespaces shipbot reads and writes besides its branch.
const (
	ProposalHeads = "refs/heads/shipbot/" // proposal branches
	RecordRefs    = "refs/shipbot/"       // proposal records
)

// tracking is where the local clone keeps its view of a remote ref.
func tracking(remote plumbing.ReferenceName) (plumbing.ReferenceName, error) {
	s := string(remote)
	switch {
	case strings.HasPrefix(s, "refs/heads/"):
		return plumbing.ReferenceName("refs/remotes/origin/" + strings.TrimPrefix(s, "refs/heads/")), nil
	case strings.HasPrefix(s, RecordRefs):
		return plumbing.ReferenceName("refs/remotes/origin-shipbot/" + strings.TrimPrefix(s, RecordRefs)), nil
	}
	return "", fmt.Errorf("ref %s: shipbot only writes branches and %s*", s, RecordRefs)
}

func (r *Repo) reviewSpecs() []config.RefSpec {
	return []config.RefSpec{
		r.refSpec(),
		config.RefSpec("+" + ProposalHeads + "*:refs/remotes/origin/shipbot/*"),
		config.RefSpec("+" + RecordRefs + "*:refs/remotes/origin-shipbot/*"),
	}
}

// FetchAll fetches the branch, the proposal branches and the proposal
// records in one fetch (refs deleted on the remote are deleted here too),
// and returns a snapshot of the branch's tip.
func (r *Repo) FetchAll(ctx context.Context) (*Snapshot, error) {
	r.fetchMu.Lock()
	err := r.git.FetchContext(ctx, &git.FetchOptions{
		RemoteName: "origin",
		RefSpecs:   r.reviewSpecs(),
		Auth:       r.opts.Auth,
		Force:      true,
		Prune:      true,
		Tags:       git.NoTags,
	})
	r.fetchMu.Unlock()
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return nil, fmt.Errorf("fetch %s and proposals: %w", r.opts.Branch, err)
	}
	return r.Head()
}

// Ref returns where the remote ref name (e.g. refs/heads/shipbot/x) pointed
// at the last fetch or push, and whether it existed.
func (r *Repo) Ref(name string) (plumbing.Hash, bool) {
	t, err := tracking(plumbing.ReferenceName(name))
	if err != nil {
		return plumbing.ZeroHash, false
	}
	ref, err := r.git.Storer.Reference(t)
	if err != nil {
		return plumbing.ZeroHash, false
	}
	return ref.Hash(), true
}

// Refs lists the remote refs under prefix (ProposalHeads or RecordRefs) as
// of the last fetch or push, by remote name.
func (r *Repo) Refs(prefix string) (map[string]plumbing.Hash, error) {
	t, err := tracking(plumbing.ReferenceName(prefix))
	if err != nil {
		return nil, err
	}
	iter, err := r.git.Storer.IterReferences()
	if err != nil {
		return nil, err
	}
	defer iter.Close()
	out := map[string]plumbing.Hash{}
	err = iter.ForEach(func(ref *plumbing.Reference) error {
		if rest, ok := strings.CutPrefix(string(ref.Name()), string(t)); ok && ref.Type() == plumbing.HashReference {
			out[prefix+rest] = ref.Hash()
		}
		return nil
	})
	return out, err
}

// RefUpdate is one ref a push changes: from Old (zero: the ref must not
// exist) to New (zero: delete it).
type RefUpdate struct {
	Name     string // remote ref name, e.g. refs/heads/main, refs/shipbot/proposals/x
	Old, New plumbing.Hash
}

// BranchRef is the remote ref name of the branch shipbot writes to.
func (r *Repo) BranchRef() string { return string(r.branch) }

// PushRefs updates every ref in updates if, and only if, each still points
// at its Old value (compare-and-swap), sending objects. With more than one
// update the push is atomic: all refs move or none does; a remote that
// cannot do atomic pushes is refused rather than left half-updated. A
// remote that moved yields ErrNonFastForward and nothing is written.
func (r *Repo) PushRefs(ctx context.Context, updates []RefUpdate, objects []plumbing.Hash) error {
	if len(updates) == 0 {
		return errors.New("push: no refs to update")
	}
	names := make([]string, len(updates))
	for i, u := range updates {
		names[i] = u.Name
		if _, err := tracking(plumbing.ReferenceName(u.Name)); err != nil {
			return fmt.Errorf("push: %w", err)
		}
	}
	what := strings.Join(names, ", ")
	cl, err := client.NewClient(r.ep)
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	sess, err := cl.NewReceivePackSession(r.ep, r.opts.Auth)
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	defer sess.Close()
	ar, err := sess.AdvertisedReferencesContext(ctx)
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	refs, err := ar.AllReferences()
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	req := packp.NewReferenceUpdateRequestFromCapabilities(ar.Capabilities)
	// The remote's own words (a pre-receive hook's "pushes to prod are
	// frozen") come on side-band channel 2; keep them for a refusal.
	remote := &remoteMessages{}
	if ar.Capabilities.Supports(capability.Sideband64k) {
		_ = req.Capabilities.Set(capability.Sideband64k)
		req.Progress = remote
	} else if ar.Capabilities.Supports(capability.Sideband) {
		_ = req.Capabilities.Set(capability.Sideband)
		req.Progress = remote
	}
	if ar.Capabilities.Supports(capability.Quiet) {
		_ = req.Capabilities.Set(capability.Quiet) // no progress meters, only what hooks say
	}
	sendPack := false
	for _, u := range updates {
		cur, ok := refs[plumbing.ReferenceName(u.Name)]
		if (u.Old.IsZero() && ok) || (!u.Old.IsZero() && (!ok || cur.Hash() != u.Old)) {
			return fmt.Errorf("push %s: %w", u.Name, ErrNonFastForward)
		}
		req.Commands = append(req.Commands, &packp.Command{Name: plumbing.ReferenceName(u.Name), Old: u.Old, New: u.New})
		sendPack = sendPack || !u.New.IsZero()
	}
	if len(updates) > 1 {
		if !ar.Capabilities.Supports(capability.Atomic) {
			return fmt.Errorf("push %s: the remote does not support atomic pushes, which shipbot needs to move several refs at once", what)
		}
		if err := req.Capabilities.Set(capability.Atomic); err != nil {
			return fmt.Errorf("push: %w", err)
		}
	}
	// Fencing: checked last, right before anything is sent.
	if f := r.opts.Fence; f != nil && !f.Held() {
		return fmt.Errorf("push %s: %w", what, ErrFenced)
	}
	// From here on the request may reach the remote: an error without the
	// remote's report leaves the outcome unknown (see receivePackError).
	if !sendPack {
		rs, err := sess.ReceivePack(ctx, req)
		return r.afterPush(what, updates, rs, err, req, remote)
	}
	rd, wr := io.Pipe()
	req.Packfile = rd
	done := make(chan error, 1)
	go func() {
		enc := packfile.NewEncoder(wr, r.git.Storer, !ar.Capabilities.Supports(capability.OFSDelta))
		_, err := enc.Encode(objects, 0)
		done <- wr.CloseWithError(err)
	}()
	rs, err := sess.ReceivePack(ctx, req)
	if err != nil {
		_ = rd.Close()
		<-done
		return r.afterPush(what, updates, rs, err, req, remote)
	}
	// The remote reported on the whole request: the pack was sent.
	<-done
	return r.afterPush(what, updates, rs, nil, req, remote)
}

func (r *Repo) afterPush(what string, updates []RefUpdate, rs *packp.ReportStatus, err error, req *packp.ReferenceUpdateRequest, remote *remoteMessages) error {
	if err != nil {
		return receivePackError(what, rs, err, remote.lines())
	}
	if rs == nil && req.Capabilities.Supports(capability.ReportStatus) {
		// An empty answer where a report was asked for: the connection
		// ended before the remote said anything.
		return fmt.Errorf("push %s: %w: the remote's answer was empty", what, ErrPushUnknown)
	}
	if rs != nil {
		if err := rs.Error(); err != nil {
			return receivePackError(what, rs, err, remote.lines())
		}
	}
	// Our view of the remote follows the push we just made, never in the
	// middle of a fetch (whose compare-and-swap of the same refs would
	// fail with "reference has changed concurrently").
	r.fetchMu.Lock()
	defer r.fetchMu.Unlock()
	for _, u := range updates {
		t, _ := tracking(plumbing.ReferenceName(u.Name))
		if u.New.IsZero() {
			if err := r.git.Storer.RemoveReference(t); err != nil {
				// The push landed: only our view of it is behind.
				return fmt.Errorf("push %s: %w: it landed, but updating %s failed: %w", what, ErrPushUnknown, t, err)
			}
			continue
		}
		if err := r.git.Storer.SetReference(plumbing.NewHashReference(t, u.New)); err != nil {
			return fmt.Errorf("push %s: %w: it landed, but updating %s failed: %w", what, ErrPushUnknown, t, err)
		}
	}
	return nil
}

// BuildRecord writes a commit whose tree holds exactly files (flat names),
// with parent as its only parent (zero: a root commit). It is how shipbot
// keeps records (approvals, rejections) in git: signed like every commit
// it writes, and readable with git log.
func (r *Repo) BuildRecord(parent plumbing.Hash, files map[string][]byte, o CommitOptions) (*Commit, error) {
	b := &builder{st: r.git.Storer}
	var entries []object.TreeEntry
	for name, data := range files {
		if name == "" || strings.ContainsAny(name, "/\x00") {
			return nil, fmt.Errorf("build record: bad file name %q", name)
		}
		h, err := b.blob(data)
		if err != nil {
			return nil, fmt.Errorf("build record: %w", err)
		}
		entries = append(entries, object.TreeEntry{Name: name, Mode: filemode.Regular, Hash: h})
	}
	sortEntries(entries)
	tree, err := b.store(plumbing.TreeObject, (&object.Tree{Entries: entries}).Encode)
	if err != nil {
		return nil, fmt.Errorf("build record: %w", err)
	}
	var parents []plumbing.Hash
	if !parent.IsZero() {
		parents = []plumbing.Hash{parent}
	}
	return r.commit(b, tree, parents, o)
}

// BuildCommitOnTree writes a commit of an existing tree on parent: the
// approved tree of a proposal landing on the branch.
func (r *Repo) BuildCommitOnTree(parent plumbing.Hash, tree plumbing.Hash, o CommitOptions) (*Commit, error) {
	return r.commit(&builder{st: r.git.Storer}, tree, []plumbing.Hash{parent}, o)
}
