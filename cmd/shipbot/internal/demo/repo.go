package demo

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/shipbot/shipbot/gitops"
	"github.com/shipbot/shipbot/templates"
)

// Image names of the demo apps.
const (
	CheckoutImage = "registry.example.com/shop/checkout"
	PaymentsImage = "registry.example.com/shop/payments"
	SearchImage   = "registry.example.com/shop/search"
)

var envs = []string{"dev", "staging", "prod"}

// state is what is deployed where: app -> env -> tag, and restarts.
type state struct {
	tags     map[string]map[string]string
	restarts map[string]map[string]string
}

func (s *state) files() map[string]string {
	f := map[string]string{
		"README.md": "# Environment repo of the shipbot demo\n\n" +
			"Desired state of every app in every environment. Changes come through shipbot\n" +
			"(`/ship help`) or pull requests; see each commit's trailers for who asked and why.\n",
		"apps/checkout/base/kustomization.yaml": `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - deployment.yaml
  - service.yaml
`,
		"apps/checkout/base/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: checkout
  labels: {app: checkout}
spec:
  replicas: 1
  selector:
    matchLabels: {app: checkout}
  template:
    metadata:
      labels: {app: checkout}
    spec:
      containers:
        - name: checkout
          image: registry.example.com/shop/checkout:latest # overridden by each overlay
          ports:
            - containerPort: 8080
          readinessProbe:
            httpGet: {path: /healthz, port: 8080}
            periodSeconds: 2
`,
		"apps/checkout/base/service.yaml": `apiVersion: v1
kind: Service
metadata:
  name: checkout
spec:
  selector: {app: checkout}
  ports:
    - port: 80
      targetPort: 8080
`,
		"apps/payments/chart/Chart.yaml":  "apiVersion: v2\nname: payments\nversion: 0.3.0\n",
		"apps/payments/chart/values.yaml": "replicaCount: 1\nimage:\n  repository: " + PaymentsImage + "\n  tag: latest\npodAnnotations: {}\n",
		"apps/payments/chart/templates/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: payments
spec:
  replicas: {{ .Values.replicaCount }}
  selector:
    matchLabels: {app: payments}
  template:
    metadata:
      labels: {app: payments}
      {{- with .Values.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      containers:
        - name: payments
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
          ports:
            - containerPort: 8080
          readinessProbe:
            httpGet: {path: /healthz, port: 8080}
            periodSeconds: 2
`,
	}
	for _, env := range envs {
		f["apps/checkout/overlays/"+env+"/kustomization.yaml"] = checkoutOverlay(env, s.tags["checkout"][env])
		f["apps/payments/values-"+env+".yaml"] = paymentsValues(env, s.tags["payments"][env], s.restarts["payments"][env])
		f["apps/search/"+env+"/search.yaml"] = searchManifests(env, s.tags["search"][env], s.restarts["search"][env])
	}
	return f
}

func checkoutOverlay(env, tag string) string {
	return fmt.Sprintf(`# checkout in %[1]s. The image tag below is set by shipbot; keep comments and order.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: checkout-%[1]s

resources:
  - ../../base

images:
  - name: %[2]s
    newTag: %[3]s # the release running in %[1]s
`, env, CheckoutImage, tag)
}

func paymentsValues(env, tag, restarted string) string {
	ann := "podAnnotations: {}\n"
	if restarted != "" {
		ann = fmt.Sprintf("podAnnotations:\n  %s: %q\n", gitops.RestartAnnotation, restarted)
	}
	return fmt.Sprintf(`# payments values for %[1]s (Helm chart in ./chart)
replicaCount: 1

image:
  repository: %[2]s
  tag: "%[3]s"   # the release running in %[1]s
  pullPolicy: IfNotPresent

%[4]s
resources:
  limits: {cpu: 500m, memory: 256Mi}
`, env, PaymentsImage, tag, ann)
}

func searchManifests(env, tag, restarted string) string {
	ann := ""
	if restarted != "" {
		ann = fmt.Sprintf("      annotations:\n        %s: %q\n", gitops.RestartAnnotation, restarted)
	}
	return fmt.Sprintf(`---
apiVersion: v1
kind: Service
metadata:
  name: search
  namespace: search-%[1]s
spec:
  selector: {app: search}
  ports: [{port: 80, targetPort: 9200}]
---
# The search API and its metrics sidecar; only the search image is shipbot's.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: search
  namespace: search-%[1]s
spec:
  replicas: 1
  selector:
    matchLabels: {app: search}
  template:
    metadata:
      labels: {app: search}
%[4]s    spec:
      containers:
      - name: search
        image: %[2]s:%[3]s
        args: ["--port=9200"]
        readinessProbe:
          httpGet: {path: /healthz, port: 9200}
          periodSeconds: 2
      - name: metrics
        image: registry.example.com/infra/metrics-exporter:0.4.1
`, env, SearchImage, tag, ann)
}

// event is one commit of the seeded history.
type event struct {
	when    time.Time
	who     string // author (a chat user)
	action  string // rollback|restart|promote, or "" for a manual commit
	app     string
	env     string
	fromEnv string
	tag     string // new tag ("" for a restart)
	why     string
	msg     string // manual commits only
}

func history() []event {
	t0 := time.Date(2026, 10, 5, 9, 0, 0, 0, time.UTC)
	at := func(days, hours int) time.Time { return t0.Add(time.Duration(days*24+hours) * time.Hour) }
	var ev []event
	deploy := func(d, h int, who, app, tag string, envs ...string) {
		for i, env := range envs {
			e := event{when: at(d, h+i), who: who, app: app, env: env, tag: tag}
			if env == "dev" {
				e.msg = fmt.Sprintf("ci: deploy %s %s to dev", app, tag)
			} else {
				e.action, e.fromEnv = "promote", prevEnv(env)
				if env == "prod" {
					e.why = "CHG-" + fmt.Sprint(100+len(ev))
				}
			}
			ev = append(ev, e)
		}
	}
	deploy(1, 0, "bob", "checkout", "1.4.0", "dev", "staging", "prod")
	deploy(3, 0, "carol", "payments", "2.6.0", "dev", "staging", "prod")
	deploy(5, 0, "bob", "search", "1.0.0", "dev", "staging", "prod")
	deploy(9, 0, "carol", "checkout", "1.4.1", "dev", "staging", "prod")
	ev = append(ev, event{when: at(12, 3), who: "alice", action: "restart", app: "search", env: "prod", why: "https://acme.pagerduty.com/incidents/PQ7R2KD"})
	deploy(15, 0, "carol", "payments", "2.7.0", "dev", "staging")
	deploy(20, 0, "bob", "checkout", "1.4.2", "dev", "staging", "prod")
	deploy(25, 0, "carol", "search", "1.0.1", "dev", "staging")
	// checkout 1.5.0 waits in staging: promoting it to prod needs review.
	deploy(27, 0, "alice", "checkout", "1.5.0", "dev", "staging")
	return ev
}

func prevEnv(env string) string {
	for i, e := range envs {
		if e == env && i > 0 {
			return envs[i-1]
		}
	}
	return ""
}

// writeRepo creates the bare environment repo at dir with the seeded history.
// Commits made "by shipbot" in the seeded history are signed with the demo
// key, as real ones are; the humans' commits are not.
func writeRepo(dir string, signer git.Signer) error {
	work, err := os.MkdirTemp("", "shipbot-demo-seed-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	r, err := git.PlainInit(work, false)
	if err != nil {
		return err
	}
	if err := r.Storer.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, plumbing.NewBranchReferenceName("main"))); err != nil {
		return err
	}
	wt, err := r.Worktree()
	if err != nil {
		return err
	}
	st := &state{tags: map[string]map[string]string{}, restarts: map[string]map[string]string{}}
	for app, tag := range map[string]string{"checkout": "1.3.0", "payments": "2.5.1", "search": "0.9.0"} {
		st.tags[app], st.restarts[app] = map[string]string{}, map[string]string{}
		for _, env := range envs {
			st.tags[app][env] = tag
		}
	}
	commit := func(when time.Time, author gitops.Person, committer gitops.Person, msg string, signer git.Signer) error {
		for p, content := range st.files() {
			full := filepath.Join(work, filepath.FromSlash(p))
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
				return err
			}
		}
		if err := wt.AddGlob("."); err != nil {
			return err
		}
		_, err := wt.Commit(msg, &git.CommitOptions{
			Author:    &object.Signature{Name: author.Name, Email: author.Email, When: when},
			Committer: &object.Signature{Name: committer.Name, Email: committer.Email, When: when},
			Signer:    signer,
		})
		return err
	}
	carol := person("carol")
	if err := commit(time.Date(2026, 10, 1, 8, 0, 0, 0, time.UTC), carol, carol, "bootstrap the environment repo\n\ncheckout (kustomize), payments (Helm values), search (raw manifests)\nin dev, staging and prod.\n", nil); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	for i, e := range history() {
		who := person(e.who)
		from := st.tags[e.app][e.env]
		if e.action == "restart" {
			from = st.restarts[e.app][e.env]
			st.restarts[e.app][e.env] = e.when.Format(time.RFC3339)
		} else {
			st.tags[e.app][e.env] = e.tag
		}
		msg := e.msg
		committer := who
		var by git.Signer
		if e.action != "" {
			committer, by = Committer, signer
			to := e.tag
			if e.action == "restart" {
				to = st.restarts[e.app][e.env]
			}
			tr := []templates.Trailer{
				{Key: gitops.TrailerRequest, Value: gitops.NewRequestID("demo-seed", fmt.Sprint(i))},
				{Key: gitops.TrailerAction, Value: e.action},
				{Key: gitops.TrailerApp, Value: e.app},
				{Key: gitops.TrailerEnv, Value: e.env},
			}
			if from != "" {
				tr = append(tr, templates.Trailer{Key: gitops.TrailerFrom, Value: from})
			}
			tr = append(tr, templates.Trailer{Key: gitops.TrailerTo, Value: to},
				templates.Trailer{Key: gitops.TrailerRequestedBy, Value: who.String()})
			if e.why != "" {
				tr = append(tr, templates.Trailer{Key: gitops.TrailerJustification, Value: e.why})
			}
			tr = append(tr, templates.Trailer{Key: gitops.TrailerChannel, Value: "#deploys"})
			msg, err = templates.CommitMessage(templates.Commit{
				Action: e.action, App: e.app, Env: e.env, FromEnv: e.fromEnv, From: from, To: to,
				RequestedBy: who.Name, Channel: "#deploys", Reason: e.why, Trailers: tr,
			})
			if err != nil {
				return err
			}
		}
		if err := commit(e.when, who, committer, msg, by); err != nil {
			return fmt.Errorf("seed %s: %w", strings.SplitN(msg, "\n", 2)[0], err)
		}
	}
	if _, err := git.PlainClone(dir, true, &git.CloneOptions{URL: work}); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	return nil
}

func person(user string) gitops.Person {
	return gitops.Person{Name: user, Email: user + "@" + EmailDomain}
}

// EmailDomain of the demo users.
const EmailDomain = "shop.example.com"
