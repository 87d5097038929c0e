package githubtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"
)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	repo := "/repos/{owner}/{repo}"
	mux.HandleFunc("POST /app/installations/{id}/access_tokens", s.accessToken)
	mux.HandleFunc("GET "+repo+"/pulls", s.repo(s.listPulls))
	mux.HandleFunc("POST "+repo+"/pulls", s.repo(s.createPullHandler))
	mux.HandleFunc("GET "+repo+"/pulls/{number}", s.pull(s.getPull))
	mux.HandleFunc("PATCH "+repo+"/pulls/{number}", s.pull(s.editPull))
	mux.HandleFunc("GET "+repo+"/pulls/{number}/reviews", s.pull(s.listReviews))
	mux.HandleFunc("GET "+repo+"/pulls/{number}/requested_reviewers", s.pull(s.getReviewers))
	mux.HandleFunc("POST "+repo+"/pulls/{number}/requested_reviewers", s.pull(s.requestReviewers))
	mux.HandleFunc("PUT "+repo+"/pulls/{number}/merge", s.pull(s.mergePull))
	mux.HandleFunc("GET "+repo+"/issues/{number}/labels", s.pull(s.listLabels))
	mux.HandleFunc("POST "+repo+"/issues/{number}/labels", s.pull(s.addLabels))
	mux.HandleFunc("GET "+repo+"/issues/{number}/comments", s.pull(s.listComments))
	mux.HandleFunc("POST "+repo+"/issues/{number}/comments", s.pull(s.addComment))
	mux.HandleFunc("GET "+repo+"/branches/{branch}/protection/required_status_checks", s.repo(s.requiredChecks))
	mux.HandleFunc("GET "+repo+"/commits/{ref...}", s.repo(s.commitChecks))
	mux.HandleFunc("DELETE "+repo+"/git/refs/{ref...}", s.repo(s.deleteRef))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fail(w, http.StatusNotFound, "Not Found") })
	return mux
}

// repo checks the owner and repo of the path, then serves with s.mu held.
func (s *Server) repo(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.PathValue("owner"), s.o.Owner) || !strings.EqualFold(r.PathValue("repo"), s.o.Repo) {
			fail(w, http.StatusNotFound, "Not Found")
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		h(w, r)
	}
}

type pullHandler func(w http.ResponseWriter, r *http.Request, p *pull)

// pull finds the pull request (issue) of the path: 404 when there is none.
func (s *Server) pull(h pullHandler) http.HandlerFunc {
	return s.repo(func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.PathValue("number"))
		p := s.pulls[n]
		if err != nil || p == nil {
			fail(w, http.StatusNotFound, "Not Found")
			return
		}
		h(w, r, p)
	})
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		fail(w, http.StatusBadRequest, "Problems parsing JSON")
		return false
	}
	return true
}

func (s *Server) listPulls(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" {
		state = "open"
	}
	var list []*github.PullRequest
	ns := s.numbers()
	slices.Reverse(ns) // newest first, GitHub's default
	for _, n := range ns {
		p := s.pulls[n]
		if state != "all" && p.state != state {
			continue
		}
		if head := q.Get("head"); head != "" {
			owner, branch, _ := strings.Cut(head, ":")
			if !strings.EqualFold(owner, s.o.Owner) || branch != p.head {
				continue
			}
		}
		if base := q.Get("base"); base != "" && base != p.base {
			continue
		}
		list = append(list, s.pullJSON(p))
	}
	lo, hi := s.page(w, r, len(list))
	writeJSON(w, http.StatusOK, nonNil(list[lo:hi]))
}

func nonNil[T any](list []T) []T {
	if list == nil {
		return []T{}
	}
	return list
}

func (s *Server) createPullHandler(w http.ResponseWriter, r *http.Request) {
	var req github.NewPullRequest
	if !decode(w, r, &req) {
		return
	}
	p, status, msg := s.createPull(s.actor(r), req.GetHead(), req.GetBase(), req.GetTitle(), req.GetBody())
	if p == nil {
		fail(w, status, "Validation Failed", fieldError{Resource: "PullRequest", Code: "custom", Message: msg})
		return
	}
	w.Header().Set("Location", s.apiURL(fmt.Sprintf("/pulls/%d", p.number)))
	writeJSON(w, http.StatusCreated, s.pullJSON(p))
}

// actor is who the request acts as.
func (s *Server) actor(*http.Request) string { return s.o.Login }

func (s *Server) getPull(w http.ResponseWriter, r *http.Request, p *pull) {
	writeJSON(w, http.StatusOK, s.pullJSON(p))
}

func (s *Server) editPull(w http.ResponseWriter, r *http.Request, p *pull) {
	var req struct {
		Title *string `json:"title"`
		Body  *string `json:"body"`
		State *string `json:"state"`
		Base  *string `json:"base"`
	}
	if !decode(w, r, &req) {
		return
	}
	if req.Title != nil {
		p.title = *req.Title
	}
	if req.Body != nil {
		p.body = *req.Body
	}
	if req.Base != nil {
		if _, ok := s.branches()[*req.Base]; !ok {
			fail(w, http.StatusUnprocessableEntity, "Validation Failed", fieldError{Resource: "PullRequest", Field: "base", Code: "invalid"})
			return
		}
		p.base, p.mergeable = *req.Base, nil
	}
	if req.State != nil {
		switch {
		case *req.State == "closed" && p.state == "open":
			now := s.now()
			p.state, p.closedAt, p.mergeable = "closed", now, nil
			s.hookPull(p, "closed", "")
		case *req.State == "open" && p.state == "closed" && !p.merged:
			if _, ok := s.branches()[p.head]; !ok {
				fail(w, http.StatusUnprocessableEntity, "Validation Failed", fieldError{Resource: "PullRequest", Field: "state", Code: "invalid", Message: "state cannot be changed. The " + p.head + " branch has been deleted."})
				return
			}
			p.state, p.closedAt, p.mergeable = "open", time.Time{}, nil
			s.hookPull(p, "reopened", "")
		case *req.State != "open" && *req.State != "closed":
			fail(w, http.StatusUnprocessableEntity, "Validation Failed", fieldError{Resource: "PullRequest", Field: "state", Code: "invalid"})
			return
		}
	}
	p.updated = s.now()
	s.refresh()
	writeJSON(w, http.StatusOK, s.pullJSON(p))
}

func (s *Server) listReviews(w http.ResponseWriter, r *http.Request, p *pull) {
	lo, hi := s.page(w, r, len(p.reviews))
	writeJSON(w, http.StatusOK, nonNil(p.reviews[lo:hi]))
}

func (s *Server) getReviewers(w http.ResponseWriter, r *http.Request, p *pull) {
	out := github.Reviewers{Users: []*github.User{}, Teams: []*github.Team{}}
	for _, l := range p.reviewers {
		out.Users = append(out.Users, s.user(l))
	}
	for _, t := range p.teams {
		out.Teams = append(out.Teams, &github.Team{Slug: github.String(t), Name: github.String(t)})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) requestReviewers(w http.ResponseWriter, r *http.Request, p *pull) {
	var req github.ReviewersRequest
	if !decode(w, r, &req) {
		return
	}
	for _, l := range req.Reviewers {
		if strings.EqualFold(l, p.user) {
			fail(w, http.StatusUnprocessableEntity, "Review cannot be requested from pull request author.")
			return
		}
		if s.o.Collaborators != nil && !slices.ContainsFunc(s.o.Collaborators, func(c string) bool { return strings.EqualFold(c, l) }) {
			fail(w, http.StatusUnprocessableEntity, fmt.Sprintf("Reviews may only be requested from collaborators. One or more of the users or teams you specified is not a collaborator of the %s/%s repository.", s.o.Owner, s.o.Repo))
			return
		}
	}
	for _, t := range req.TeamReviewers {
		if s.o.Teams != nil && !slices.Contains(s.o.Teams, t) {
			fail(w, http.StatusUnprocessableEntity, fmt.Sprintf("Reviews may only be requested from collaborators. One or more of the users or teams you specified is not a collaborator of the %s/%s repository.", s.o.Owner, s.o.Repo))
			return
		}
	}
	for _, l := range req.Reviewers {
		if !slices.ContainsFunc(p.reviewers, func(x string) bool { return strings.EqualFold(x, l) }) {
			p.reviewers = append(p.reviewers, l)
		}
	}
	for _, t := range req.TeamReviewers {
		if !slices.Contains(p.teams, t) {
			p.teams = append(p.teams, t)
		}
	}
	p.updated = s.now()
	writeJSON(w, http.StatusCreated, s.pullJSON(p))
}

func (s *Server) mergePull(w http.ResponseWriter, r *http.Request, p *pull) {
	var req struct {
		CommitTitle   string `json:"commit_title"`
		CommitMessage string `json:"commit_message"`
		SHA           string `json:"sha"`
		MergeMethod   string `json:"merge_method"`
	}
	if !decode(w, r, &req) {
		return
	}
	if p.state != "open" {
		fail(w, http.StatusMethodNotAllowed, "Pull Request is not mergeable")
		return
	}
	if req.SHA != "" && req.SHA != p.headSHA {
		fail(w, http.StatusConflict, "Head branch was modified. Review and try the merge again.")
		return
	}
	method := req.MergeMethod
	if method == "" {
		method = "merge"
	}
	if method != "merge" && method != "squash" && method != "rebase" {
		fail(w, http.StatusUnprocessableEntity, "Validation Failed", fieldError{Resource: "PullRequest", Field: "merge_method", Code: "invalid"})
		return
	}
	if p.mergeable != nil && !*p.mergeable {
		fail(w, http.StatusMethodNotAllowed, "Pull Request is not mergeable")
		return
	}
	commit, err := s.merge(p, method, req.CommitTitle, req.CommitMessage)
	if err != nil {
		fail(w, http.StatusMethodNotAllowed, "Pull Request is not mergeable: "+err.Error())
		return
	}
	now := s.now()
	p.state, p.merged, p.mergedAt, p.closedAt, p.updated = "closed", true, now, now, now
	p.mergeCommit, p.mergeable = commit, nil
	p.baseSHA = commit
	s.hookPull(p, "closed", "")
	writeJSON(w, http.StatusOK, github.PullRequestMergeResult{
		SHA:     github.String(commit),
		Merged:  github.Bool(true),
		Message: github.String("Pull Request successfully merged"),
	})
}

func (s *Server) labelsJSON(p *pull) []*github.Label {
	out := []*github.Label{}
	for _, l := range p.labels {
		out = append(out, labelJSON(l))
	}
	return out
}

func (s *Server) listLabels(w http.ResponseWriter, r *http.Request, p *pull) {
	writeJSON(w, http.StatusOK, s.labelsJSON(p))
}

func (s *Server) addLabels(w http.ResponseWriter, r *http.Request, p *pull) {
	var raw json.RawMessage
	if !decode(w, r, &raw) {
		return
	}
	var names []string
	if err := json.Unmarshal(raw, &names); err != nil {
		var obj struct {
			Labels []string `json:"labels"`
		}
		if err := json.Unmarshal(raw, &obj); err != nil {
			fail(w, http.StatusUnprocessableEntity, "Validation Failed", fieldError{Resource: "Label", Field: "labels", Code: "invalid"})
			return
		}
		names = obj.Labels
	}
	for _, n := range names {
		if !slices.ContainsFunc(p.labels, func(l string) bool { return strings.EqualFold(l, n) }) {
			p.labels = append(p.labels, n)
		}
	}
	p.updated = s.now()
	writeJSON(w, http.StatusOK, s.labelsJSON(p))
}

func (s *Server) listComments(w http.ResponseWriter, r *http.Request, p *pull) {
	lo, hi := s.page(w, r, len(p.comments))
	writeJSON(w, http.StatusOK, nonNil(p.comments[lo:hi]))
}

func (s *Server) addComment(w http.ResponseWriter, r *http.Request, p *pull) {
	var req github.IssueComment
	if !decode(w, r, &req) {
		return
	}
	if req.GetBody() == "" {
		fail(w, http.StatusUnprocessableEntity, "Validation Failed", fieldError{Resource: "IssueComment", Field: "body", Code: "missing_field"})
		return
	}
	id := s.id()
	now := &github.Timestamp{Time: s.now()}
	c := &github.IssueComment{
		ID:        github.Int64(id),
		Body:      github.String(req.GetBody()),
		User:      s.user(s.actor(r)),
		CreatedAt: now,
		UpdatedAt: now,
		HTMLURL:   github.String(s.webURL(fmt.Sprintf("/pull/%d#issuecomment-%d", p.number, id))),
		IssueURL:  github.String(s.apiURL(fmt.Sprintf("/issues/%d", p.number))),
	}
	p.comments = append(p.comments, c)
	writeJSON(w, http.StatusCreated, c)
}

func (s *Server) requiredChecks(w http.ResponseWriter, r *http.Request) {
	branch := r.PathValue("branch")
	contexts, ok := s.required[branch]
	if !ok {
		fail(w, http.StatusNotFound, "Branch not protected")
		return
	}
	checks := []*github.RequiredStatusCheck{}
	for _, c := range contexts {
		checks = append(checks, &github.RequiredStatusCheck{Context: c})
	}
	cs := slices.Clone(contexts)
	writeJSON(w, http.StatusOK, github.RequiredStatusChecks{
		Strict:      false,
		Contexts:    &cs,
		Checks:      &checks,
		URL:         github.String(s.apiURL("/branches/" + branch + "/protection/required_status_checks")),
		ContextsURL: github.String(s.apiURL("/branches/" + branch + "/protection/required_status_checks/contexts")),
	})
}

// commitChecks serves /commits/{ref}/status and /commits/{ref}/check-runs
// (a ref may hold slashes).
func (s *Server) commitChecks(w http.ResponseWriter, r *http.Request) {
	rest := r.PathValue("ref")
	var ref, what string
	switch {
	case strings.HasSuffix(rest, "/status"):
		ref, what = strings.TrimSuffix(rest, "/status"), "status"
	case strings.HasSuffix(rest, "/check-runs"):
		ref, what = strings.TrimSuffix(rest, "/check-runs"), "check-runs"
	default:
		fail(w, http.StatusNotFound, "Not Found")
		return
	}
	sha, _, err := s.gitRun(nil, "rev-parse", "--verify", "--quiet", ref+"^{commit}")
	if err != nil {
		fail(w, http.StatusUnprocessableEntity, "No commit found for SHA: "+ref)
		return
	}
	if what == "status" {
		statuses := s.statuses[sha]
		state := "success"
		if len(statuses) == 0 {
			state = "pending"
		}
		for _, st := range statuses {
			switch st.GetState() {
			case "failure", "error":
				state = "failure"
			case "pending":
				if state != "failure" {
					state = "pending"
				}
			}
		}
		lo, hi := s.page(w, r, len(statuses))
		writeJSON(w, http.StatusOK, github.CombinedStatus{
			State:         github.String(state),
			SHA:           github.String(sha),
			TotalCount:    github.Int(len(statuses)),
			Statuses:      nonNil(statuses[lo:hi]),
			CommitURL:     github.String(s.apiURL("/commits/" + sha)),
			RepositoryURL: github.String(s.apiURL("")),
		})
		return
	}
	runs := s.runs[sha]
	lo, hi := s.page(w, r, len(runs))
	writeJSON(w, http.StatusOK, github.ListCheckRunsResults{Total: github.Int(len(runs)), CheckRuns: nonNil(runs[lo:hi])})
}

func (s *Server) deleteRef(w http.ResponseWriter, r *http.Request) {
	ref := "refs/" + r.PathValue("ref")
	if _, _, err := s.gitRun(nil, "rev-parse", "--verify", "--quiet", ref); err != nil {
		fail(w, http.StatusUnprocessableEntity, "Reference does not exist")
		return
	}
	if _, _, err := s.gitRun(nil, "update-ref", "-d", ref); err != nil {
		fail(w, http.StatusInternalServerError, err.Error())
		return
	}
	s.refresh()
	w.WriteHeader(http.StatusNoContent)
}
