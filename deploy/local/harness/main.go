// Command harness runs shipbot against a real local Argo CD (see
// deploy/local/stack and deploy/local/README.md).
//
//	harness netns -- CMD [ARG...]
//	    run CMD in a fresh private network namespace with only loopback up;
//	    afterwards kill whatever is left in it and delete it (needs root)
//	harness demo -bin DIR -shipbot PATH [-as USER] [-work DIR] [-keep]
//	    inside a namespace: seed the demo env repo, start the stack, and chat
//	    with shipbot on stdin/stdout against it; stop everything at the end
//	harness up -bin DIR -shipbot PATH [-work DIR]
//	    inside a namespace: start the stack and wait for Ctrl-C (debugging)
//
// `make demo-argocd` and `make e2e` (deploy/local/e2e.mk) use it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/shipbot/shipbot/deploy/local/stack"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "netns":
		var code int
		code, err = netns(os.Args[2:])
		if err == nil {
			os.Exit(code)
		}
	case "demo":
		err = demo(os.Args[2:], true)
	case "up":
		err = demo(os.Args[2:], false)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: harness netns -- CMD [ARG...] | harness demo -bin DIR -shipbot PATH [-as USER] | harness up -bin DIR -shipbot PATH")
	os.Exit(2)
}

// netns runs args in a new network namespace and removes it afterwards.
func netns(args []string) (int, error) {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		usage()
	}
	name := fmt.Sprintf("shipbot-e2e-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("ip netns add %s: %w: %s (root needed)", name, err, strings.TrimSpace(string(out)))
	}
	defer cleanup(name)
	if out, err := exec.Command("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return 0, fmt.Errorf("loopback up in %s: %w: %s", name, err, out)
	}
	fmt.Fprintf(os.Stderr, "[harness] network namespace %s: running %s\n", name, strings.Join(args, " "))
	cmd := exec.Command("ip", append([]string{"netns", "exec", name}, args...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	// Ctrl-C reaches the child through the terminal's process group; a
	// SIGTERM to us is passed on.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	go func() {
		for s := range sigs {
			if s == syscall.SIGTERM {
				cmd.Process.Signal(s)
			}
		}
	}()
	err := cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	return 0, err
}

// cleanup kills what still runs in the namespace (only processes started
// inside it, by pid) and deletes it.
func cleanup(name string) {
	for i := 0; i < 3; i++ {
		out, _ := exec.Command("ip", "netns", "pids", name).Output()
		pids := strings.Fields(string(out))
		if len(pids) == 0 {
			break
		}
		sig := syscall.SIGTERM
		if i > 0 {
			sig = syscall.SIGKILL
		}
		for _, p := range pids {
			if pid, err := strconv.Atoi(p); err == nil {
				syscall.Kill(pid, sig)
			}
		}
		time.Sleep(2 * time.Second)
	}
	if out, err := exec.Command("ip", "netns", "delete", name).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "[harness] ip netns delete %s: %v: %s\n", name, err, out)
		return
	}
	fmt.Fprintf(os.Stderr, "[harness] network namespace %s deleted\n", name)
}

// crashTag is the tag of stack.CrashImage.
func crashTag() string {
	_, tag, _ := strings.Cut(stack.CrashImage[strings.LastIndex(stack.CrashImage, "/"):], ":")
	return tag
}

// demo starts the stack with the demo repo and chats (or just waits).
func demo(args []string, chat bool) error {
	fs := flag.NewFlagSet("harness", flag.ExitOnError)
	bin := fs.String("bin", "", "tool binaries (the last line of deploy/local/build.sh)")
	shipbot := fs.String("shipbot", "bin/shipbot", "shipbot binary")
	as := fs.String("as", "alice", "who you are in the chat")
	work := fs.String("work", "", "work directory (default: a new temp dir)")
	keep := fs.Bool("keep", false, "keep the work directory")
	fs.Parse(args)
	if *bin == "" {
		return errors.New("-bin is required")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir := *work
	if dir == "" {
		d, err := os.MkdirTemp("", "shipbot-argocd-demo-")
		if err != nil {
			return err
		}
		dir = d
		if !*keep {
			defer os.RemoveAll(dir)
		}
	}
	sb, err := filepath.Abs(*shipbot)
	if err != nil {
		return err
	}
	d, err := stack.SetupDemo(ctx, sb, filepath.Join(dir, "demo"))
	if err != nil {
		return err
	}
	imgs, err := stack.DemoImages(ctx, d.Repo)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "[harness] starting the registry, etcd, kube-apiserver, kube-controller-manager, kube-scheduler, containerd, kubelet, redis and Argo CD 2.14 (~40 s)...\n")
	s, err := stack.Start(ctx, stack.Options{BinDir: *bin, WorkDir: filepath.Join(dir, "stack"), RepoPath: d.Repo, Apps: stack.DemoApps(), Images: imgs, Log: os.Stderr})
	if err != nil {
		return err
	}
	defer s.Stop()
	if err := d.WriteConfig(s, "3m"); err != nil {
		return err
	}
	if pods, err := s.Pods(ctx); err == nil {
		fmt.Fprintf(os.Stderr, "[harness] %d pods on node %s:\n", len(pods), stack.NodeName)
		for _, p := range pods {
			fmt.Fprintf(os.Stderr, "          %s\n", p)
		}
	}
	if !chat {
		fmt.Fprintf(os.Stderr, "[harness] up: config %s, Argo CD %s (admin token only in the harness); Ctrl-C stops\n", d.Config, stack.ArgoURL)
		<-ctx.Done()
		return nil
	}
	fmt.Fprintf(os.Stderr, `[harness] Argo CD %s syncs %s (9 apps: checkout, payments, search x dev, staging, prod;
          prod has no automated sync: shipbot syncs it), each a real pod on node %s. Try:
            rollback checkout dev to 1.4.1
            yes
            /as bob
            restart payments staging
            yes
            rollback search dev to does-not-exist     (no such image: ImagePullBackOff)
            yes, deploy does-not-exist
            rollback %s dev to %s     (crash-loops)
          and watch shipbot report Synced and Healthy, or the failing pod. Ctrl-D ends the demo and stops the stack.
`, stack.ArgoURL, d.Repo, stack.NodeName, "payments", crashTag())
	cmd := exec.CommandContext(ctx, sb, "chat", "--config", d.Config, "--as", *as)
	cmd.Stdin, cmd.Stdout = os.Stdin, os.Stdout
	logf, err := os.Create(filepath.Join(d.Dir, "shipbot.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd.Stderr = logf
	fmt.Fprintf(os.Stderr, "[harness] shipbot log: %s\n", logf.Name())
	if err := cmd.Run(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("shipbot chat: %w", err)
	}
	return nil
}
