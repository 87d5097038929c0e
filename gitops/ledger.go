package gitops

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/shipbot/shipbot/gitops/repo"
)

// A proposal's record lives in the environment repo under
// refs/shipbot/proposals/<request-id>: a chain of commits, one per event
// (opened, on the forge, approved, rejected, rebased, merged, closed), each
// signed by shipbot, each holding one file, record.json, and a message a
// human reads with `git log refs/shipbot/proposals/<id>`. The chain is
// written with compare-and-swap pushes, so two replicas never lose an
// approval, and it survives any restart: it is the proposal's memory.

// Trailers of proposal commits.
const (
	// TrailerProposal links a merged change to its proposal (the pull
	// request's URL, or git:shipbot/<request-id>).
	TrailerProposal = "Shipbot-Proposal"
	// TrailerEvent names the event of a proposal record.
	TrailerEvent = "Shipbot-Event"
)

// recordRef is the ref holding a proposal's records.
func recordRef(id string) string { return repo.RecordRefs + "proposals/" + id }

// proposalBranchRef is the remote ref of a proposal's branch.
func proposalBranchRef(id string) string { return "refs/heads/" + ProposalBranch(id) }

var requestIDForm = regexp.MustCompile(`^shp-[a-z2-7]{10}$`)

// ValidRequestID reports whether id has the form of a request id.
func ValidRequestID(id string) bool { return requestIDForm.MatchString(id) }

// Proposal events.
const (
	eventOpened   = "opened"
	eventForge    = "forge"
	eventApproved = "approved"
	eventRejected = "rejected"
	eventRebased  = "rebased"
	eventMerged   = "merged"
	eventClosed   = "closed"
)

// record is one event of a proposal, as stored in record.json.
type record struct {
	Event string    `json:"event"`
	At    time.Time `json:"at"`
	// By is the chat user the event is about (approver, rejecter); Name
	// their git identity; Where where they acted ("chat #ops").
	By     string `json:"by,omitempty"`
	Name   string `json:"name,omitempty"`
	Where  string `json:"where,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Head and Digest: opened, rebased: the new head of the proposal
	// branch and the digest of its diff; approved: what was approved.
	Head   string `json:"head,omitempty"`
	Digest string `json:"digest,omitempty"`
	// Commit is the commit that landed on the branch (merged).
	Commit string `json:"commit,omitempty"`
	// Forge is set by the forge event.
	Forge *ForgeProposal `json:"forge,omitempty"`
	// Proposal is set by the opened event.
	Proposal *proposalDoc `json:"proposal,omitempty"`
}

// proposalDoc is what a proposal needs to be re-planned and merged after
// any restart.
type proposalDoc struct {
	Request       Request       `json:"request"`
	Justification Justification `json:"justification"`
	Summary       string        `json:"summary"`
	Diff          string        `json:"diff"`
	From          string        `json:"from,omitempty"`
	To            string        `json:"to"`
	Restart       string        `json:"restart,omitempty"`
	BreakGlass    string        `json:"break_glass,omitempty"`
	Base          string        `json:"base"`
	Review        Review        `json:"review"`
	AuthorizedBy  string        `json:"authorized_by"`
	Author        Person        `json:"author"`
	Expires       time.Time     `json:"expires"`
}

// digest identifies a diff: approvals are given to a diff, and stand while
// re-planning on a moved branch gives the same one.
func digest(diff string) string {
	h := sha256.Sum256([]byte(diff))
	return hex.EncodeToString(h[:])
}

// proposal is a proposal's state, folded from its records.
type proposal struct {
	ID      string
	Ref     plumbing.Hash // the last record
	Doc     proposalDoc
	Opened  time.Time
	Forge   *ForgeProposal
	Head    string            // the proposal branch's head as shipbot wrote it
	Digest  string            // the digest of the current diff
	Heads   map[string]string // every head shipbot wrote -> its digest
	Chat    map[string]record // latest approval or rejection per chat user
	State   string            // "" (open), eventMerged, eventClosed, eventRejected
	Closing record            // the record that ended it
}

func (p *proposal) open() bool { return p.State == "" }

// via is what the audit's via column shows for the proposal.
func (p *proposal) via() string {
	if p.Forge != nil && p.Forge.Via != "" {
		return p.Forge.Via
	}
	return "git:" + ProposalBranch(p.ID)
}

// maxRecords bounds how many records shipbot reads for one proposal: a
// record chain is written by shipbot only, but the remote is not trusted.
const maxRecords = 1000

// trustRecord refuses a record commit shipbot did not write: anyone who can
// push to the repo could otherwise forge an approval, or a whole proposal
// that shipbot would then sign and merge.
type trustRecord func(c *object.Commit) error

// loadProposal reads a proposal's record chain from the local clone (as of
// the last fetch); every record must pass trust.
func loadProposal(r *repo.Repo, id string, trust trustRecord) (*proposal, bool, error) {
	tip, ok := r.Ref(recordRef(id))
	if !ok {
		return nil, false, nil
	}
	var recs []record
	h := tip
	for i := 0; ; i++ {
		if i == maxRecords {
			return nil, false, fmt.Errorf("proposal %s: more than %d records", id, maxRecords)
		}
		c, err := r.CommitObject(h)
		if err != nil {
			return nil, false, fmt.Errorf("proposal %s: %w", id, err)
		}
		if err := trust(c); err != nil {
			return nil, false, fmt.Errorf("proposal %s: record %s: %w", id, c.Hash, err)
		}
		rec, err := readRecord(c)
		if err != nil {
			return nil, false, fmt.Errorf("proposal %s: record %s: %w", id, c.Hash, err)
		}
		recs = append(recs, rec)
		if len(c.ParentHashes) == 0 {
			break
		}
		h = c.ParentHashes[0]
	}
	slices.Reverse(recs)
	p := &proposal{ID: id, Ref: tip, Heads: map[string]string{}, Chat: map[string]record{}}
	if recs[0].Event != eventOpened || recs[0].Proposal == nil {
		return nil, false, fmt.Errorf("proposal %s: the first record is %q, not an opening", id, recs[0].Event)
	}
	for _, rec := range recs {
		p.apply(rec)
	}
	if p.Doc.Request.ID != id {
		return nil, false, fmt.Errorf("proposal %s: its record names request %q", id, p.Doc.Request.ID)
	}
	return p, true, nil
}

func (p *proposal) apply(rec record) {
	switch rec.Event {
	case eventOpened:
		p.Doc, p.Opened = *rec.Proposal, rec.At
		p.Head, p.Digest = rec.Head, rec.Digest
		p.Heads[rec.Head] = rec.Digest
	case eventForge:
		p.Forge = rec.Forge
	case eventApproved, eventRejected:
		p.Chat[rec.By] = rec
		if rec.Event == eventRejected {
			p.State, p.Closing = eventRejected, rec
		}
	case eventRebased:
		p.Head, p.Digest = rec.Head, rec.Digest
		p.Heads[rec.Head] = rec.Digest
	case eventMerged, eventClosed:
		p.State, p.Closing = rec.Event, rec
	}
}

func readRecord(c *object.Commit) (record, error) {
	f, err := c.File("record.json")
	if err != nil {
		return record{}, err
	}
	if f.Size > 1<<20 {
		return record{}, fmt.Errorf("record.json is %d bytes", f.Size)
	}
	s, err := f.Contents()
	if err != nil {
		return record{}, err
	}
	var rec record
	if err := json.Unmarshal([]byte(s), &rec); err != nil {
		return record{}, err
	}
	return rec, nil
}

// openProposals reads every open proposal of the local clone. A proposal
// whose records can't be read or trusted is skipped and reported through
// bad (one forged ref must not hide the others).
func openProposals(r *repo.Repo, trust trustRecord, bad func(id string, err error)) ([]*proposal, error) {
	refs, err := r.Refs(repo.RecordRefs + "proposals/")
	if err != nil {
		return nil, err
	}
	var out []*proposal
	for name := range refs {
		id := strings.TrimPrefix(name, repo.RecordRefs+"proposals/")
		if !ValidRequestID(id) {
			continue
		}
		p, ok, err := loadProposal(r, id, trust)
		if err != nil {
			bad(id, err)
			continue
		}
		if ok && p.open() {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b *proposal) int { return a.Opened.Compare(b.Opened) })
	return out, nil
}

// recordMessage is the message of a record commit.
func recordMessage(p *proposal, rec record) string {
	subject := fmt.Sprintf("%s %s", rec.Event, p.ID)
	switch rec.Event {
	case eventOpened:
		subject = fmt.Sprintf("proposal %s: %s", p.ID, p.Doc.Summary)
	case eventApproved, eventRejected:
		subject = fmt.Sprintf("%s %s by %s", rec.Event, p.ID, rec.By)
	}
	var b strings.Builder
	b.WriteString(OneLine(subject))
	b.WriteString("\n\n")
	if rec.Reason != "" {
		b.WriteString("Reason: " + Reason(rec.Reason) + "\n\n")
	}
	b.WriteString(TrailerRequest + ": " + p.ID + "\n")
	b.WriteString(TrailerEvent + ": " + rec.Event + "\n")
	if rec.Name != "" {
		b.WriteString("Event-by: " + OneLine(rec.Name) + "\n")
	}
	return b.String()
}
