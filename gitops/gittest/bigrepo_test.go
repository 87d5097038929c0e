package gittest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

var smallBigRepo = BigRepoOptions{Apps: 30, Commits: 300, Seed: 7}

// catFile reads the objects named by revs ("main:path", hashes) with one
// git cat-file --batch; a missing object fails the test.
func catFile(t *testing.T, dir string, revs []string) [][]byte {
	t.Helper()
	cmd := exec.Command("git", "cat-file", "--batch")
	cmd.Dir = dir
	cmd.Env = Env(os.TempDir())
	cmd.Stdin = strings.NewReader(strings.Join(revs, "\n") + "\n")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("git cat-file: %v: %s", err, stderr.String())
	}
	r := bufio.NewReader(&stdout)
	out := make([][]byte, len(revs))
	for i, rev := range revs {
		header, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("git cat-file %s: %v", rev, err)
		}
		f := strings.Fields(header)
		if len(f) != 3 {
			t.Fatalf("git cat-file %s: %q", rev, header)
		}
		n, _ := strconv.Atoi(f[2])
		out[i] = make([]byte, n+1) // content and LF
		if _, err := io.ReadFull(r, out[i]); err != nil {
			t.Fatal(err)
		}
		out[i] = out[i][:n]
	}
	return out
}

// parseYAMLDocs parses every document of a YAML file; each must be a mapping.
func parseYAMLDocs(data []byte) ([]map[string]any, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []map[string]any
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if doc == nil {
			return nil, errors.New("empty document")
		}
		docs = append(docs, doc)
	}
}

// tagIn reads a's tag from the content of a.File(), the way a YAML reader
// (not the generator) sees it.
func tagIn(a BigApp, data []byte) (string, error) {
	docs, err := parseYAMLDocs(data)
	if err != nil {
		return "", err
	}
	var found []string
	for _, doc := range docs {
		switch a.Layout {
		case "kustomize":
			images, _ := doc["images"].([]any)
			for _, it := range images {
				if m, _ := it.(map[string]any); m["name"] == a.Image {
					tag, _ := m["newTag"].(string)
					found = append(found, tag)
				}
			}
		case "helm":
			img, _ := doc["image"].(map[string]any)
			if img["repository"] == a.Image {
				tag, _ := img["tag"].(string)
				found = append(found, tag)
			}
		case "manifest":
			if doc["kind"] != "Deployment" {
				continue
			}
			spec, _ := doc["spec"].(map[string]any)
			tmpl, _ := spec["template"].(map[string]any)
			pod, _ := tmpl["spec"].(map[string]any)
			containers, _ := pod["containers"].([]any)
			for _, c := range containers {
				img, _ := c.(map[string]any)["image"].(string)
				if tag, ok := strings.CutPrefix(img, a.Image+":"); ok {
					found = append(found, tag)
				}
			}
		}
	}
	if len(found) != 1 || found[0] == "" {
		return "", fmt.Errorf("found tags %q of %s", found, a.Image)
	}
	return found[0], nil
}

func TestBigRepo(t *testing.T) {
	o := smallBigRepo
	dir := filepath.Join(t.TempDir(), "env.git")
	start := time.Now()
	apps := BigRepo(t, dir, o)
	t.Logf("generated %d apps x 3 envs, %d commits in %v", o.Apps, o.Commits, time.Since(start))

	if got := Git(t, dir, "rev-list", "--count", "main"); got != strconv.Itoa(o.Commits+1) {
		t.Errorf("rev-list --count main = %s, want %d", got, o.Commits+1)
	}
	if got := Git(t, dir, "symbolic-ref", "HEAD"); got != "refs/heads/main" {
		t.Errorf("HEAD = %s", got)
	}
	if got := Git(t, dir, "config", "http.receivepack"); got != "true" {
		t.Errorf("http.receivepack = %q", got)
	}
	if got := Git(t, dir, "count-objects", "-v"); !strings.Contains(got, "packs: 1\n") {
		t.Errorf("not repacked into one pack:\n%s", got)
	}
	Git(t, dir, "fsck", "--strict", "--no-progress")

	if len(apps) != 3*o.Apps {
		t.Fatalf("%d apps, want %d", len(apps), 3*o.Apps)
	}
	layouts := map[string]int{}
	byFile := map[string]BigApp{}
	for i, a := range apps {
		wantName := fmt.Sprintf("app%04d", i/3)
		wantLayout := [...]string{"kustomize", "helm", "manifest"}[i/3%3]
		if a.Name != wantName || a.Env != bigEnvs[i%3] || a.Layout != wantLayout {
			t.Errorf("apps[%d] = %s/%s/%s, want %s/%s/%s", i, a.Name, a.Env, a.Layout, wantName, bigEnvs[i%3], wantLayout)
		}
		if !strings.HasPrefix(a.Image, "registry.example.com/team") || !strings.HasSuffix(a.Image, "/"+a.Name) {
			t.Errorf("%s: image %s", a.Name, a.Image)
		}
		layouts[a.Layout]++
		byFile[a.File()] = a
	}
	if layouts["kustomize"] != 30 || layouts["helm"] != 30 || layouts["manifest"] != 30 {
		t.Errorf("layouts: %v", layouts)
	}

	// Tag and PrevTag against the repo.
	var revs []string
	var mainAt, prevAt []int // indexes in revs of each app's versions; prevAt -1 if none
	for _, a := range apps {
		mainAt = append(mainAt, len(revs))
		revs = append(revs, "main:"+a.File())
		log := strings.Fields(Git(t, dir, "log", "-2", "--format=%H", "main", "--", a.File()))
		switch len(log) {
		case 1:
			prevAt = append(prevAt, -1)
		case 2:
			prevAt = append(prevAt, len(revs))
			revs = append(revs, log[1]+":"+a.File())
		default:
			t.Fatalf("%s: log %v", a.File(), log)
		}
	}
	contents := catFile(t, dir, revs)
	changed := 0
	for i, a := range apps {
		tag, err := tagIn(a, contents[mainAt[i]])
		if err != nil {
			t.Errorf("%s at main: %v", a.File(), err)
		} else if tag != a.Tag {
			t.Errorf("%s %s: tag at main %q, BigApp.Tag %q", a.Name, a.Env, tag, a.Tag)
		}
		prev := ""
		if prevAt[i] >= 0 {
			changed++
			if prev, err = tagIn(a, contents[prevAt[i]]); err != nil {
				t.Errorf("%s before main: %v", a.File(), err)
			}
		}
		if prev != a.PrevTag {
			t.Errorf("%s %s: tag before the last change %q, BigApp.PrevTag %q", a.Name, a.Env, prev, a.PrevTag)
		}
		if a.PrevTag == a.Tag {
			t.Errorf("%s %s: PrevTag = Tag = %s", a.Name, a.Env, a.Tag)
		}
	}
	if changed < len(apps)/2 {
		t.Errorf("only %d of %d targets changed after the bootstrap", changed, len(apps))
	}

	// Every version of every YAML file parses.
	var blobs []string
	var names []string
	for _, line := range strings.Split(Git(t, dir, "rev-list", "--objects", "--all"), "\n") {
		hash, name, _ := strings.Cut(line, " ")
		if strings.HasSuffix(name, ".yaml") {
			blobs, names = append(blobs, hash), append(names, name)
		}
	}
	var all bytes.Buffer
	for i, data := range catFile(t, dir, blobs) {
		if _, err := parseYAMLDocs(data); err != nil {
			t.Errorf("%s (%s): %v\n%s", names[i], blobs[i], err, data)
		}
		all.Write(data)
		all.WriteString("\x00")
	}
	if len(blobs) < 3*o.Apps+o.Commits {
		t.Errorf("only %d YAML blobs", len(blobs))
	}
	// The styles vary.
	for _, s := range []string{
		"\x00---\n", "\nimages:\n- name: ", "\nimages:\n  - name: ", "  newTag: \"", "  newTag: '", "- newTag: ",
		"\n    repository: ", "\n  repository: ", "  tag: \"", "\npodAnnotations: {}\n", "labels: {app: ", "\n      labels:\n        app: ",
		"# set by shipbot", "\n      - name: ", "\n        - name: ", "image: \"registry.example.com/",
	} {
		if !bytes.Contains(all.Bytes(), []byte(s)) {
			t.Errorf("no file has %q", s)
		}
	}

	// History: one file per deploy commit, increasing committer dates,
	// trailers on about a third, matching the file changed.
	out := Git(t, dir, "log", "--reverse", "--format=%x01%ct%x02%an <%ae>%x02%cn%x02%B%x02", "--name-only", "main")
	commits := strings.Split(out, "\x01")[1:]
	if len(commits) != o.Commits+1 {
		t.Fatalf("%d commits in the log", len(commits))
	}
	var last int64
	authors := map[string]bool{}
	trailered, rollbacks := 0, 0
	for i, c := range commits {
		f := strings.Split(c, "\x02")
		when, _ := strconv.ParseInt(f[0], 10, 64)
		if when <= last {
			t.Errorf("commit %d: committer date %d not after %d", i, when, last)
		}
		last = when
		files := strings.Fields(f[4])
		if i == 0 {
			if len(files) < 3*o.Apps {
				t.Errorf("bootstrap commit has %d files", len(files))
			}
			continue
		}
		authors[f[1]] = true
		if len(files) != 1 {
			t.Fatalf("commit %d changes %v", i, files)
		}
		a, ok := byFile[files[0]]
		if !ok {
			t.Fatalf("commit %d changes %s, no app's file", i, files[0])
		}
		msg := f[3]
		tr := trailers(msg)
		if tr["Shipbot-Request"] == "" {
			if f[2] == "shipbot" || !strings.HasPrefix(msg, "deploy "+a.Name+" ") || !strings.Contains(firstLineOf(msg), " to "+a.Env) {
				t.Errorf("commit %d (%s, committer %s): %q", i, files[0], f[2], msg)
			}
			continue
		}
		trailered++
		if tr["Shipbot-Action"] == "rollback" {
			rollbacks++
		}
		if f[2] != "shipbot" || tr["Shipbot-App"] != a.Name || tr["Shipbot-Env"] != a.Env ||
			(tr["Shipbot-Action"] != "promote" && tr["Shipbot-Action"] != "rollback") ||
			len(tr["Shipbot-Request"]) != len("shp-xxxxxxxxxx") || f[1] != tr["Requested-by"] {
			t.Errorf("commit %d (%s): author %s, committer %s, trailers %v", i, files[0], f[1], f[2], tr)
		}
	}
	if trailered < o.Commits/5 || trailered > o.Commits/2 {
		t.Errorf("%d of %d commits have shipbot trailers, want about a third", trailered, o.Commits)
	}
	if rollbacks == 0 {
		t.Errorf("no rollbacks")
	}
	if len(authors) < 15 {
		t.Errorf("%d authors", len(authors))
	}

	// Deterministic for a seed.
	again := BigRepo(t, filepath.Join(t.TempDir(), "env.git"), o)
	if fmt.Sprint(again) != fmt.Sprint(apps) {
		t.Errorf("same seed, different apps")
	}
	o2 := o
	o2.Seed++
	other := filepath.Join(t.TempDir(), "env.git")
	BigRepo(t, other, o2)
	if Git(t, dir, "rev-parse", "main") == Git(t, other, "rev-parse", "main") {
		t.Errorf("seeds %d and %d give the same main", o.Seed, o2.Seed)
	}
}

func firstLineOf(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// trailers returns the "Key: value" lines of msg's last paragraph.
func trailers(msg string) map[string]string {
	out := map[string]string{}
	paras := strings.Split(strings.TrimSpace(msg), "\n\n")
	if len(paras) < 2 {
		return out
	}
	for _, line := range strings.Split(paras[len(paras)-1], "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok || strings.ContainsAny(k, " \t") {
			return map[string]string{}
		}
		out[k] = v
	}
	return out
}

func TestBigRepoDefaults(t *testing.T) {
	o := BigRepoOptions{}.withDefaults()
	if o.Apps != 1000 || o.Commits != 10000 {
		t.Errorf("defaults: %+v", o)
	}
	if o := (BigRepoOptions{Commits: -1}).withDefaults(); o.Commits != 0 {
		t.Errorf("Commits -1: %+v", o)
	}
	apps := BigRepo(t, filepath.Join(t.TempDir(), "env.git"), BigRepoOptions{Apps: 3, Commits: -1})
	for _, a := range apps {
		if a.PrevTag != "" {
			t.Errorf("%s %s: PrevTag %q without deploys", a.Name, a.Env, a.PrevTag)
		}
	}
}

func TestBigRepoCachedAndCopyBare(t *testing.T) {
	root := t.TempDir()
	o := BigRepoOptions{Apps: 6, Commits: 40, Seed: 3}
	name := fmt.Sprintf("shipbot-bigrepo-6-40-3-v%d.git", bigRepoFormat)

	// A leftover without a marker is not reused.
	final := filepath.Join(root, name)
	if err := os.MkdirAll(filepath.Join(final, "objects"), 0o755); err != nil {
		t.Fatal(err)
	}
	dir, apps := bigRepoCachedIn(t, root, o)
	if dir != final {
		t.Fatalf("dir %s, want %s", dir, final)
	}
	if _, err := os.Stat(filepath.Join(dir, bigMarker)); err != nil {
		t.Fatal(err)
	}
	main := Git(t, dir, "rev-parse", "main")
	if got := Git(t, dir, "rev-list", "--count", "main"); got != "41" {
		t.Errorf("%s commits", got)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 1 {
		t.Errorf("left behind in %s: %v", root, entries)
	}

	// Same process: the same repo, apps copied.
	apps[0].Tag = "changed"
	dir2, apps2 := bigRepoCachedIn(t, root, o)
	if dir2 != dir || apps2[0].Tag == "changed" {
		t.Errorf("second call: %s, %v", dir2, apps2[0])
	}
	// Another process: read back from the marker.
	bigCache.Lock()
	delete(bigCache.repos, final)
	bigCache.Unlock()
	_, apps3 := bigRepoCachedIn(t, root, o)
	if fmt.Sprint(apps3) != fmt.Sprint(apps2) {
		t.Errorf("apps from the marker differ")
	}
	if Git(t, dir, "rev-parse", "main") != main {
		t.Errorf("regenerated")
	}

	// A copy takes pushes over HTTP and leaves the original alone.
	cp := CopyBare(t, dir)
	if _, err := os.Stat(filepath.Join(cp, bigMarker)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("marker copied: %v", err)
	}
	Git(t, cp, "fsck", "--no-progress")
	url := Serve(t, filepath.Dir(cp)) + "/" + filepath.Base(cp)
	a := apps3[0]
	work := filepath.Join(t.TempDir(), "work")
	Git(t, "", "clone", "--quiet", url, work)
	file := filepath.Join(work, filepath.FromSlash(a.File()))
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, bytes.Replace(data, []byte(a.Tag), []byte("99.0.0"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	Git(t, work, "commit", "--quiet", "-am", "deploy "+a.Name+" 99.0.0 to "+a.Env)
	Git(t, work, "push", "--quiet", "origin", "HEAD:main")
	if Git(t, cp, "rev-parse", "main") != Git(t, work, "rev-parse", "HEAD") {
		t.Errorf("push did not land in the copy")
	}
	if Git(t, dir, "rev-parse", "main") != main {
		t.Errorf("push into the copy moved the original")
	}
	Git(t, dir, "fsck", "--no-progress")
}

// BenchmarkBigRepoGenerate generates the full default repo (1,000 apps x 3
// environments, 10,000 deploy commits) each iteration.
func BenchmarkBigRepoGenerate(b *testing.B) {
	var size int64
	for i := 0; i < b.N; i++ {
		dir := filepath.Join(b.TempDir(), "env.git")
		BigRepo(b, dir, BigRepoOptions{Seed: 1})
		b.StopTimer()
		size = dirSize(b, dir)
		os.RemoveAll(dir)
		b.StartTimer()
	}
	b.ReportMetric(float64(size)/(1<<20), "MiB/repo")
}

// BenchmarkBigRepoCopyBare copies the cached full repo, as a benchmark that
// pushes into it does before each run.
func BenchmarkBigRepoCopyBare(b *testing.B) {
	dir, _ := BigRepoCached(b, BigRepoOptions{Seed: 1})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		CopyBare(b, dir)
	}
}

func dirSize(tb testing.TB, dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		n += info.Size()
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return n
}
