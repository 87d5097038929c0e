package stack

// The node: kube-scheduler, containerd (+ runc, Debian's CNI plugins) and
// a kubelet, so the demo apps run real pods and "Healthy" means rolled out.
// Images come from a registry on 127.0.0.1:5000 served in this process
// (deploy/local/images).
//
// Everything the node writes stays under WorkDir. The stack runs in the
// harness's namespaces (`ip netns exec`: a network namespace and a private
// mount namespace with a fresh /sys), which the node relies on:
//   - the cgroup v1 hierarchies are mounted again under the fresh /sys
//     (a tmpfs on /sys/fs/cgroup plus one mount per hierarchy, as the host
//     has them); pods go under a cgroup root of their own
//     (/shipbot-e2e-PID/kubepods/...), removed on Stop;
//   - the paths the kubelet, containerd and the CNI plugins hard-code
//     (/var/lib/kubelet for device-plugins, /var/log/containers,
//     /var/lib/cni, /run/containerd for shim sockets) are bind mounts of
//     WorkDir/host/... in the private mount namespace: the host never sees
//     them, and two stacks never share them;
//   - the node IP is a veth pair inside the network namespace (the kubelet
//     refuses a loopback node IP, and the kernel has no dummy links), gone
//     with the namespace.
// Stop deletes the workloads, kills what is left of the containers (by
// cgroup) and containerd's shims (by their -address), unmounts what is
// mounted under WorkDir and removes the cgroups.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/shipbot/shipbot/deploy/local/images"
)

// Fixed node settings inside the namespace.
const (
	NodeName     = "shipbot-e2e"
	NodeIP       = "10.99.0.1"
	PodCIDR      = "10.88.0.0/24"
	RegistryAddr = "127.0.0.1:5000"
	// PauseImage is containerd's sandbox image (built like the others:
	// registry.k8s.io is out of reach).
	PauseImage = RegistryAddr + "/pause:3.10"
)

// hostPaths are hard-coded by the kubelet, containerd and libcni; each is a
// bind mount of a directory under WorkDir/host in the private mount
// namespace.
var hostPaths = []string{"/var/lib/kubelet", "/var/log/containers", "/var/lib/cni", "/run/containerd"}

// node is what the node set up, for Stop to take down.
type node struct {
	cgroup   string   // the pods' cgroup root, e.g. /shipbot-e2e-1234
	cgroups  []string // that root in every hierarchy (/sys/fs/cgroup/cpu/shipbot-e2e-1234)
	mounts   []string // mounts made outside WorkDir, in order
	created  []string // host directories made as mount points
	registry *images.Registry
	started  bool // containerd or kubelet started
}

// startRegistry serves the registry and pushes the pause image and
// o.Images.
func (s *Stack) startRegistry(ctx context.Context) error {
	t0 := time.Now()
	r, err := images.Serve(RegistryAddr, s.path("registry"))
	if err != nil {
		return err
	}
	s.node.registry = r
	imgs := append([]images.Image{{Ref: PauseImage, Args: []string{"-pause"}}}, s.o.Images...)
	if err := r.Push(ctx, filepath.Join(s.o.BinDir, "app"), imgs); err != nil {
		return err
	}
	s.logf("registry %s: %d images pushed in %s", r.Addr, len(imgs), time.Since(t0).Round(100*time.Millisecond))
	return nil
}

// startNode prepares cgroups, host paths and the node IP, then starts
// containerd and the kubelet and waits until the node is Ready and
// schedulable.
func (s *Stack) startNode(ctx context.Context) error {
	t0 := time.Now()
	if err := s.prepareHost(); err != nil {
		return err
	}
	if err := s.nodeFiles(); err != nil {
		return err
	}
	s.node.started = true
	if err := s.spawn("containerd", procSpec{bin: "containerd", args: []string{"--config", s.path("containerd/config.toml")}}); err != nil {
		return err
	}
	if err := s.waitFile(ctx, "containerd", s.path("containerd/containerd.sock")); err != nil {
		return err
	}
	if err := s.spawn("kubelet", procSpec{bin: filepath.Join(s.o.BinDir, "kubelet"), args: []string{
		"--config=" + s.path("kubelet/config.yaml"), "--kubeconfig=" + s.path("kubeconfig"),
		"--root-dir=" + s.path("kubelet/root"), "--hostname-override=" + NodeName, "--node-ip=" + NodeIP,
	}}); err != nil {
		return err
	}
	if err := s.waitNode(ctx); err != nil {
		return err
	}
	s.logf("node %s Ready and schedulable in %s", NodeName, time.Since(t0).Round(100*time.Millisecond))
	return nil
}

// prepareHost checks the namespaces, mounts the cgroup hierarchies, makes
// the pods' cgroup root, bind-mounts the hard-coded host paths and adds the
// node IP.
func (s *Stack) prepareHost() error {
	for _, kind := range []string{"mnt", "net"} {
		if same, err := sameNS(kind); err != nil || same {
			return fmt.Errorf("stack: the node needs a private mount and network namespace: run under `harness netns` (ip netns exec); %s namespace: %v", kind, orShared(err))
		}
	}
	if err := s.mountCgroups(); err != nil {
		return err
	}
	s.node.cgroup = fmt.Sprintf("/shipbot-e2e-%d", os.Getpid())
	for _, h := range cgroupMounts() {
		d := filepath.Join(h, s.node.cgroup)
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("stack: cgroup %s: %w", d, err)
		}
		s.node.cgroups = append(s.node.cgroups, d)
		// A new cpuset cgroup starts with no cpus and mems.
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			if b, err := os.ReadFile(filepath.Join(h, f)); err == nil {
				os.WriteFile(filepath.Join(d, f), b, 0o644)
			}
		}
	}
	for _, p := range hostPaths {
		src := s.path("host", strings.ReplaceAll(strings.TrimPrefix(p, "/"), "/", "_"))
		if err := os.MkdirAll(src, 0o755); err != nil {
			return err
		}
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			top := p // the first missing directory: removed again on Stop
			for {
				parent := filepath.Dir(top)
				if _, err := os.Stat(parent); err == nil {
					break
				}
				top = parent
			}
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
			s.node.created = append(s.node.created, top)
		}
		if err := syscall.Mount(src, p, "", syscall.MS_BIND, ""); err != nil {
			return fmt.Errorf("stack: bind %s on %s: %w", src, p, err)
		}
		s.node.mounts = append(s.node.mounts, p)
	}
	for _, args := range [][]string{
		{"link", "add", "shipbot-node", "type", "veth", "peer", "name", "shipbot-peer"},
		{"addr", "add", NodeIP + "/24", "dev", "shipbot-node"},
		{"link", "set", "shipbot-node", "up"},
		{"link", "set", "shipbot-peer", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("stack: ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	s.logf("host: cgroup root %s in %d hierarchies, %s bound under %s, node IP %s", s.node.cgroup, len(s.node.cgroups), strings.Join(hostPaths, " "), s.path("host"), NodeIP)
	return nil
}

// sameNS reports whether this process shares namespace kind with its
// parent (the harness, or the shell that ran `ip netns exec`: PID 1's may
// not be readable).
func sameNS(kind string) (bool, error) {
	a, err := os.Readlink("/proc/self/ns/" + kind)
	if err != nil {
		return false, err
	}
	b, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", os.Getppid(), kind))
	if err != nil {
		return false, err
	}
	return a == b, nil
}

func orShared(err error) string {
	if err != nil {
		return err.Error()
	}
	return "shared with the parent process"
}

// mountCgroups mounts the host's cgroup hierarchies (as the parent
// process's mount namespace has them) when /sys/fs/cgroup is empty, as it
// is under `ip netns exec`.
func (s *Stack) mountCgroups() error {
	if len(cgroupMounts()) > 0 {
		return nil
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/mountinfo", os.Getppid()))
	if err != nil {
		return err
	}
	defer f.Close()
	type hier struct{ dir, fstype, opts string }
	var hs []hier
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		mi, ok := parseMountinfo(sc.Text())
		if !ok || !strings.HasPrefix(mi.point, "/sys/fs/cgroup/") || (mi.fstype != "cgroup" && mi.fstype != "cgroup2") {
			continue
		}
		var opts []string
		if mi.fstype == "cgroup" {
			for _, o := range strings.Split(mi.super, ",") {
				if o != "rw" && o != "ro" {
					opts = append(opts, o)
				}
			}
		}
		hs = append(hs, hier{mi.point, mi.fstype, strings.Join(opts, ",")})
	}
	if len(hs) == 0 {
		return errors.New("stack: no cgroup hierarchies in the parent process's mountinfo")
	}
	if err := syscall.Mount("tmpfs", "/sys/fs/cgroup", "tmpfs", 0, "mode=755"); err != nil {
		return fmt.Errorf("stack: tmpfs on /sys/fs/cgroup: %w", err)
	}
	s.node.mounts = append(s.node.mounts, "/sys/fs/cgroup")
	for _, h := range hs {
		if err := os.MkdirAll(h.dir, 0o755); err != nil {
			return err
		}
		if err := syscall.Mount(h.fstype, h.dir, h.fstype, 0, h.opts); err != nil {
			return fmt.Errorf("stack: mount %s (%s): %w", h.dir, h.opts, err)
		}
		s.node.mounts = append(s.node.mounts, h.dir)
	}
	return nil
}

// cgroupMounts are the cgroup hierarchies mounted in this mount namespace.
func cgroupMounts() []string {
	var out []string
	for _, mi := range mountinfo() {
		if mi.fstype == "cgroup" || mi.fstype == "cgroup2" {
			out = append(out, mi.point)
		}
	}
	return out
}

type mountEntry struct{ point, fstype, super string }

func mountinfo() []mountEntry {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []mountEntry
	for _, l := range strings.Split(string(b), "\n") {
		if mi, ok := parseMountinfo(l); ok {
			out = append(out, mi)
		}
	}
	return out
}

// parseMountinfo reads "36 35 98:0 /root /mnt opts ... - fstype source super".
func parseMountinfo(l string) (mountEntry, bool) {
	pre, post, ok := strings.Cut(l, " - ")
	f, g := strings.Fields(pre), strings.Fields(post)
	if !ok || len(f) < 5 || len(g) < 3 {
		return mountEntry{}, false
	}
	return mountEntry{point: unescapeMount(f[4]), fstype: g[0], super: g[2]}, true
}

func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// nodeFiles writes containerd's config and hosts.toml files, the CNI
// conflist and the kubelet's config.
func (s *Stack) nodeFiles() error {
	for _, d := range []string{"containerd/root", "containerd/state", "containerd/runc", "containerd/opt", "cni/net.d", "cni/networks", "kubelet/root", "kubelet/pod-logs"} {
		if err := os.MkdirAll(s.path(d), 0o700); err != nil {
			return err
		}
	}
	// Images keep their names: every registry they name is served here.
	hosts := map[string]bool{RegistryAddr: true}
	for _, im := range s.o.Images {
		if h, _, ok := strings.Cut(im.Ref, "/"); ok && h+"/"+images.Path(im.Ref) == im.Ref {
			hosts[h] = true
		}
	}
	for h := range hosts {
		d := s.path("containerd/certs.d", h)
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
		// containerd 1.6 refuses a hosts.toml without a host section.
		toml := fmt.Sprintf("# %s is served by the stack's local registry.\nserver = \"http://%s\"\n\n[host.\"http://%s\"]\n  capabilities = [\"pull\", \"resolve\"]\n", h, RegistryAddr, RegistryAddr)
		if err := os.WriteFile(filepath.Join(d, "hosts.toml"), []byte(toml), 0o644); err != nil {
			return err
		}
	}
	containerd := fmt.Sprintf(`# containerd for the local stack's node (deploy/local/stack/node.go).
version = 2
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]

[grpc]
  address = %[3]q

[plugins."io.containerd.internal.v1.opt"]
  path = %[4]q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[5]q
  # root here has no CAP_SYS_RESOURCE: runc can't set the sandbox's oom_score_adj otherwise.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %[6]q

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = %[7]q

  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = %[8]q
`, s.path("containerd/root"), s.path("containerd/state"), s.path("containerd/containerd.sock"), s.path("containerd/opt"),
		PauseImage, s.path("cni/net.d"), s.path("containerd/runc"), s.path("containerd/certs.d"))
	if err := os.WriteFile(s.path("containerd/config.toml"), []byte(containerd), 0o644); err != nil {
		return err
	}
	cni, _ := json.MarshalIndent(map[string]any{
		"cniVersion": "0.4.0",
		"name":       "shipbot-e2e",
		"plugins": []any{
			map[string]any{
				"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
				"ipam": map[string]any{
					"type": "host-local", "dataDir": s.path("cni/networks"),
					"ranges": [][]map[string]string{{{"subnet": PodCIDR}}},
					"routes": []map[string]string{{"dst": "0.0.0.0/0"}},
				},
			},
			map[string]any{"type": "loopback"},
		},
	}, "", "  ")
	if err := os.WriteFile(s.path("cni/net.d/10-shipbot.conflist"), cni, 0o644); err != nil {
		return err
	}
	kubelet := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
containerRuntimeEndpoint: unix://%[1]s
cgroupDriver: cgroupfs
cgroupRoot: %[2]s
failSwapOn: false
failCgroupV1: false
makeIPTablesUtilChains: false
resolvConf: ""
podLogsDir: %[3]s
serializeImagePulls: false
nodeStatusUpdateFrequency: 4s
evictionHard: {memory.available: "1Mi", nodefs.available: "1%%", nodefs.inodesFree: "1%%", imagefs.available: "1%%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
maxPods: 60
`, s.path("containerd/containerd.sock"), s.node.cgroup, s.path("kubelet/pod-logs"))
	return os.WriteFile(s.path("kubelet/config.yaml"), []byte(kubelet), 0o644)
}

// waitFile waits until path exists (a daemon's socket).
func (s *Stack) waitFile(ctx context.Context, name, path string) error {
	start := time.Now()
	for {
		if _, err := os.Stat(path); err == nil {
			s.logf("%s ready in %s", name, time.Since(start).Round(100*time.Millisecond))
			return nil
		}
		if e := s.exited(name); e != nil {
			return e
		}
		if time.Since(start) > s.o.Ready {
			return fmt.Errorf("stack: %s: no %s after %s; last log lines:\n%s", name, path, s.o.Ready, s.tail(name, 15))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitNode waits until the node is Ready and its not-ready taint is gone
// (KCM's node-lifecycle-controller removes it).
func (s *Stack) waitNode(ctx context.Context) error {
	start := time.Now()
	last := "not registered"
	for {
		b, err := s.Kube(ctx, http.MethodGet, "/api/v1/nodes/"+NodeName, "", nil)
		if err == nil {
			var n struct {
				Spec struct {
					Taints []struct {
						Key string `json:"key"`
					} `json:"taints"`
				} `json:"spec"`
				Status struct {
					Conditions []struct {
						Type    string `json:"type"`
						Status  string `json:"status"`
						Message string `json:"message"`
					} `json:"conditions"`
				} `json:"status"`
			}
			if err := json.Unmarshal(b, &n); err != nil {
				return err
			}
			ready := false
			for _, c := range n.Status.Conditions {
				if c.Type == "Ready" {
					ready = c.Status == "True"
					last = "Ready=" + c.Status + ": " + c.Message
				}
			}
			var taints []string
			for _, t := range n.Spec.Taints {
				taints = append(taints, t.Key)
			}
			if ready && len(taints) == 0 {
				return nil
			}
			if ready {
				last = "tainted " + strings.Join(taints, ",")
			}
		}
		for _, p := range []string{"kubelet", "containerd", "kube-scheduler"} {
			if e := s.exited(p); e != nil {
				return e
			}
		}
		if time.Since(start) > s.o.Ready {
			return fmt.Errorf("stack: node %s not Ready and schedulable after %s (%s); kubelet's last log lines:\n%s", NodeName, s.o.Ready, last, s.tail("kubelet", 15))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// systemNamespaces are kept when the workloads are deleted.
var systemNamespaces = map[string]bool{"default": true, "kube-system": true, "kube-public": true, "kube-node-lease": true, Namespace: true}

// drainPods deletes every namespace but the system ones and Argo CD's,
// and waits until no pod is left (the kubelet stops their containers and
// sandboxes first).
func (s *Stack) drainPods(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	b, err := s.Kube(ctx, http.MethodGet, "/api/v1/namespaces", "", nil)
	if err != nil {
		return err
	}
	var list struct {
		Items []struct {
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		} `json:"items"`
	}
	if err := json.Unmarshal(b, &list); err != nil {
		return err
	}
	for _, ns := range list.Items {
		if n := ns.Metadata.Name; !systemNamespaces[n] {
			if _, err := s.Kube(ctx, http.MethodDelete, "/api/v1/namespaces/"+url.PathEscape(n), "", nil); err != nil {
				s.logf("delete namespace %s: %v", n, err)
			}
		}
	}
	for {
		b, err := s.Kube(ctx, http.MethodGet, "/api/v1/pods", "", nil)
		if err == nil {
			var pods struct {
				Items []json.RawMessage `json:"items"`
			}
			if json.Unmarshal(b, &pods) == nil && len(pods.Items) == 0 {
				return nil
			}
			if ctx.Err() != nil {
				return fmt.Errorf("%d pods left after %s", len(pods.Items), timeout)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// stopNode takes the node down: the workloads, the kubelet, what is left
// of the containers, containerd and its shims, the mounts under WorkDir,
// the cgroups, the bind mounts and the directories made for them.
func (s *Stack) stopNode() {
	if s.node.started {
		if s.running("kube-apiserver") && s.running("kubelet") {
			t0 := time.Now()
			if err := s.drainPods(45 * time.Second); err != nil {
				s.logf("pods not drained: %v (killed below)", err)
			} else {
				s.logf("pods drained in %s", time.Since(t0).Round(100*time.Millisecond))
			}
		}
		s.stopNamed("kubelet")
		if n := s.killCgroupProcs(); n > 0 {
			s.logf("killed %d container processes left in %s", n, s.node.cgroup)
		}
		s.stopNamed("containerd")
		if n := s.shims(true); n > 0 {
			s.logf("killed %d containerd shims", n)
		}
		s.unmountUnder(s.o.WorkDir)
	}
	s.removeCgroups()
	for i := len(s.node.mounts) - 1; i >= 0; i-- {
		if err := syscall.Unmount(s.node.mounts[i], syscall.MNT_DETACH); err != nil {
			s.logf("unmount %s: %v", s.node.mounts[i], err)
		}
	}
	s.node.mounts = nil
	for _, d := range s.node.created {
		if err := os.Remove(d); err != nil {
			s.logf("remove %s: %v", d, err)
		}
	}
	if s.node.registry != nil {
		s.node.registry.Close()
		s.node.registry = nil
	}
}

func (s *Stack) running(name string) bool {
	s.mu.Lock()
	p := s.procs[name]
	s.mu.Unlock()
	if p == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stopNamed stops one process if it was started.
func (s *Stack) stopNamed(name string) {
	s.mu.Lock()
	p := s.procs[name]
	s.mu.Unlock()
	if p != nil {
		s.kill(p)
	}
}

// killCgroupProcs SIGKILLs every process under the pods' cgroup root.
func (s *Stack) killCgroupProcs() int {
	killed := map[int]bool{}
	for _, root := range s.node.cgroups {
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
				return nil
			}
			b, _ := os.ReadFile(p)
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil && !killed[pid] && pid != os.Getpid() {
					syscall.Kill(pid, syscall.SIGKILL)
					killed[pid] = true
				}
			}
			return nil
		})
	}
	return len(killed)
}

// shims counts (and with kill, SIGKILLs) the containerd shims started by
// this stack's containerd (their command line names its socket).
func (s *Stack) shims(kill bool) int {
	addr := s.path("containerd/containerd.sock")
	n := 0
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) == 0 || !strings.HasPrefix(filepath.Base(args[0]), "containerd-shim") {
			continue
		}
		for _, a := range args {
			if a == addr {
				if kill {
					syscall.Kill(pid, syscall.SIGKILL)
				}
				n++
				break
			}
		}
	}
	return n
}

// unmountUnder unmounts every mount below dir, deepest first.
func (s *Stack) unmountUnder(dir string) {
	var points []string
	for _, mi := range mountinfo() {
		if strings.HasPrefix(mi.point, dir+"/") {
			points = append(points, mi.point)
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			s.logf("unmount %s: %v", p, err)
		}
	}
	if len(points) > 0 {
		s.logf("unmounted %d mounts under %s", len(points), dir)
	}
}

// removeCgroups removes the pods' cgroup root in every hierarchy, deepest
// first, killing what still runs in it.
func (s *Stack) removeCgroups() {
	deadline := time.Now().Add(10 * time.Second)
	for _, root := range s.node.cgroups {
		for {
			var dirs []string
			filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					dirs = append(dirs, p)
				}
				return nil
			})
			sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
			var err error
			for _, d := range dirs {
				if e := syscall.Rmdir(d); e != nil && !errors.Is(e, syscall.ENOENT) {
					err = fmt.Errorf("%s: %w", d, e)
				}
			}
			if err == nil || time.Now().After(deadline) {
				if err != nil {
					s.logf("cgroup left: %v", err)
				}
				break
			}
			s.killCgroupProcs()
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// Leftovers lists what a stopped stack left behind, as this process sees
// it and as its parent (the harness, in the host's mount namespace) does:
// processes, containerd shims, mounts, cgroups, host directories. Empty
// after a clean Stop.
func (s *Stack) Leftovers() []string {
	var out []string
	s.mu.Lock()
	for name, p := range s.procs {
		select {
		case <-p.done:
		default:
			out = append(out, fmt.Sprintf("process %s (pid %d)", name, p.cmd.Process.Pid))
		}
	}
	s.mu.Unlock()
	if n := s.shims(false); n > 0 {
		out = append(out, fmt.Sprintf("%d containerd shims", n))
	}
	ours := func(point string) bool {
		if strings.HasPrefix(point, s.o.WorkDir+"/") {
			return true
		}
		for _, p := range append([]string{"/sys/fs/cgroup"}, hostPaths...) {
			if point == p && s.node.started {
				return true
			}
		}
		return false
	}
	for _, mi := range mountinfo() {
		if ours(mi.point) && mi.fstype != "sysfs" {
			out = append(out, "mount "+mi.point)
		}
	}
	host := fmt.Sprintf("/proc/%d", os.Getppid())
	if b, err := os.ReadFile(host + "/mountinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if mi, ok := parseMountinfo(l); ok && strings.HasPrefix(mi.point, s.o.WorkDir+"/") {
				out = append(out, "host mount "+mi.point)
			}
		}
	}
	for _, d := range append(append([]string(nil), s.node.cgroups...), s.node.created...) {
		if _, err := os.Stat(filepath.Join(host, "root", d)); err == nil {
			out = append(out, "host path "+d)
		}
	}
	return out
}

// Pods describes the workloads' pods, one line each: namespace/name, the
// images their containers run, phase and readiness.
func (s *Stack) Pods(ctx context.Context) ([]string, error) {
	b, err := s.Kube(ctx, http.MethodGet, "/api/v1/pods", "", nil)
	if err != nil {
		return nil, err
	}
	var list struct {
		Items []struct {
			Metadata struct {
				Namespace string `json:"namespace"`
				Name      string `json:"name"`
			} `json:"metadata"`
			Status struct {
				Phase             string `json:"phase"`
				PodIP             string `json:"podIP"`
				ContainerStatuses []struct {
					Image string `json:"image"`
					Ready bool   `json:"ready"`
				} `json:"containerStatuses"`
			} `json:"status"`
		} `json:"items"`
	}
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, err
	}
	var out []string
	for _, p := range list.Items {
		var imgs []string
		ready := 0
		for _, c := range p.Status.ContainerStatuses {
			imgs = append(imgs, c.Image)
			if c.Ready {
				ready++
			}
		}
		out = append(out, fmt.Sprintf("%s/%s %s %s %d/%d ready, IP %s", p.Metadata.Namespace, p.Metadata.Name,
			strings.Join(imgs, ","), p.Status.Phase, ready, len(imgs), p.Status.PodIP))
	}
	sort.Strings(out)
	return out, nil
}
