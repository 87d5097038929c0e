// Package githubtest is a stateful GitHub double for tests: a real git
// repository served over smart HTTP, and the REST endpoints of the review
// flow (pull requests, reviews, labels, comments, statuses, check runs,
// branch protection, GitHub App installation tokens) answering with JSON
// built from go-github's own types and GitHub's status codes. Pull
// requests become merged, as on GitHub, when their head reaches their base,
// whoever pushed it. Webhooks are sent signed, by hand or automatically.
//
// A Server is safe for concurrent use; its test controls (AddReview,
// SetStatus, ...) must be called from the test's goroutine, as they fail
// the test on misuse.
package githubtest

import (
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"
)

// Options configure a Server.
type Options struct {
	// BareRepo is the bare repository the double serves (required; e.g.
	// gittest.InitBare). Its branches are the pull requests' heads and
	// bases. Pushes need `http.receivepack true` in its config (InitBare
	// sets it).
	BareRepo string
	// Owner and Repo name the repository (default "shipbot" and "env").
	Owner, Repo string
	// Enterprise serves the API under /api/v3/, as GitHub Enterprise
	// Server does, instead of at the root.
	Enterprise bool

	// Token, when set, is accepted as `Authorization: Bearer <token>` or
	// `token <token>`.
	Token string
	// App, when set, lets a GitHub App exchange its JWT for installation
	// tokens, which the API then accepts. With neither Token nor App, the
	// API asks for no authentication.
	App *App
	// Login is the user the API acts as (the author of pull requests
	// opened through it); default "shipbot[bot]".
	Login string

	// Collaborators, when set, are the only logins a review may be
	// requested from (others: 422, as on GitHub).
	Collaborators []string
	// Teams, when set, are the only team slugs a review may be requested
	// from.
	Teams []string

	// WebhookURL and WebhookSecret are where and how webhooks are sent
	// (SendWebhook, Redeliver, AutoWebhooks).
	WebhookURL    string
	WebhookSecret []byte
	// AutoWebhooks: the double sends pull_request (opened, synchronize,
	// closed), pull_request_review (submitted, dismissed), status and
	// check_run events itself when those things happen.
	AutoWebhooks bool

	// PageSize is the most items a list answers per page (default 100, as
	// GitHub); a small one exercises the client's pagination.
	PageSize int
	// Now is the double's clock (default time.Now).
	Now func() time.Time
}

// App is the GitHub App the double knows.
type App struct {
	AppID          int64
	InstallationID int64
	// PublicKey verifies the RS256 JWTs the App signs.
	PublicKey *rsa.PublicKey
}

// Server is the GitHub double.
type Server struct {
	t    testing.TB
	o    Options
	srv  *httptest.Server
	api  http.Handler
	git  http.Handler
	home string // HOME of the git commands

	mu       sync.Mutex
	requests []string
	limited  []rateLimit
	tokens   map[string]time.Time // installation token -> expiry
	nextID   int64
	number   int
	pulls    map[int]*pull
	statuses map[string][]*github.RepoStatus // sha -> latest per context, in order
	runs     map[string][]*github.CheckRun   // sha -> latest per name
	required map[string][]string             // branch -> required contexts
	lastTime time.Time

	hooks hookQueue
}

type rateLimit struct {
	status  int
	headers http.Header
}

type pull struct {
	number                  int
	title, body, head, base string
	user                    string
	state                   string // open, closed
	merged                  bool
	mergedAt, closedAt      time.Time
	created, updated        time.Time
	headSHA, baseSHA        string
	mergeCommit             string
	mergeable               *bool
	labels                  []string
	reviewers, teams        []string
	comments                []*github.IssueComment
	reviews                 []*github.PullRequestReview
}

// New starts a Server on 127.0.0.1; it stops when the test ends.
func New(t testing.TB, o Options) *Server {
	t.Helper()
	if o.BareRepo == "" {
		t.Fatal("githubtest: Options.BareRepo is required")
	}
	if _, err := os.Stat(filepath.Join(o.BareRepo, "HEAD")); err != nil {
		t.Fatalf("githubtest: %s is not a bare repository: %v", o.BareRepo, err)
	}
	if o.Owner == "" {
		o.Owner = "shipbot"
	}
	if o.Repo == "" {
		o.Repo = "env"
	}
	if o.Login == "" {
		o.Login = "shipbot[bot]"
	}
	if o.PageSize <= 0 {
		o.PageSize = 100
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{
		t:        t,
		o:        o,
		home:     t.TempDir(),
		tokens:   map[string]time.Time{},
		pulls:    map[int]*pull{},
		statuses: map[string][]*github.RepoStatus{},
		runs:     map[string][]*github.CheckRun{},
		required: map[string][]string{},
	}
	s.git = s.gitHandler(t)
	s.api = s.middleware(s.routes())
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.hooks.start(s)
	t.Cleanup(func() {
		s.srv.Close()
		s.hooks.stop()
	})
	return s
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	gitPrefix := "/" + s.o.Owner + "/" + s.o.Repo + ".git/"
	switch {
	case strings.HasPrefix(r.URL.Path, gitPrefix):
		s.git.ServeHTTP(w, r)
	case s.o.Enterprise && strings.HasPrefix(r.URL.Path, "/api/v3/"):
		http.StripPrefix("/api/v3", s.api).ServeHTTP(w, r)
	case !s.o.Enterprise:
		s.api.ServeHTTP(w, r)
	default:
		http.NotFound(w, r)
	}
}

// URL is the REST API's base URL to give a client, ending in "/" (with
// "/api/v3/" when Options.Enterprise).
func (s *Server) URL() string {
	if s.o.Enterprise {
		return s.srv.URL + "/api/v3/"
	}
	return s.srv.URL + "/"
}

// GitURL is the repository's smart HTTP URL, .../{owner}/{repo}.git.
func (s *Server) GitURL() string { return s.srv.URL + "/" + s.o.Owner + "/" + s.o.Repo + ".git" }

// webURL is a page of the repository on the "web".
func (s *Server) webURL(path string) string {
	return s.srv.URL + "/" + s.o.Owner + "/" + s.o.Repo + path
}

// apiURL is an API URL of the repository.
func (s *Server) apiURL(path string) string {
	return strings.TrimSuffix(s.URL(), "/") + "/repos/" + s.o.Owner + "/" + s.o.Repo + path
}

// now is the double's clock, strictly increasing so events order.
func (s *Server) now() time.Time {
	t := s.o.Now().UTC()
	if !t.After(s.lastTime) {
		t = s.lastTime.Add(time.Millisecond)
	}
	s.lastTime = t
	return t
}

func (s *Server) id() int64 {
	s.nextID++
	return s.nextID
}

// ---- test controls ----

// OpenPR opens a pull request of head into base as login, as a human would
// in the web UI, and returns its number. The test fails if GitHub would
// refuse it.
func (s *Server) OpenPR(login, head, base, title string) int {
	s.t.Helper()
	s.mu.Lock()
	s.refresh()
	p, status, msg := s.createPull(login, head, base, title, "")
	s.mu.Unlock()
	if p == nil {
		s.t.Fatalf("githubtest: open pull request %s -> %s: %d %s", head, base, status, msg)
	}
	return p.number
}

// AddReview submits a review of pull request number by login; state is
// GitHub's: APPROVED, CHANGES_REQUESTED, COMMENTED (or PENDING). An empty
// commitSHA means the pull request's current head. It returns the
// review's id.
func (s *Server) AddReview(number int, login, state, commitSHA string) int64 {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refresh()
	p := s.pulls[number]
	if p == nil {
		s.t.Fatalf("githubtest: AddReview: no pull request #%d", number)
		return 0
	}
	if commitSHA == "" {
		commitSHA = p.headSHA
	}
	id := s.id()
	r := &github.PullRequestReview{
		ID:                github.Int64(id),
		NodeID:            github.String(fmt.Sprintf("PRR_%d", id)),
		User:              s.user(login),
		Body:              github.String(""),
		State:             github.String(strings.ToUpper(state)),
		CommitID:          github.String(commitSHA),
		HTMLURL:           github.String(s.webURL(fmt.Sprintf("/pull/%d#pullrequestreview-%d", number, id))),
		PullRequestURL:    github.String(s.apiURL(fmt.Sprintf("/pulls/%d", number))),
		AuthorAssociation: github.String("COLLABORATOR"),
	}
	if r.GetState() != "PENDING" {
		r.SubmittedAt = &github.Timestamp{Time: s.now()}
		p.reviewers = slices.DeleteFunc(p.reviewers, func(l string) bool { return strings.EqualFold(l, login) })
		s.hookReview(p, r, "submitted")
	}
	p.reviews = append(p.reviews, r)
	return id
}

// DismissReview dismisses review reviewID of pull request number.
func (s *Server) DismissReview(number int, reviewID int64) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pulls[number]
	if p == nil {
		s.t.Fatalf("githubtest: DismissReview: no pull request #%d", number)
		return
	}
	for _, r := range p.reviews {
		if r.GetID() == reviewID {
			r.State = github.String("DISMISSED")
			s.hookReview(p, r, "dismissed")
			return
		}
	}
	s.t.Fatalf("githubtest: DismissReview: pull request #%d has no review %d", number, reviewID)
}

// SetStatus sets the commit status context of sha to state (pending,
// success, failure, error), replacing the previous one of that context.
func (s *Server) SetStatus(sha, context, state string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := &github.Timestamp{Time: s.now()}
	st := &github.RepoStatus{
		ID:          github.Int64(s.id()),
		State:       github.String(state),
		Context:     github.String(context),
		Description: github.String(context + " is " + state),
		TargetURL:   github.String("https://ci.example.com/" + context),
		CreatedAt:   now,
		UpdatedAt:   now,
	}
	list := slices.DeleteFunc(s.statuses[sha], func(x *github.RepoStatus) bool { return x.GetContext() == context })
	s.statuses[sha] = append(list, st)
	s.hookStatus(sha, st)
}

// SetCheckRun sets check run name of sha: status queued, in_progress or
// completed, and when completed its conclusion (success, failure,
// neutral, cancelled, skipped, timed_out, action_required).
func (s *Server) SetCheckRun(sha, name, status, conclusion string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	action := "created"
	list := s.runs[sha]
	i := slices.IndexFunc(list, func(r *github.CheckRun) bool { return r.GetName() == name })
	var run *github.CheckRun
	if i >= 0 {
		run, action = list[i], "rerequested"
	} else {
		id := s.id()
		run = &github.CheckRun{
			ID:        github.Int64(id),
			HeadSHA:   github.String(sha),
			Name:      github.String(name),
			HTMLURL:   github.String(s.webURL(fmt.Sprintf("/runs/%d", id))),
			StartedAt: &github.Timestamp{Time: s.now()},
			App:       &github.App{ID: github.Int64(15368), Slug: github.String("github-actions"), Name: github.String("GitHub Actions")},
		}
		s.runs[sha] = append(list, run)
	}
	run.Status = github.String(status)
	run.Conclusion, run.CompletedAt = nil, nil
	if status == "completed" {
		run.Conclusion = github.String(conclusion)
		run.CompletedAt = &github.Timestamp{Time: s.now()}
		action = "completed"
	}
	s.hookCheckRun(run, action)
}

// SetRequiredChecks protects branch, requiring contexts to pass; no
// contexts removes the protection (GitHub then answers 404).
func (s *Server) SetRequiredChecks(branch string, contexts ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(contexts) == 0 {
		delete(s.required, branch)
		return
	}
	s.required[branch] = slices.Clone(contexts)
}

// RateLimit makes the next n API requests answer status with headers (and
// GitHub's rate limit message). E.g. 403 with X-RateLimit-Remaining: 0
// and X-RateLimit-Reset, or 429 with Retry-After.
func (s *Server) RateLimit(n int, status int, headers http.Header) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.limited = append(s.limited, rateLimit{status: status, headers: headers.Clone()})
	}
}

// PR returns pull request number as the API shows it; the test fails when
// there is none.
func (s *Server) PR(number int) github.PullRequest {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refresh()
	p := s.pulls[number]
	if p == nil {
		s.t.Fatalf("githubtest: no pull request #%d", number)
		return github.PullRequest{}
	}
	return *s.pullJSON(p)
}

// PRs returns every pull request, by number.
func (s *Server) PRs() []github.PullRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refresh()
	var out []github.PullRequest
	for _, n := range s.numbers() {
		out = append(out, *s.pullJSON(s.pulls[n]))
	}
	return out
}

func (s *Server) numbers() []int {
	var ns []int
	for n := range s.pulls {
		ns = append(ns, n)
	}
	sort.Ints(ns)
	return ns
}

// Requests lists the API requests received, in order, as "METHOD /path"
// (without /api/v3 and the query), refused ones included.
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// CountRequests counts the API requests whose "METHOD /path" starts with
// prefix ("" counts all).
func (s *Server) CountRequests(prefix string) int {
	n := 0
	for _, r := range s.Requests() {
		if strings.HasPrefix(r, prefix) {
			n++
		}
	}
	return n
}

// Comments returns the bodies of pull request number's comments, in order.
func (s *Server) Comments(number int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	if p := s.pulls[number]; p != nil {
		for _, c := range p.comments {
			out = append(out, c.GetBody())
		}
	}
	return out
}

// RequestedReviewers returns the logins asked to review pull request
// number (and not reviewed since), in order.
func (s *Server) RequestedReviewers(number int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.pulls[number]; p != nil {
		return slices.Clone(p.reviewers)
	}
	return nil
}

// RequestedTeams returns the team slugs asked to review pull request number.
func (s *Server) RequestedTeams(number int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.pulls[number]; p != nil {
		return slices.Clone(p.teams)
	}
	return nil
}

// Labels returns pull request number's labels, in the order added.
func (s *Server) Labels(number int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.pulls[number]; p != nil {
		return slices.Clone(p.labels)
	}
	return nil
}

// ---- JSON ----

func (s *Server) user(login string) *github.User {
	typ := "User"
	if strings.HasSuffix(login, "[bot]") {
		typ = "Bot"
	}
	return &github.User{
		Login:   github.String(login),
		ID:      github.Int64(userID(login)),
		Type:    github.String(typ),
		HTMLURL: github.String(s.srv.URL + "/" + url.PathEscape(login)),
	}
}

// userID is a stable id for login.
func userID(login string) int64 {
	var id int64 = 7
	for _, c := range strings.ToLower(login) {
		id = id*31 + int64(c)
	}
	return id & (1<<40 - 1)
}

func (s *Server) repoJSON() *github.Repository {
	return &github.Repository{
		ID:            github.Int64(4242),
		Name:          github.String(s.o.Repo),
		FullName:      github.String(s.o.Owner + "/" + s.o.Repo),
		Owner:         &github.User{Login: github.String(s.o.Owner), Type: github.String("Organization")},
		Private:       github.Bool(true),
		HTMLURL:       github.String(s.webURL("")),
		CloneURL:      github.String(s.GitURL()),
		URL:           github.String(s.apiURL("")),
		DefaultBranch: github.String("main"),
	}
}

func (s *Server) pullJSON(p *pull) *github.PullRequest {
	ts := func(t time.Time) *github.Timestamp {
		if t.IsZero() {
			return nil
		}
		return &github.Timestamp{Time: t}
	}
	pr := &github.PullRequest{
		ID:        github.Int64(int64(1000000 + p.number)),
		NodeID:    github.String(fmt.Sprintf("PR_%d", p.number)),
		Number:    github.Int(p.number),
		State:     github.String(p.state),
		Title:     github.String(p.title),
		Body:      github.String(p.body),
		User:      s.user(p.user),
		Draft:     github.Bool(false),
		Merged:    github.Bool(p.merged),
		CreatedAt: ts(p.created),
		UpdatedAt: ts(p.updated),
		ClosedAt:  ts(p.closedAt),
		MergedAt:  ts(p.mergedAt),
		HTMLURL:   github.String(s.webURL(fmt.Sprintf("/pull/%d", p.number))),
		URL:       github.String(s.apiURL(fmt.Sprintf("/pulls/%d", p.number))),
		IssueURL:  github.String(s.apiURL(fmt.Sprintf("/issues/%d", p.number))),
		Head: &github.PullRequestBranch{
			Label: github.String(s.o.Owner + ":" + p.head),
			Ref:   github.String(p.head),
			SHA:   github.String(p.headSHA),
			Repo:  s.repoJSON(),
			User:  &github.User{Login: github.String(s.o.Owner)},
		},
		Base: &github.PullRequestBranch{
			Label: github.String(s.o.Owner + ":" + p.base),
			Ref:   github.String(p.base),
			SHA:   github.String(p.baseSHA),
			Repo:  s.repoJSON(),
			User:  &github.User{Login: github.String(s.o.Owner)},
		},
		Mergeable:      p.mergeable,
		MergeableState: github.String("unknown"),
		Comments:       github.Int(len(p.comments)),
	}
	if p.mergeCommit != "" {
		pr.MergeCommitSHA = github.String(p.mergeCommit)
	}
	if p.state == "open" && p.mergeable != nil {
		if *p.mergeable {
			pr.MergeableState = github.String("clean")
		} else {
			pr.MergeableState = github.String("dirty")
		}
	}
	for _, l := range p.labels {
		pr.Labels = append(pr.Labels, labelJSON(l))
	}
	for _, l := range p.reviewers {
		pr.RequestedReviewers = append(pr.RequestedReviewers, s.user(l))
	}
	for _, t := range p.teams {
		pr.RequestedTeams = append(pr.RequestedTeams, &github.Team{Slug: github.String(t), Name: github.String(t)})
	}
	return pr
}

func labelJSON(name string) *github.Label {
	return &github.Label{Name: github.String(name), Color: github.String("ededed"), Default: github.Bool(false)}
}

// ---- HTTP plumbing ----

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// apiError is GitHub's error body.
type apiError struct {
	Message          string       `json:"message"`
	Errors           []fieldError `json:"errors,omitempty"`
	DocumentationURL string       `json:"documentation_url,omitempty"`
}

type fieldError struct {
	Resource string `json:"resource,omitempty"`
	Field    string `json:"field,omitempty"`
	Code     string `json:"code"`
	Message  string `json:"message,omitempty"`
}

func fail(w http.ResponseWriter, status int, msg string, errs ...fieldError) {
	writeJSON(w, status, apiError{Message: msg, Errors: errs, DocumentationURL: "https://docs.github.com/rest"})
}

// middleware logs the request, answers the rate limits the test asked
// for, authenticates, and brings the pull requests up to date with the
// repository.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests = append(s.requests, r.Method+" "+r.URL.Path)
		var limit *rateLimit
		if len(s.limited) > 0 {
			limit = &s.limited[0]
			s.limited = s.limited[1:]
		}
		s.mu.Unlock()
		h := w.Header()
		h.Set("X-GitHub-Request-Id", fmt.Sprintf("%X", time.Now().UnixNano()))
		h.Set("X-GitHub-Api-Version-Selected", "2022-11-28")
		if limit != nil {
			for k, v := range limit.headers {
				h[k] = v
			}
			if limit.status == http.StatusForbidden && limit.headers.Get("X-RateLimit-Remaining") == "0" {
				fail(w, limit.status, "API rate limit exceeded. (But here's the good news: Authenticated requests get a higher rate limit.)")
				return
			}
			writeJSON(w, limit.status, apiError{
				Message:          "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
				DocumentationURL: "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
			})
			return
		}
		h.Set("X-RateLimit-Limit", "5000")
		h.Set("X-RateLimit-Remaining", "4999")
		h.Set("X-RateLimit-Used", "1")
		h.Set("X-RateLimit-Reset", strconv.FormatInt(s.o.Now().Add(time.Hour).Unix(), 10))
		h.Set("X-RateLimit-Resource", "core")
		if !s.authorized(r) {
			fail(w, http.StatusUnauthorized, "Bad credentials")
			return
		}
		s.mu.Lock()
		s.refresh()
		s.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

// page slices n items for the request's page and per_page, setting the
// Link header as GitHub does.
func (s *Server) page(w http.ResponseWriter, r *http.Request, n int) (lo, hi int) {
	q := r.URL.Query()
	per, _ := strconv.Atoi(q.Get("per_page"))
	if per <= 0 {
		per = 30
	}
	per = min(per, s.o.PageSize)
	pg, _ := strconv.Atoi(q.Get("page"))
	pg = max(pg, 1)
	last := max(1, (n+per-1)/per)
	link := func(p int, rel string) string {
		q.Set("page", strconv.Itoa(p))
		q.Set("per_page", strconv.Itoa(per))
		u := strings.TrimSuffix(s.URL(), "/") + r.URL.Path + "?" + q.Encode()
		return fmt.Sprintf("<%s>; rel=%q", u, rel)
	}
	var links []string
	if pg < last {
		links = append(links, link(pg+1, "next"), link(last, "last"))
	}
	if pg > 1 {
		links = append(links, link(1, "first"), link(pg-1, "prev"))
	}
	if len(links) > 0 {
		w.Header().Set("Link", strings.Join(links, ", "))
	}
	lo = min(n, (pg-1)*per)
	return lo, min(n, lo+per)
}
