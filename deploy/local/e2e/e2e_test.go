//go:build e2e

// Package e2e runs shipbot end to end against a real Argo CD 2.14 with a
// real kube-apiserver, kube-controller-manager, kube-scheduler and kubelet
// 1.31 on containerd (deploy/local/stack): the shipbot binary's own chat,
// config and wiring (NewMainWith with an argo: section), the real argo
// watcher, real commits to the demo env repo, real pods pulling real images
// from a local registry. "Healthy" is checked against the pods themselves.
//
// Run it with `make e2e`; by hand, inside a network namespace, as root:
//
//	bin=$(deploy/local/build.sh | tail -n1)
//	go build -o bin/shipbot ./cmd/shipbot
//	go test -c -tags e2e -o bin/e2e.test ./deploy/local/e2e
//	go run ./deploy/local/harness netns -- bin/e2e.test -test.v -bin $bin -shipbot bin/shipbot
package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shipbot/shipbot/deploy/local/stack"
)

var (
	binDir  = flag.String("bin", "", "tool binaries from deploy/local/build.sh (required; the suite skips without it)")
	shipbot = flag.String("shipbot", "bin/shipbot", "the shipbot binary under test")
	keep    = flag.Bool("keep", false, "keep the work directory (logs, repo) even when the suite passes")
	argocd  = flag.String("argocd", "", "the Argo CD major -bin holds (v2 or v3): the suite checks the running server is that one")
)

// The suite's shared state: one stack, one demo repo, one chat session.
var (
	st   *stack.Stack
	demo *stack.Demo
	chat *session
	work string

	resultsMu sync.Mutex
	results   []string
)

func result(format string, args ...any) {
	resultsMu.Lock()
	defer resultsMu.Unlock()
	results = append(results, fmt.Sprintf(format, args...))
}

func TestMain(m *testing.M) {
	flag.Parse()
	if *binDir == "" {
		fmt.Println("e2e: skipped (-bin not set; run `make e2e`)")
		return
	}
	os.Exit(run(m))
}

func run(m *testing.M) (code int) {
	start := time.Now()
	ctx := context.Background()
	var err error
	if work, err = os.MkdirTemp("", "shipbot-e2e-"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer func() {
		if code == 0 && !*keep {
			os.RemoveAll(work)
		} else {
			fmt.Printf("e2e: work directory kept: %s (stack logs in stack/logs, shipbot's in shipbot.log)\n", work)
		}
	}()
	sb, _ := filepath.Abs(*shipbot)
	if demo, err = stack.SetupDemo(ctx, sb, filepath.Join(work, "demo")); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	imgs, err := stack.DemoImages(ctx, demo.Repo)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	t0 := time.Now()
	st, err = stack.Start(ctx, stack.Options{
		BinDir: *binDir, WorkDir: filepath.Join(work, "stack"), RepoPath: demo.Repo,
		Apps: stack.DemoApps(), Images: imgs, Log: os.Stdout,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer st.Stop()
	if *argocd != "" && !strings.HasPrefix(st.ArgoVersion, *argocd+".") {
		fmt.Fprintf(os.Stderr, "e2e: Argo CD %s is running, want %s (-argocd)\n", st.ArgoVersion, *argocd)
		return 1
	}
	result("Argo CD %s", st.ArgoVersion)
	result("stack up (registry with %d images, node Ready, 9 apps Synced+Healthy with their pods Ready): %.1fs", len(imgs)+1, time.Since(t0).Seconds())
	if err := demo.WriteConfig(st, "3m"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	if chat, err = startChat(sb, demo.Config, filepath.Join(work, "shipbot.log")); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer chat.close()
	code = m.Run()
	chat.close()
	t1 := time.Now()
	st.Stop()
	left := st.Leftovers()
	result("tear-down (workloads, node, Argo CD, kube, etcd, redis): %.1fs; leftovers: %s", time.Since(t1).Seconds(), orNone(left))
	if len(left) > 0 {
		code = 1
	}
	result("suite wall time (setup + scenarios + tear-down): %.1fs", time.Since(start).Seconds())
	fmt.Println("\n=== e2e results")
	for _, r := range results {
		fmt.Println("E2E:", r)
	}
	return code
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, "; ")
}

// session is `shipbot chat` with a pipe for input and timestamped output.
type session struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan line
	log   *os.File

	mu         sync.Mutex
	transcript []string
	closed     bool
}

type line struct {
	text string
	at   time.Time
}

func startChat(shipbot, config, logPath string) (*session, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(shipbot, "chat", "--config", config, "--as", "alice")
	cmd.Stderr = logf
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &session{cmd: cmd, in: in, lines: make(chan line, 1000), log: logf}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			s.lines <- line{sc.Text(), time.Now()}
		}
		close(s.lines)
	}()
	return s, nil
}

func (s *session) close() {
	if s.closed {
		return
	}
	s.closed = true
	s.in.Close()
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
	s.log.Close()
}

func (s *session) send(t *testing.T, text string) time.Time {
	t.Helper()
	t.Logf(">> %s", text)
	if _, err := io.WriteString(s.in, text+"\n"); err != nil {
		t.Fatalf("write to shipbot chat: %v", err)
	}
	return time.Now()
}

// expect reads output until a line matches re; it fails the test at the
// timeout or when a line matches one of the fail patterns.
func (s *session) expect(t *testing.T, re string, timeout time.Duration, fail ...string) ([]string, time.Time) {
	t.Helper()
	want := regexp.MustCompile(re)
	var bad []*regexp.Regexp
	for _, f := range fail {
		bad = append(bad, regexp.MustCompile(f))
	}
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-s.lines:
			if !ok {
				t.Fatalf("shipbot chat ended while waiting for %q", re)
			}
			t.Logf("<< %s", l.text)
			for _, b := range bad {
				if b.MatchString(l.text) {
					t.Fatalf("unexpected reply (matches %q) while waiting for %q: %s", b, re, l.text)
				}
			}
			if m := want.FindStringSubmatch(l.text); m != nil {
				return m, l.at
			}
		case <-deadline:
			t.Fatalf("no line matching %q within %s", re, timeout)
		}
	}
}

// confirm sends a request, answers as the plan asks and returns the pushed commit (as
// printed, abbreviated) and when the push was reported.
func confirm(t *testing.T, as, request string) (string, time.Time) {
	t.Helper()
	chat.send(t, "/as "+as)
	chat.expect(t, `you are now `+as, 10*time.Second)
	chat.send(t, request)
	// The answer the plan asks for: `yes`, or the typed one for a tag
	// never deployed (`yes, deploy TAG`).
	ans, _ := chat.expect(t, "Reply `(yes[^`]*)`", 30*time.Second, `denied|not allowed|can't|cannot|nothing to change`)
	chat.send(t, ans[1])
	m, at := chat.expect(t, `commit ([0-9a-f]{7,}) pushed`, 60*time.Second)
	return m[1], at
}

// argoRevision checks that Argo CD shows app at commit, Synced and Healthy.
func argoAt(t *testing.T, app, commit string) {
	t.Helper()
	a, err := st.App(context.Background(), app, "")
	if err != nil {
		t.Fatalf("read %s from Argo CD: %v", app, err)
	}
	s := a.Status
	if !strings.HasPrefix(s.Sync.Revision, commit) || s.Sync.Status != "Synced" || s.Health.Status != "Healthy" {
		t.Fatalf("Argo CD shows %s %s/%s at %s; want Synced/Healthy at %s", app, s.Sync.Status, s.Health.Status, s.Sync.Revision, commit)
	}
}

// deployment reads a Deployment from the kube-apiserver's REST API.
type deployment struct {
	Spec struct {
		Template struct {
			Metadata struct {
				Annotations map[string]string `json:"annotations"`
			} `json:"metadata"`
			Spec struct {
				Containers []struct {
					Name  string `json:"name"`
					Image string `json:"image"`
				} `json:"containers"`
			} `json:"spec"`
		} `json:"template"`
	} `json:"spec"`
}

func getDeployment(t *testing.T, ns, name string) deployment {
	t.Helper()
	b, err := st.Kube(context.Background(), "GET", "/apis/apps/v1/namespaces/"+ns+"/deployments/"+name, "", nil)
	if err != nil {
		t.Fatalf("kube-apiserver: %v", err)
	}
	var d deployment
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func image(d deployment, container string) string {
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == container {
			return c.Image
		}
	}
	return ""
}

// pod is the part of a Pod the scenarios read.
type pod struct {
	Metadata struct {
		Name              string            `json:"name"`
		Annotations       map[string]string `json:"annotations"`
		DeletionTimestamp *string           `json:"deletionTimestamp"`
	} `json:"metadata"`
	Spec struct {
		Containers []struct {
			Name  string `json:"name"`
			Image string `json:"image"`
		} `json:"containers"`
	} `json:"spec"`
	Status struct {
		Phase      string `json:"phase"`
		Conditions []struct {
			Type   string `json:"type"`
			Status string `json:"status"`
		} `json:"conditions"`
		ContainerStatuses []struct {
			Name    string `json:"name"`
			Image   string `json:"image"`
			ImageID string `json:"imageID"`
			Ready   bool   `json:"ready"`
			State   struct {
				Waiting *struct {
					Reason  string `json:"reason"`
					Message string `json:"message"`
				} `json:"waiting"`
				Running *struct{} `json:"running"`
			} `json:"state"`
		} `json:"containerStatuses"`
	} `json:"status"`
}

func (p pod) ready() bool {
	for _, c := range p.Status.Conditions {
		if c.Type == "Ready" {
			return c.Status == "True"
		}
	}
	return false
}

// running is the image the kubelet reports for container, "" when it does
// not run.
func (p pod) running(container string) string {
	for _, c := range p.Status.ContainerStatuses {
		if c.Name == container && c.State.Running != nil && c.ImageID != "" {
			return c.Image
		}
	}
	return ""
}

// getPods reads the pods of app (label app=APP) from the kube-apiserver;
// pods on their way out (deletionTimestamp set) are left out.
func getPods(t *testing.T, ns, app string) []pod {
	t.Helper()
	b, err := st.Kube(context.Background(), "GET", "/api/v1/namespaces/"+ns+"/pods?labelSelector=app%3D"+app, "", nil)
	if err != nil {
		t.Fatalf("kube-apiserver: %v", err)
	}
	var list struct {
		Items []pod `json:"items"`
	}
	if err := json.Unmarshal(b, &list); err != nil {
		t.Fatal(err)
	}
	var out []pod
	for _, p := range list.Items {
		if p.Metadata.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

// rolledOut checks "Healthy means rolled out": right after shipbot reported
// Synced and Healthy, every pod of app (but those terminating) is Ready
// and runs image in container, with annotation key=value when key is set.
// It returns how many pods it checked.
func rolledOut(t *testing.T, ns, app, container, image, key, value string) int {
	t.Helper()
	pods := getPods(t, ns, app)
	if len(pods) == 0 {
		t.Fatalf("no pods of %s in %s (terminating ones aside)", app, ns)
	}
	for _, p := range pods {
		if !p.ready() {
			t.Errorf("pod %s/%s is not Ready (phase %s) though shipbot reported Healthy", ns, p.Metadata.Name, p.Status.Phase)
		}
		if got := p.running(container); got != image {
			t.Errorf("pod %s/%s runs %q in %s, want %q", ns, p.Metadata.Name, got, container, image)
		}
		if key != "" && p.Metadata.Annotations[key] != value {
			t.Errorf("pod %s/%s has %s=%q, want %q", ns, p.Metadata.Name, key, p.Metadata.Annotations[key], value)
		}
	}
	return len(pods)
}

// git runs git in dir.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=e2e", "GIT_AUTHOR_EMAIL=e2e@shop.example.com",
		"GIT_COMMITTER_NAME=e2e", "GIT_COMMITTER_EMAIL=e2e@shop.example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

const healthy = `is Synced and Healthy`

// unhealthy replies: any of them ends a scenario that expects Healthy.
var notHealthy = []string{`Degraded after`, `could not confirm`, ` / (Degraded|Progressing|Missing)`, `fails to roll out`}

// Scenario 1a: a reviewed promotion. alice's promotion of checkout into
// prod needs two SREs: it opens a proposal; bob's approval leaves it open,
// carol's merges it, and the merged commit is followed to Synced and
// Healthy as a direct one is. It runs before scenario 1, whose rollback of
// checkout prod pins it (promotions into a pinned env are refused).
func TestReviewedPromotionHealthy(t *testing.T) {
	chat.send(t, "/as alice")
	chat.expect(t, `you are now alice`, 10*time.Second)
	chat.send(t, "promote checkout staging to prod --why CHG-42")
	chat.expect(t, "Reply `yes` to open a proposal", 30*time.Second, `denied|nothing to change`)
	chat.send(t, "yes")
	m, _ := chat.expect(t, `\[(shp-[a-z2-7]{10})\] proposal opened`, 60*time.Second, `failed`)
	id := m[1]
	chat.send(t, "/as bob")
	chat.expect(t, `you are now bob`, 10*time.Second)
	chat.send(t, "approve "+id)
	chat.expect(t, `approvals: 1 of 2 from sre`, 60*time.Second, `failed|denied`)
	chat.send(t, "/as carol")
	chat.expect(t, `you are now carol`, 10*time.Second)
	chat.send(t, "approve "+id)
	m, merged := chat.expect(t, `commit ([0-9a-f]{7,}) pushed`, 60*time.Second, `failed|denied`)
	commit := m[1]
	_, done := chat.expect(t, healthy, 3*time.Minute, notHealthy...)
	secs := done.Sub(merged).Seconds()
	result("reviewed promote checkout prod (2 approvals in chat): merge -> \"Synced and Healthy\" %.2fs", secs)
	argoAt(t, "checkout-prod", commit)
	if got := image(getDeployment(t, "checkout-prod", "checkout"), "checkout"); got != "registry.example.com/shop/checkout:1.5.0" {
		t.Errorf("live image of checkout prod: %s, want 1.5.0", got)
	}
	rolledOut(t, "checkout-prod", "checkout", "checkout", "registry.example.com/shop/checkout:1.5.0", "", "")
}

// Scenario 1: rollbacks reported Synced and Healthy at shipbot's commit, on
// an app with automated sync (discovered) and on a manual prod app named
// by argoApp (shipbot syncs it to its commit).
func TestRollbackHealthy(t *testing.T) {
	for _, c := range []struct{ app, env, request string }{
		{"checkout", "dev", "rollback checkout dev to 1.4.1"},
		{"checkout", "prod", "rollback checkout prod to 1.4.1 --why https://acme.pagerduty.com/incidents/PQ7R2KD"},
	} {
		commit, pushed := confirm(t, "alice", c.request)
		_, done := chat.expect(t, healthy, 3*time.Minute, notHealthy...)
		secs := done.Sub(pushed).Seconds()
		t.Logf("%s %s: push -> Synced and Healthy in %.2fs", c.app, c.env, secs)
		result("rollback %s %s (%s): push -> \"Synced and Healthy\" %.2fs", c.app, c.env, map[bool]string{true: "automated sync", false: "manual, synced by shipbot"}[c.env != "prod"], secs)
		argoAt(t, c.app+"-"+c.env, commit)
		if got := image(getDeployment(t, c.app+"-"+c.env, c.app), c.app); got != "registry.example.com/shop/checkout:1.4.1" {
			t.Errorf("live image of %s %s: %s, want 1.4.1", c.app, c.env, got)
		}
		n := rolledOut(t, c.app+"-"+c.env, c.app, c.app, "registry.example.com/shop/checkout:1.4.1", "", "")
		t.Logf("%s %s: %d pod(s) Ready with checkout:1.4.1", c.app, c.env, n)
	}
}

var restartValue = regexp.MustCompile(`shipbot\.io/restartedAt: "([^"]+)"`)

// Scenario 2: a restart whose annotation is live on the Deployment.
func TestRestartAnnotationLive(t *testing.T) {
	commit, pushed := confirm(t, "bob", "restart payments staging")
	_, done := chat.expect(t, healthy, 3*time.Minute, notHealthy...)
	result("restart payments staging (Helm): push -> \"Synced and Healthy\" %.2fs", done.Sub(pushed).Seconds())
	argoAt(t, "payments-staging", commit)
	values := git(t, demo.Repo, "show", commit+":apps/payments/values-staging.yaml")
	m := restartValue.FindStringSubmatch(values)
	if m == nil {
		t.Fatalf("no restart annotation in the committed values:\n%s", values)
	}
	d := getDeployment(t, "payments-staging", "payments")
	if got := d.Spec.Template.Metadata.Annotations["shipbot.io/restartedAt"]; got != m[1] {
		t.Fatalf("live pod-template annotation shipbot.io/restartedAt = %q, want %q (committed)", got, m[1])
	}
	// The pods were replaced: the Ready ones are new and carry the annotation.
	n := rolledOut(t, "payments-staging", "payments", "payments", image(d, "payments"), "shipbot.io/restartedAt", m[1])
	t.Logf("annotation shipbot.io/restartedAt=%s is live on Deployment payments-staging/payments and on its %d Ready pod(s)", m[1], n)
}

// Scenario 3: a tag with no image. The new pod can't pull it
// (ErrImagePull, then ImagePullBackOff); shipbot reports it from Argo CD's
// resource tree with the kubelet's message and a ready rollback command,
// long before the Deployment's progress deadline. The old pod keeps serving.
func TestBadTagImagePull(t *testing.T) {
	const tag = "does-not-exist"
	_, pushed := confirm(t, "bob", "rollback search dev to "+tag)
	limit := 20*time.Second - time.Since(pushed)
	m, done := chat.expect(t, `search dev `+tag+` fails to roll out \([^)]*\): Pod search-dev/\S+: (ErrImagePull|ImagePullBackOff): (.*)`, limit, healthy, `could not confirm`)
	secs := done.Sub(pushed).Seconds()
	if !strings.Contains(m[2], "search:"+tag) || !strings.Contains(m[2], "not found") {
		t.Errorf("the reply does not carry the pod's message (image and registry answer): %s", m[2])
	}
	chat.expect(t, "To roll back: `rollback search dev to 1.0.1", 5*time.Second)
	t.Logf("reported %s after %.1fs: %s", m[1], secs, m[2])
	// The pods as the API server has them: the new one waits on its image,
	// the old one still serves 1.0.1.
	var waiting, serving int
	for _, p := range getPods(t, "search-dev", "search") {
		for _, c := range p.Status.ContainerStatuses {
			if c.Name == "search" && c.State.Waiting != nil && (c.State.Waiting.Reason == "ErrImagePull" || c.State.Waiting.Reason == "ImagePullBackOff") {
				waiting++
			}
		}
		if p.ready() && p.running("search") == "registry.example.com/shop/search:1.0.1" {
			serving++
		}
	}
	if waiting != 1 || serving != 1 {
		t.Errorf("search-dev pods: %d waiting on their image, %d Ready on 1.0.1; want 1 and 1", waiting, serving)
	}
	result("tag with no image on search dev: push -> %q + the pod's message + rollback offer %.1fs", m[1], secs)
}

// Scenario 3b: a release that crashes on start (its image exits 1):
// reported as CrashLoopBackOff with how the container ended.
func TestCrashLoop(t *testing.T) {
	tag := stack.CrashImage[strings.LastIndex(stack.CrashImage, ":")+1:]
	_, pushed := confirm(t, "bob", "rollback payments dev to "+tag)
	m, done := chat.expect(t, `payments dev `+regexp.QuoteMeta(tag)+` fails to roll out \([^)]*\): Pod payments-dev/\S+: (CrashLoopBackOff): (.*)`, 90*time.Second, healthy, `could not confirm`)
	secs := done.Sub(pushed).Seconds()
	if !strings.Contains(m[2], "exited with code 1") {
		t.Errorf("the reply does not say how the container ended: %s", m[2])
	}
	chat.expect(t, "To roll back: `rollback payments dev to 2.7.0", 5*time.Second)
	t.Logf("reported %s after %.1fs: %s", m[1], secs, m[2])
	result("crash-looping release on payments dev: push -> \"CrashLoopBackOff\" + exit code + rollback offer %.1fs", secs)
}

// Scenario 4a: argocd-server is down from before the push; the watch keeps
// retrying (discovery, refresh) and reports Healthy once the server is back.
func TestArgoServerDownAtPush(t *testing.T) {
	chat.send(t, "/as bob")
	chat.expect(t, `you are now bob`, 10*time.Second)
	chat.send(t, "rollback search staging to 1.0.0")
	chat.expect(t, "Reply `yes`", 30*time.Second)
	if err := st.StopProcess("argocd-server"); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	chat.send(t, "yes")
	m, pushed := chat.expect(t, `commit ([0-9a-f]{7,}) pushed`, 60*time.Second)
	// The watch runs against a dead server: it must not finish.
	chat.expect(t, `search staging: -, -`, 30*time.Second, healthy, `could not confirm`)
	time.Sleep(8 * time.Second)
	select {
	case l := <-chat.lines:
		if strings.Contains(l.text, healthy) || strings.Contains(l.text, "could not confirm") {
			t.Fatalf("watch ended while argocd-server was down: %s", l.text)
		}
		t.Logf("<< %s", l.text)
	default:
	}
	if err := st.StartProcess("argocd-server"); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	if err := st.WaitArgo(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Logf("argocd-server down %.1fs (push %.1fs into it)", time.Since(stopped).Seconds(), pushed.Sub(stopped).Seconds())
	_, done := chat.expect(t, healthy, 3*time.Minute, notHealthy...)
	argoAt(t, "search-staging", m[1])
	logb, _ := os.ReadFile(filepath.Join(work, "shipbot.log"))
	if !strings.Contains(string(logb), "retrying") {
		t.Errorf("shipbot's log shows no retry while argocd-server was down")
	}
	result("argocd-server stopped before the push, restarted %.1fs into the watch: Healthy %.1fs after the restart", restarted.Sub(pushed).Seconds(), done.Sub(restarted).Seconds())
}

// Scenario 4b: argocd-server stopped in the middle of a watch that is under
// way (refreshed, stream open, commit not live yet) and started again. The
// commit is held back the way it is in production: a prod app without
// automated sync, watched by a shipbot that does not sync (syncManual:
// false), until a person syncs it after the server is back.
func TestArgoServerRestartMidWatch(t *testing.T) {
	cfg := filepath.Join(demo.Dir, "shipbot-argocd-nosync.yaml")
	if err := demo.WriteConfigTo(cfg, "cache-nosync", st, "3m", false); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(work, "shipbot-nosync.log")
	c, err := startChat(mustAbs(*shipbot), cfg, logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	c.send(t, "/as bob")
	c.expect(t, `you are now bob`, 10*time.Second)
	c.send(t, "restart search prod --why https://acme.pagerduty.com/incidents/PQ7R2KD")
	c.expect(t, "Reply `yes`", 30*time.Second, `nothing to change|denied`)
	c.send(t, "yes")
	m, pushed := c.expect(t, `commit ([0-9a-f]{7,}) pushed`, 60*time.Second)
	// The watch is connected and waiting: the app is OutOfSync at our commit.
	c.expect(t, `search prod: OutOfSync`, 60*time.Second, healthy, `could not confirm`)
	time.Sleep(2 * time.Second)
	before := fileSize(t, logPath)
	term := time.Now()
	// SIGTERM; argocd-server's graceful shutdown waits for the open watch
	// stream, so StopProcess ends it with SIGKILL after 10s.
	if err := st.StopProcess("argocd-server"); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	time.Sleep(5 * time.Second)
	for drained := false; !drained; {
		select {
		case l := <-c.lines:
			t.Logf("<< %s", l.text)
			if strings.Contains(l.text, healthy) || strings.Contains(l.text, "could not confirm") {
				t.Fatalf("watch ended while argocd-server was down: %s", l.text)
			}
		default:
			drained = true
		}
	}
	if err := st.StartProcess("argocd-server"); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	if err := st.WaitArgo(context.Background()); err != nil {
		t.Fatal(err)
	}
	full := strings.TrimSpace(git(t, demo.Repo, "rev-parse", m[1]))
	if err := retryFor(30*time.Second, func() error { return st.Sync(context.Background(), "search-prod", full) }); err != nil {
		t.Fatalf("sync search-prod as a person: %v", err)
	}
	t.Logf("synced search-prod to %s as admin", full)
	_, done := c.expect(t, healthy, 3*time.Minute, notHealthy...)
	argoAt(t, "search-prod", m[1])
	logb, _ := os.ReadFile(logPath)
	if tail := string(logb[before:]); !strings.Contains(tail, "watch stream ended") && !strings.Contains(tail, "retrying") {
		t.Errorf("shipbot's log shows neither a broken stream nor a retry while argocd-server was down:\n%s", tail)
	}
	result("argocd-server SIGTERM %.1fs into a running watch (stream open, manual prod app), gone after %.1fs, down %.1fs: Healthy %.1fs after the restart (incl. a person's sync), watch total %.1fs",
		term.Sub(pushed).Seconds(), stopped.Sub(term).Seconds(), restarted.Sub(stopped).Seconds(), done.Sub(restarted).Seconds(), done.Sub(pushed).Seconds())
}

func mustAbs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		panic(err)
	}
	return a
}

func retryFor(d time.Duration, f func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func fileSize(t *testing.T, path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
