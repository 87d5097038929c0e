package edit

import (
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"
)

// Fixtures shared by the API tests.

const kustomization = `resources:
- ../../base
images:
- name: registry.example.com/checkout
  newTag: 1.4.1
- name: registry.example.com/pinned
  digest: sha256:2f8a9d9e0c4b7a1e5f3d6c8b9a0e1f2d3c4b5a6978877665544332211f0e9d8c
patches:
- path: shipbot-restart.yaml
  target:
    kind: Deployment
    name: checkout
`

const restartPatchContent = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: shipbot-restart
spec:
  template:
    metadata:
      annotations:
        shipbot.io/restartedAt: "2026-11-01T09:30:00Z"
`

const values = `image:
  repository: registry.example.com/checkout
  tag: "1.4.1"
app:
  image: {tag: 2.0.0}
podAnnotations:
  shipbot.io/restartedAt: "2026-11-01T09:30:00Z"
nullTag:
  tag:
`

const deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: checkout
spec:
  template:
    metadata:
      annotations:
        shipbot.io/restartedAt: "2026-11-01T09:30:00Z"
    spec:
      containers:
      - name: app
        image: registry.example.com/checkout:1.4.1
      - name: pinned
        image: registry.example.com/pinned@sha256:2f8a9d9e0c4b7a1e5f3d6c8b9a0e1f2d3c4b5a6978877665544332211f0e9d8c
`

const worker = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
spec:
  template:
    spec:
      containers:
      - name: worker
        image: registry.example.com/checkout:1.4.0
`

const mongo = `apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: mongo
spec:
  template:
    spec:
      containers:
      - name: mongo
        image: mongo
`

func fixture() MapFiles {
	return MapFiles{
		"k/prod/kustomization.yaml":         []byte(kustomization),
		"k/prod/shipbot-restart.yaml":       []byte(restartPatchContent),
		"k/dev/kustomization.yaml":          []byte("resources: [../../base]\n"),
		"base/kustomization.yaml":           []byte("resources: [deployment.yaml, worker.yaml, mongo.yaml]\n"),
		"base/deployment.yaml":              []byte(deployment),
		"base/worker.yaml":                  []byte(strings.ReplaceAll(worker, "registry.example.com/checkout", "registry.example.com/worker")),
		"k/both/kustomization.yaml":         []byte("resources: []\n"),
		"k/both/kustomization.yml":          []byte("resources: []\n"),
		"k/ro/kustomization.yaml":           []byte("patches:\n- {path: shipbot-restart.yaml, target: {kind: Deployment, name: a}}\n- {path: shipbot-restart-rollout.yaml, target: {kind: Rollout, name: b}}\n"),
		"k/ro/shipbot-restart.yaml":         []byte(restartPatchContent),
		"k/ro/shipbot-restart-rollout.yaml": []byte("kind: Rollout\nspec: {restartAt: \"2026-11-21T10:00:00Z\"}\n"),
		"h/values.yaml":                     []byte(values),
		"h/bare.yaml":                       []byte("replicas: 2\n"),
		"hc/values.yaml":                    []byte("image:\n  repository: x\n  tag: \"\"\n"),
		"hc/Chart.yaml":                     []byte("apiVersion: v2\nname: x\nversion: 0.1.0\nappVersion: 3.1.0\n"),
		"base/mongo.yaml":                   []byte(mongo),
		"k/top/kustomization.yaml":          []byte("resources: [../mid]\n"),
		"k/mid/kustomization.yaml":          []byte("resources: [../../base]\nimages:\n- name: mongo\n  newTag: 7.0.4\n"),
		"m/prod/deployment.yaml":            []byte(deployment),
		"m/prod/notes.txt":                  []byte("not yaml"),
		"m/split/a.yaml":                    []byte(deployment),
		"m/split/b.yml":                     []byte(worker),
		"m/empty/README.md":                 []byte("nothing"),
	}
}

var (
	kust     = Location{Layout: LayoutKustomize, Path: "k/prod", Image: "registry.example.com/checkout"}
	helm     = Location{Layout: LayoutHelm, Path: "h/values.yaml"}
	manifest = Location{Layout: LayoutManifest, Path: "m/prod", Image: "registry.example.com/checkout"}
)

func with(loc Location, f func(*Location)) Location {
	f(&loc)
	return loc
}

func TestCurrentTag(t *testing.T) {
	tests := []struct {
		name    string
		loc     Location
		want    string
		wantErr string // substring; "" for success
		is      error
	}{
		{"kustomize", kust, "1.4.1", "", nil},
		{"kustomize missing entry", with(kust, func(l *Location) { l.Image = "registry.example.com/nope" }), "",
			`image "registry.example.com/nope" not found in k/prod/kustomization.yaml`, ErrNotFound},
		{"kustomize digest only", with(kust, func(l *Location) { l.Image = "registry.example.com/pinned" }), "",
			`image "registry.example.com/pinned" has no tag at k/prod/kustomization.yaml (images[1]) (it is pinned by digest sha256:2f8a`, ErrNoTag},
		{"kustomize no images: the base's tag", with(kust, func(l *Location) { l.Path = "k/dev" }), "1.4.1", "", nil},
		{"kustomize no images, base pinned by digest", with(kust, func(l *Location) { l.Path = "k/dev"; l.Image = "registry.example.com/pinned" }), "",
			`image "registry.example.com/pinned" has no tag at base/deployment.yaml (Deployment/checkout) (it is pinned by digest sha256:2f8a`, ErrNoTag},
		{"kustomize no images, base untagged", with(kust, func(l *Location) { l.Path = "k/dev"; l.Image = "mongo" }), "",
			`image "mongo" has no tag at base/mongo.yaml (StatefulSet/mongo) (mongo: Kubernetes pulls mongo:latest)`, ErrNoTag},
		{"kustomize entry of the overlay", with(kust, func(l *Location) { l.Path = "k/mid"; l.Image = "mongo" }), "7.0.4", "", nil},
		{"kustomize base retagged by its own kustomization", with(kust, func(l *Location) { l.Path = "k/top"; l.Image = "mongo" }), "7.0.4", "", nil},
		{"kustomize no images, not in the base", with(kust, func(l *Location) { l.Path = "k/dev"; l.Image = "registry.example.com/nope" }), "",
			`image "registry.example.com/nope" not found in k/dev/kustomization.yaml: no images entry, and no container of its resources runs it`, ErrNotFound},
		{"kustomize no overlay", with(kust, func(l *Location) { l.Path = "k/nope" }), "",
			"no kustomization.yaml in k/nope", ErrNotFound},
		{"kustomize two kustomization files", with(kust, func(l *Location) { l.Path = "k/both" }), "",
			"more than one kustomization file", nil},
		{"helm default path", helm, "1.4.1", "", nil},
		{"helm custom path", with(helm, func(l *Location) { l.TagPath = "app.image.tag" }), "2.0.0", "", nil},
		{"helm missing key", with(helm, func(l *Location) { l.TagPath = "worker.image.tag" }), "",
			"worker.image.tag not found in h/values.yaml", ErrNotFound},
		{"helm null tag", with(helm, func(l *Location) { l.TagPath = "nullTag.tag" }), "",
			"nullTag.tag is not set in h/values.yaml: the chart's default tag applies", ErrNoTag},
		{"helm empty tag, chart in the repo", with(helm, func(l *Location) { l.Path = "hc/values.yaml" }), "",
			`image.tag is empty in hc/values.yaml: the chart's default tag applies (usually its appVersion, 3.1.0 in hc/Chart.yaml)`, ErrNoTag},
		{"helm key absent under the image map", with(helm, func(l *Location) { l.TagPath = "app.image.version" }), "",
			"app.image.version is not set in h/values.yaml: the chart's default tag applies", ErrNoTag},
		{"helm not a scalar", with(helm, func(l *Location) { l.TagPath = "image" }), "",
			"image in h/values.yaml is a mapping, not a scalar", nil},
		{"helm missing file", with(helm, func(l *Location) { l.Path = "h/nope.yaml" }), "",
			"values file h/nope.yaml not found", ErrNotFound},
		{"manifest dir", manifest, "1.4.1", "", nil},
		{"manifest file", with(manifest, func(l *Location) { l.Path = "m/prod/deployment.yaml" }), "1.4.1", "", nil},
		{"manifest disagreement", with(manifest, func(l *Location) { l.Path = "m/split" }), "",
			"containers running registry.example.com/checkout disagree: m/split/a.yaml (Deployment/checkout, container app) has registry.example.com/checkout:1.4.1, m/split/b.yml (Deployment/worker, container worker) has registry.example.com/checkout:1.4.0", nil},
		{"manifest digest only", with(manifest, func(l *Location) { l.Image = "registry.example.com/pinned" }), "",
			`image "registry.example.com/pinned" has no tag in m/prod/deployment.yaml (Deployment/checkout, container pinned)`, ErrNoTag},
		{"manifest untagged", with(manifest, func(l *Location) { l.Path = "base/mongo.yaml"; l.Image = "mongo" }), "",
			`image "mongo" has no tag in base/mongo.yaml (StatefulSet/mongo, container mongo) (mongo: Kubernetes pulls mongo:latest)`, ErrNoTag},
		{"manifest no container", with(manifest, func(l *Location) { l.Image = "registry.example.com/check" }), "",
			`no container with image "registry.example.com/check" in m/prod`, ErrNotFound},
		{"manifest no yaml files", with(manifest, func(l *Location) { l.Path = "m/empty" }), "",
			"no *.yaml or *.yml files in m/empty", ErrNotFound},
		{"manifest missing path", with(manifest, func(l *Location) { l.Path = "m/nope" }), "",
			"no manifests at m/nope", ErrNotFound},
		{"unknown layout", Location{Layout: "jsonnet", Path: "x"}, "", `unknown layout "jsonnet"`, nil},
		{"kustomize without image", Location{Layout: LayoutKustomize, Path: "k/prod"}, "", "needs an image name", nil},
		{"bad tag path", with(helm, func(l *Location) { l.TagPath = "image..tag" }), "", `invalid values path "image..tag"`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CurrentTag(fixture(), tt.loc)
			checkErr(t, err, tt.wantErr, tt.is)
			if got != tt.want {
				t.Errorf("CurrentTag = %q, want %q", got, tt.want)
			}
		})
	}
}

func checkErr(t *testing.T, err error, want string, is error) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != "" && err == nil:
		t.Fatalf("no error, want %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Fatalf("error %q does not contain %q", err, want)
	case is != nil && !errors.Is(err, is):
		t.Fatalf("error %q is not %v", err, is)
	}
}

func TestCurrentRestart(t *testing.T) {
	tests := []struct {
		name    string
		loc     Location
		want    string
		wantErr string
		is      error
	}{
		{"kustomize", kust, "2026-11-01T09:30:00Z", "", nil},
		{"kustomize no patch yet", with(kust, func(l *Location) { l.Path = "k/dev" }), "", "", nil},
		{"kustomize no overlay", with(kust, func(l *Location) { l.Path = "k/nope" }), "", "no kustomization.yaml in k/nope", ErrNotFound},
		{"helm", helm, "2026-11-01T09:30:00Z", "", nil},
		{"helm none yet", with(helm, func(l *Location) { l.Path = "h/bare.yaml" }), "", "", nil},
		{"helm other map", with(helm, func(l *Location) { l.AnnotationsPath = "app.podAnnotations" }), "", "", nil},
		{"manifest", manifest, "2026-11-01T09:30:00Z", "", nil},
		{"manifest none yet", with(manifest, func(l *Location) { l.Path = "m/split/b.yml" }), "", "", nil},
		{"manifest no container", with(manifest, func(l *Location) { l.Image = "x" }), "", `no Deployment, StatefulSet, DaemonSet or Rollout in m/prod runs x`, ErrNoWorkload},
		{"kustomize rollout patch newer", with(kust, func(l *Location) { l.Path = "k/ro" }), "2026-11-21T10:00:00Z", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CurrentRestart(fixture(), tt.loc)
			checkErr(t, err, tt.wantErr, tt.is)
			if got != tt.want {
				t.Errorf("CurrentRestart = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestInputs(t *testing.T) {
	kbase := []string{"base/deployment.yaml", "base/kustomization.yaml", "base/mongo.yaml", "base/worker.yaml"}
	tests := []struct {
		name string
		loc  Location
		want []string
		is   error
	}{
		// The overlay, its patches, and what its build reads in the repo.
		{"kustomize", kust, append(kbase, "k/prod/kustomization.yaml", "k/prod/shipbot-restart-rollout.checkout.yaml", "k/prod/shipbot-restart-rollout.yaml", "k/prod/shipbot-restart.checkout.yaml", "k/prod/shipbot-restart.yaml"), nil},
		{"kustomize patch not created yet", with(kust, func(l *Location) { l.Path = "k/dev/" }), append(kbase, "k/dev/kustomization.yaml", "k/dev/shipbot-restart-rollout.checkout.yaml", "k/dev/shipbot-restart-rollout.yaml", "k/dev/shipbot-restart.checkout.yaml", "k/dev/shipbot-restart.yaml"), nil},
		{"kustomize no overlay", with(kust, func(l *Location) { l.Path = "k/nope" }), nil, ErrNotFound},
		{"helm", helm, []string{"h/values.yaml"}, nil},
		{"helm stack", with(helm, func(l *Location) { l.ValuesFiles = []string{"h/values-common.yaml", "h/values.yaml"} }), []string{"h/values-common.yaml", "h/values.yaml"}, nil},
		{"manifest dir", with(manifest, func(l *Location) { l.Path = "m/split" }), []string{"m/split/a.yaml", "m/split/b.yml"}, nil},
		{"manifest dir skips other files", manifest, []string{"m/prod/deployment.yaml"}, nil},
		{"manifest file", with(manifest, func(l *Location) { l.Path = "./m/split/b.yml" }), []string{"m/split/b.yml"}, nil},
		{"manifest missing", with(manifest, func(l *Location) { l.Path = "m/nope" }), nil, ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Inputs(fixture(), tt.loc)
			if tt.is != nil {
				if !errors.Is(err, tt.is) {
					t.Fatalf("err = %v, want %v", err, tt.is)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("Inputs (-want +got):\n%s", d)
			}
		})
	}
}

func TestUnchanged(t *testing.T) {
	tests := []struct {
		name string
		run  func(Files) ([]Change, error)
		want string
	}{
		{"kustomize tag", func(f Files) ([]Change, error) { return SetTag(f, kust, "1.4.1") },
			`image "registry.example.com/checkout" in k/prod/kustomization.yaml already has newTag 1.4.1`},
		{"kustomize restart", func(f Files) ([]Change, error) { return SetRestart(f, kust, "2026-11-01T09:30:00Z") },
			"shipbot.io/restartedAt in k/prod/shipbot-restart.yaml is already 2026-11-01T09:30:00Z"},
		{"helm tag", func(f Files) ([]Change, error) { return SetTag(f, helm, "1.4.1") },
			"image.tag in h/values.yaml is already 1.4.1"},
		{"helm restart", func(f Files) ([]Change, error) { return SetRestart(f, helm, "2026-11-01T09:30:00Z") },
			"shipbot.io/restartedAt in h/values.yaml is already 2026-11-01T09:30:00Z"},
		{"manifest tag", func(f Files) ([]Change, error) { return SetTag(f, manifest, "1.4.1") },
			"every container running registry.example.com/checkout in m/prod already runs registry.example.com/checkout:1.4.1"},
		{"manifest restart", func(f Files) ([]Change, error) { return SetRestart(f, manifest, "2026-11-01T09:30:00Z") },
			"shipbot.io/restartedAt of every workload running registry.example.com/checkout in m/prod is already 2026-11-01T09:30:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			changes, err := tt.run(fixture())
			if !errors.Is(err, ErrUnchanged) || err.Error() != tt.want {
				t.Fatalf("got %d changes, err %v; want ErrUnchanged %q", len(changes), err, tt.want)
			}
		})
	}
}

func TestSetErrors(t *testing.T) {
	files := fixture()
	files["h/scalar.yaml"] = []byte("image: registry.example.com/checkout:1.4.1\n")
	files["k/dup/kustomization.yaml"] = []byte("images:\n- name: a\n  newTag: '1'\n- name: a\n  newTag: '2'\n")
	files["k/alias/kustomization.yaml"] = []byte("base: &img {name: a, newTag: '1'}\nimages:\n- *img\n")
	files["h/anchor.yaml"] = []byte("image: &i\n  tag: '1'\nsidecar: *i\n")
	files["h/bad.yaml"] = []byte("image: [\n")
	files["h/dupkey.yaml"] = []byte("image: {tag: 1}\nimage: {tag: 2}\n")
	files["h/block.yaml"] = []byte("image:\n  tag: |\n    1.4.1\n")
	tests := []struct {
		name string
		run  func() ([]Change, error)
		want string
		is   error
	}{
		{"helm tag under a scalar", func() ([]Change, error) {
			return SetTag(files, with(helm, func(l *Location) { l.Path = "h/scalar.yaml" }), "1.4.2")
		}, "set image.tag in h/scalar.yaml: image is a scalar, not a mapping", nil},
		{"kustomize duplicate entries", func() ([]Change, error) {
			return SetTag(files, Location{Layout: LayoutKustomize, Path: "k/dup", Image: "a"}, "3")
		}, `k/dup/kustomization.yaml lists image "a" twice (images[0] and images[1])`, nil},
		{"kustomize aliased entry", func() ([]Change, error) {
			return SetTag(files, Location{Layout: LayoutKustomize, Path: "k/alias", Image: "a"}, "3")
		}, "the images of k/alias/kustomization.yaml use YAML aliases or merge keys", errUnsupported},
		{"helm anchored value shared by an alias", func() ([]Change, error) {
			return SetTag(files, with(helm, func(l *Location) { l.Path = "h/anchor.yaml" }), "2")
		}, "would change more than its target", errUnsupported},
		{"invalid YAML", func() ([]Change, error) {
			return SetTag(files, with(helm, func(l *Location) { l.Path = "h/bad.yaml" }), "2")
		}, "parse h/bad.yaml", nil},
		{"duplicate keys", func() ([]Change, error) {
			return SetTag(files, with(helm, func(l *Location) { l.Path = "h/dupkey.yaml" }), "2")
		}, `mapping key "image" already defined`, nil},
		{"block scalar target", func() ([]Change, error) {
			return SetTag(files, with(helm, func(l *Location) { l.Path = "h/block.yaml" }), "2")
		}, "image.tag is a block scalar", errUnsupported},
		{"manifest set tag no match", func() ([]Change, error) {
			return SetTag(files, with(manifest, func(l *Location) { l.Image = "registry.example.com/check" }), "2")
		}, `no container with image "registry.example.com/check" in m/prod`, ErrNotFound},
		{"kustomize patchesStrategicMerge lists the patch", func() ([]Change, error) {
			return SetRestart(MapFiles{"o/kustomization.yaml": []byte("resources: [d.yaml]\npatchesStrategicMerge:\n- shipbot-restart.yaml\n"),
				"o/d.yaml": []byte(deployment)}, with(kust, func(l *Location) { l.Path = "o" }), "t")
		}, "o/kustomization.yaml lists shipbot-restart.yaml under patchesStrategicMerge", nil},
		{"kustomize no workload runs the image", func() ([]Change, error) {
			return SetRestart(files, with(kust, func(l *Location) { l.Image = "registry.example.com/worker2" }), "t")
		}, "no Deployment, StatefulSet, DaemonSet or Rollout in k/prod runs registry.example.com/worker2", ErrNoWorkload},
		{"kustomize base missing", func() ([]Change, error) {
			return SetRestart(MapFiles{"o/kustomization.yaml": []byte("resources:\n- ../base\n- https://github.com/x/y//deploy?ref=v1\n")},
				with(kust, func(l *Location) { l.Path = "o" }), "t")
		}, "no Deployment, StatefulSet, DaemonSet or Rollout in o runs registry.example.com/checkout (base (in o/kustomization.yaml) is not in the repo; the remote base https://github.com/x/y//deploy?ref=v1 was not read)", ErrNotFound},
		{"kustomize stale entry left over", func() ([]Change, error) {
			return SetRestart(MapFiles{"o/kustomization.yaml": []byte("resources: [d.yaml]\npatches:\n- path: shipbot-restart.yaml\n  target: {kind: Deployment, name: checkout}\n- path: shipbot-restart.yaml\n  target: {kind: Deployment, name: gone}\n"),
				"o/d.yaml": []byte(deployment)}, with(kust, func(l *Location) { l.Path = "o" }), "t")
		}, "patches[1] (shipbot-restart.yaml, target {kind: Deployment, name: gone}) applies shipbot's restart patch to workloads that don't run registry.example.com/checkout; remove that entry", nil},
		{"manifest only a CronJob and a Job", func() ([]Change, error) {
			return SetRestart(MapFiles{"j.yaml": []byte("kind: CronJob\nmetadata: {name: report}\nspec: {jobTemplate: {spec: {template: {spec: {containers: [{image: app}]}}}}}\n---\nkind: Job\nmetadata: {name: migrate}\nspec: {template: {spec: {containers: [{image: app}]}}}\n")},
				Location{Layout: LayoutManifest, Path: "j.yaml", Image: "app"}, "t")
		}, "no Deployment, StatefulSet, DaemonSet or Rollout in j.yaml runs app (CronJob/report runs it, but a CronJob's next run starts fresh pods anyway, so a restart would not restart anything running; Job/migrate runs it, but a Job's pod template is immutable)", ErrNoWorkload},
		{"kustomize restart no overlay", func() ([]Change, error) {
			return SetRestart(files, with(kust, func(l *Location) { l.Path = "k/nope" }), "x")
		}, "no kustomization.yaml in k/nope", ErrNotFound},
		{"empty tag", func() ([]Change, error) { return SetTag(files, helm, "") }, "empty tag", nil},
		{"empty restart value", func() ([]Change, error) { return SetRestart(files, helm, "") }, "empty restart value", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			changes, err := tt.run()
			checkErr(t, err, tt.want, tt.is)
			if changes != nil {
				t.Errorf("got changes with an error")
			}
		})
	}
}

// TestEdits covers small edits whose exact output matters and that the
// golden trees don't show.
func TestEdits(t *testing.T) {
	tests := []struct {
		name   string
		layout Layout
		op     string
		value  string
		before string
		after  string
	}{
		{"helm CRLF insert keeps CRLF", LayoutHelm, "restart", "2026-11-21T10:00:00Z",
			"image:\r\n  tag: \"1\"\r\n",
			"image:\r\n  tag: \"1\"\r\npodAnnotations:\r\n  shipbot.io/restartedAt: \"2026-11-21T10:00:00Z\"\r\n"},
		{"helm BOM", LayoutHelm, "tag", "1.4.2",
			"\ufeffimage:\n  tag: 1.4.1 # é\n", "\ufeffimage:\n  tag: 1.4.2 # é\n"},
		{"helm non-ASCII before the value", LayoutHelm, "tag", "1.4.2",
			"image: {ñame: 'ü', tag: 1.4.1}\n", "image: {ñame: 'ü', tag: 1.4.2}\n"},
		{"helm empty file", LayoutHelm, "tag", "1.4.2", "", "image:\n  tag: 1.4.2\n"},
		{"helm comment-only file without final newline", LayoutHelm, "tag", "1.4.2",
			"# values", "# values\nimage:\n  tag: 1.4.2\n"},
		{"helm empty tag value", LayoutHelm, "tag", "1.4.2", "image:\n  tag:   # set me\n", "image:\n  tag: 1.4.2   # set me\n"},
		{"helm single-quoted tag", LayoutHelm, "tag", "1.4.2", "image:\n  tag: '1.4.1'\n", "image:\n  tag: '1.4.2'\n"},
		{"helm plain float-like old tag", LayoutHelm, "tag", "1.11", "image:\n  tag: 1.10\n", "image:\n  tag: \"1.11\"\n"},
		{"helm YAML 1.1 bool tag", LayoutHelm, "tag", "on", "image:\n  tag: v1\n", "image:\n  tag: \"on\"\n"},
		{"helm multi-line plain tag", LayoutHelm, "tag", "1.4.2", "image:\n  tag: 1.4.1\n    beta\nx: 1\n", "image:\n  tag: 1.4.2\nx: 1\n"},
		{"helm tagged scalar", LayoutHelm, "tag", "1.4.2", "image:\n  tag: !!str 1.4.1\n", "image:\n  tag: !!str 1.4.2\n"},
		{"helm nested flow creation", LayoutHelm, "tag", "1.4.2", "image: {repository: x}\n", "image: {repository: x, tag: 1.4.2}\n"},
		{"helm flow with trailing comma", LayoutHelm, "restart", "t",
			"podAnnotations: {a: b, }\n", "podAnnotations: {a: b, shipbot.io/restartedAt: \"t\", }\n"},
		{"helm flow null value", LayoutHelm, "restart", "t",
			"x: {podAnnotations: }\n", "x: {podAnnotations: }\npodAnnotations:\n  shipbot.io/restartedAt: \"t\"\n"},
		{"helm existing single-quoted annotation", LayoutHelm, "restart", "t2",
			"podAnnotations:\n  shipbot.io/restartedAt: 't1'\n", "podAnnotations:\n  shipbot.io/restartedAt: 't2'\n"},
		{"helm existing plain annotation becomes quoted", LayoutHelm, "restart", "2026-11-21T10:00:00Z",
			"podAnnotations:\n  shipbot.io/restartedAt: 2026-11-01\n", "podAnnotations:\n  shipbot.io/restartedAt: \"2026-11-21T10:00:00Z\"\n"},
		{"helm keep-chomped block scalar before the insertion", LayoutHelm, "tag", "1.4.2",
			"image:\n  notes: |+\n    hi\n\nnext: 1\n", "image:\n  notes: |+\n    hi\n\n  tag: 1.4.2\nnext: 1\n"},
		{"kustomize digest first on the dash line", LayoutKustomize, "tag", "1.4.2",
			"images:\n- digest: sha256:2f8a9d9e0c4b7a1e5f3d6c8b9a0e1f2d3c4b5a6978877665544332211f0e9d8c\n  name: app\n  newTag: 1.4.1\n",
			"images:\n- name: app\n  newTag: 1.4.2\n"},
		{"kustomize digest first, comment below", LayoutKustomize, "tag", "1.4.2",
			"images:\n- digest: sha256:2f8a9d9e0c4b7a1e5f3d6c8b9a0e1f2d3c4b5a6978877665544332211f0e9d8c\n  # the app\n  name: app\n",
			"images:\n-\n  # the app\n  name: app\n  newTag: 1.4.2\n"},
		{"kustomize digest last line without newline", LayoutKustomize, "tag", "1.4.2",
			"images:\n- name: app\n  newTag: 1.4.1\n  digest: sha256:2f8a9d9e0c4b7a1e5f3d6c8b9a0e1f2d3c4b5a6978877665544332211f0e9d8c",
			"images:\n- name: app\n  newTag: 1.4.2"},
		{"kustomize flow entry with digest", LayoutKustomize, "tag", "1.4.2",
			"images: [{name: app, digest: 'sha256:2f8a9d9e0c4b7a1e5f3d6c8b9a0e1f2d3c4b5a6978877665544332211f0e9d8c', newTag: x}]\n",
			"images: [{name: app, newTag: 1.4.2}]\n"},
		{"kustomize empty flow images", LayoutKustomize, "tag", "1.4.2",
			"images: []\n", "images: [{name: app, newTag: 1.4.2}]\n"},
		{"kustomize null images", LayoutKustomize, "tag", "1.4.2",
			"resources:\n  - a\nimages:\nnamespace: x\n", "resources:\n  - a\nimages:\n  - name: app\n    newTag: 1.4.2\nnamespace: x\n"},
		{"kustomize null patches", LayoutKustomize, "restart", "t",
			"resources: [d.yaml]\npatches: # none yet\nimages: []\n", "resources: [d.yaml]\npatches: # none yet\n  - path: shipbot-restart.yaml\n    target:\n      kind: Deployment\n      name: app\nimages: []\n"},
		{"kustomize flow patches", LayoutKustomize, "restart", "t",
			"resources: [d.yaml]\npatches: [{path: a.yaml}]\n", "resources: [d.yaml]\npatches: [{path: a.yaml}, {path: shipbot-restart.yaml, target: {kind: Deployment, name: app}}]\n"},
		{"kustomize flow blanket target made exact", LayoutKustomize, "restart", "t",
			"resources: [d.yaml]\npatches: [{path: shipbot-restart.yaml, target: {kind: Deployment}}]\n", "resources: [d.yaml]\npatches: [{path: shipbot-restart.yaml, target: {kind: Deployment, name: app}}]\n"},
		{"kustomize label selector target made exact", LayoutKustomize, "restart", "t",
			"resources: [d.yaml]\npatches:\n- path: shipbot-restart.yaml\n  target:\n    kind: Deployment\n    labelSelector: tier=web\n",
			"resources: [d.yaml]\npatches:\n- path: shipbot-restart.yaml\n  target:\n    kind: Deployment\n    name: app\n"},
		{"kustomize entry without target gets one", LayoutKustomize, "restart", "t",
			"resources: [d.yaml]\npatches:\n- path: ./shipbot-restart.yaml\n", "resources: [d.yaml]\npatches:\n- path: ./shipbot-restart.yaml\n  target:\n    kind: Deployment\n    name: app\n"},
		{"manifest flow container", LayoutManifest, "tag", "1.4.2",
			"kind: Deployment\nspec: {template: {spec: {containers: [{name: a, image: app:1}]}}}\n",
			"kind: Deployment\nspec: {template: {spec: {containers: [{name: a, image: \"app:1.4.2\"}]}}}\n"},
		{"manifest flow template restart", LayoutManifest, "restart", "t",
			"kind: Deployment\nspec:\n  template: {spec: {containers: [{image: app}]}}\n",
			"kind: Deployment\nspec:\n  template: {spec: {containers: [{image: app}]}, metadata: {annotations: {shipbot.io/restartedAt: \"t\"}}}\n"},
		{"manifest rollout restartAt", LayoutManifest, "restart", "2026-11-21T10:00:00Z",
			"apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nspec:\n  replicas: 2\n  template: {spec: {containers: [{image: app}]}}\n",
			"apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nspec:\n  replicas: 2\n  template: {spec: {containers: [{image: app}]}}\n  restartAt: \"2026-11-21T10:00:00Z\"\n"},
		{"manifest image without tag", LayoutManifest, "tag", "1.4.2",
			"kind: DaemonSet\nspec:\n  template:\n    spec:\n      containers:\n      - image: app\n",
			"kind: DaemonSet\nspec:\n  template:\n    spec:\n      containers:\n      - image: app:1.4.2\n"},
		{"manifest null annotations", LayoutManifest, "restart", "t",
			"kind: StatefulSet\nspec:\n  template:\n    metadata:\n      annotations:\n    spec:\n      containers:\n      - image: app:1\n",
			"kind: StatefulSet\nspec:\n  template:\n    metadata:\n      annotations:\n        shipbot.io/restartedAt: \"t\"\n    spec:\n      containers:\n      - image: app:1\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := map[Layout]string{LayoutHelm: "values.yaml", LayoutKustomize: "kustomization.yaml", LayoutManifest: "m.yaml"}[tt.layout]
			files := MapFiles{p: []byte(tt.before)}
			if tt.layout == LayoutKustomize {
				files["d.yaml"] = []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app}\nspec:\n  template:\n    spec:\n      containers: [{name: app, image: app:1}]\n")
			}
			loc := Location{Layout: tt.layout, Path: p, Image: "app"}
			if tt.layout == LayoutKustomize {
				loc.Path = "."
			}
			var changes []Change
			var err error
			if tt.op == "tag" {
				changes, err = SetTag(files, loc, tt.value)
			} else {
				changes, err = SetRestart(files, loc, tt.value)
			}
			if err != nil {
				t.Fatal(err)
			}
			got := string(applyChanges(t, files, changes)[p])
			if got != tt.after {
				t.Errorf("after:\n%q\nwant:\n%q", got, tt.after)
			}
		})
	}
}

func TestMapFiles(t *testing.T) {
	m := MapFiles{"a.yaml": []byte("a"), "d/b.yaml": []byte("b"), "d/c.yml": nil, "d/e/f.yaml": []byte("f")}
	b, err := m.ReadFile("./d/b.yaml")
	if err != nil || string(b) != "b" {
		t.Fatalf("ReadFile = %q, %v", b, err)
	}
	b[0] = 'X'
	if string(m["d/b.yaml"]) != "b" {
		t.Error("ReadFile returned the map's own slice")
	}
	if _, err := m.ReadFile("nope.yaml"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile missing: %v", err)
	}
	for dir, want := range map[string][]string{".": {"a.yaml"}, "": {"a.yaml"}, "d": {"b.yaml", "c.yml"}, "d/": {"b.yaml", "c.yml"}, "d/e": {"f.yaml"}} {
		got, err := m.ReadDir(dir)
		if err != nil || !cmp.Equal(got, want) {
			t.Errorf("ReadDir(%q) = %v, %v; want %v", dir, got, err, want)
		}
	}
	for _, dir := range []string{"nope", "a.yaml", "d/b.yaml"} {
		if _, err := m.ReadDir(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("ReadDir(%q) err = %v, want fs.ErrNotExist", dir, err)
		}
	}
}

func TestDiff(t *testing.T) {
	changes := []Change{
		{Path: "apps/values.yaml", Old: []byte("a: 1\nb: 2\nc: 3\nd: 4\ne: 5\nf: 6\ng: 7\nh: 8\n"), New: []byte("a: 1\nb: 2\nc: 3\nd: 4\ne: 50\nf: 6\ng: 7\nh: 8\n")},
		{Path: "apps/new.yaml", New: []byte("x: 1\n")},
		{Path: "apps/same.yaml", Old: []byte("s\n"), New: []byte("s\n")},
		{Path: "apps/eof.yaml", Old: []byte("k: 1"), New: []byte("k: 2")},
	}
	want := `--- a/apps/values.yaml
+++ b/apps/values.yaml
@@ -2,7 +2,7 @@
 b: 2
 c: 3
 d: 4
-e: 5
+e: 50
 f: 6
 g: 7
 h: 8
--- /dev/null
+++ b/apps/new.yaml
@@ -0,0 +1 @@
+x: 1
--- a/apps/eof.yaml
+++ b/apps/eof.yaml
@@ -1 +1 @@
-k: 1
\ No newline at end of file
+k: 2
\ No newline at end of file
`
	if got := Diff(changes); got != want {
		t.Errorf("Diff:\n%s\nwant:\n%s\n%s", got, want, cmp.Diff(want, got))
	}
	if Diff(nil) != "" {
		t.Error("Diff(nil) not empty")
	}
}

func TestParseImageRef(t *testing.T) {
	const dg = "sha256:2f8a9d9e0c4b7a1e5f3d6c8b9a0e1f2d3c4b5a6978877665544332211f0e9d8c"
	tests := []struct {
		in   string
		want imageRef
		ok   bool
	}{
		{"nginx", imageRef{Name: "nginx"}, true},
		{"nginx:1.25", imageRef{Name: "nginx", Tag: "1.25"}, true},
		{"registry.example.com/shop/checkout:1.4.1", imageRef{Name: "registry.example.com/shop/checkout", Tag: "1.4.1"}, true},
		{"localhost:5000/app", imageRef{Name: "localhost:5000/app"}, true},
		{"localhost:5000/app:1.0", imageRef{Name: "localhost:5000/app", Tag: "1.0"}, true},
		{"localhost:5000/app@" + dg, imageRef{Name: "localhost:5000/app", Digest: dg}, true},
		{"app:1.0@" + dg, imageRef{Name: "app", Tag: "1.0", Digest: dg}, true},
		{"app:", imageRef{}, false},
		{"app@sha256:short", imageRef{}, false},
		{"{{ .Values.image }}", imageRef{}, false},
		{"a//b", imageRef{}, false},
		{"host:port/app", imageRef{}, false},
		{"app:-bad", imageRef{}, false},
		{"", imageRef{}, false},
	}
	for _, tt := range tests {
		got, ok := parseImageRef(tt.in)
		if ok != tt.ok || got != tt.want {
			t.Errorf("parseImageRef(%q) = %+v, %v; want %+v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
		if ok && got.String() != tt.in {
			t.Errorf("String() = %q, want %q", got.String(), tt.in)
		}
	}
}

func TestPlainOK(t *testing.T) {
	plain := []string{"1.4.1", "v1.10", "latest", "1.4.1-rc.1", "sha-4f2c1a9", "main_2", "registry.example.com/app:1.0", "x1e3", "2024.01.02"}
	quoted := []string{"1.10", "10", "1e3", "1E3", ".5", "1.", "0x1F", "0o17", "0b101", "017", "1_000", "1:20", "190:20:30.15",
		"true", "True", "yes", "No", "on", "OFF", "y", "n", "null", "~", ".inf", "-.Inf", ".nan", "2024-01-02", "2024-01-02T10:00:00Z",
		"", "-x", "a b", "a:", "#x", "@x", "x,y", "[x]", "a\nb", "'x'"}
	for _, s := range plain {
		if !plainOK(s, false) {
			t.Errorf("plainOK(%q) = false, want true", s)
		}
	}
	for _, s := range quoted {
		if plainOK(s, false) {
			t.Errorf("plainOK(%q) = true, want false", s)
		}
	}
	if plainOK("registry.example.com/app:1.0", true) {
		t.Error("a colon is not plain-safe in flow context")
	}
}

func TestDoubleQuote(t *testing.T) {
	for _, s := range []string{"x", `a"b\c`, "tab\there", "new\nline", "\x00\x7f\u0085\u2028\ufeff", "é ü 日本"} {
		var got string
		if err := yamlUnmarshalString(doubleQuote(s), &got); err != nil || got != s {
			t.Errorf("doubleQuote(%q) = %s reads back as %q (%v)", s, doubleQuote(s), got, err)
		}
	}
}

func yamlUnmarshalString(s string, out *string) error {
	return yaml.Unmarshal([]byte("v: "+s), &struct {
		V *string `yaml:"v"`
	}{out})
}

// TestHelmChartReads covers the check of a Helm restart against a chart in
// the repo: a chart whose templates never mention the annotations key is
// refused; anything the check can't judge cheaply is written as before.
func TestHelmChartReads(t *testing.T) {
	const reads = "kind: Deployment\nspec:\n  template:\n    metadata:\n      {{- with .Values.podAnnotations }}\n      annotations: {{- toYaml . | nindent 8 }}\n      {{- end }}\n"
	const ignores = "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    metadata:\n      labels: {app: x}\n"
	tests := []struct {
		name  string
		files MapFiles
		loc   Location
		want  string // "" for success
	}{
		{"chart beside reads it", MapFiles{"a/values-prod.yaml": []byte("x: 1\n"), "a/chart/Chart.yaml": []byte("name: a\n"), "a/chart/templates/deployment.yaml": []byte(reads)},
			Location{Layout: LayoutHelm, Path: "a/values-prod.yaml"}, ""},
		{"chart beside never reads it", MapFiles{"a/values-prod.yaml": []byte("x: 1\n"), "a/chart/Chart.yaml": []byte("name: a\n"), "a/chart/templates/deployment.yaml": []byte(ignores), "a/chart/templates/_helpers.tpl": []byte("{{- define \"a.name\" -}}a{{- end }}\n")},
			Location{Layout: LayoutHelm, Path: "a/values-prod.yaml"},
			`the chart in a/chart never reads podAnnotations (no template in a/chart/templates mentions "podAnnotations"), so setting it would restart nothing: set annotationsPath to the values key its pod template's annotations come from`},
		{"values in the chart, custom path not read", MapFiles{"c/values.yaml": []byte("x: 1\n"), "c/Chart.yaml": []byte("name: c\n"), "c/templates/deployment.yaml": []byte(reads)},
			Location{Layout: LayoutHelm, Path: "c/values.yaml", AnnotationsPath: "server.extraPodAnnotations"},
			`the chart in c never reads server.extraPodAnnotations (no template in c/templates mentions "extraPodAnnotations")`},
		{"custom path read", MapFiles{"c/values.yaml": []byte("x: 1\n"), "c/Chart.yaml": []byte("name: c\n"), "c/templates/deployment.yaml": []byte(strings.ReplaceAll(reads, "podAnnotations", "server.extraPodAnnotations"))},
			Location{Layout: LayoutHelm, Path: "c/values.yaml", AnnotationsPath: "server.extraPodAnnotations"}, ""},
		{"chart with dependencies isn't judged", MapFiles{"a/values.yaml": []byte("x: 1\n"), "a/Chart.yaml": []byte("name: a\ndependencies:\n- name: common\n  repository: oci://example.com/charts\n"), "a/templates/deployment.yaml": []byte(ignores)},
			Location{Layout: LayoutHelm, Path: "a/values.yaml"}, ""},
		{"vendored subcharts aren't judged", MapFiles{"a/values.yaml": []byte("x: 1\n"), "a/Chart.yaml": []byte("name: a\n"), "a/charts/common-1.0.0.tgz": []byte("x"), "a/templates/deployment.yaml": []byte(ignores)},
			Location{Layout: LayoutHelm, Path: "a/values.yaml"}, ""},
		{"no workload at the top of templates isn't judged", MapFiles{"a/values.yaml": []byte("x: 1\n"), "a/Chart.yaml": []byte("name: a\n"), "a/templates/service.yaml": []byte("kind: Service\n")},
			Location{Layout: LayoutHelm, Path: "a/values.yaml"}, ""},
		{"no templates in the repo isn't judged", MapFiles{"a/values-dev.yaml": []byte("x: 1\n"), "a/chart/Chart.yaml": []byte("name: a\n")},
			Location{Layout: LayoutHelm, Path: "a/values-dev.yaml"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			changes, err := SetRestart(tt.files, tt.loc, "2026-11-21T10:00:00Z")
			if tt.want == "" {
				if err != nil || len(changes) != 1 {
					t.Fatalf("got %d changes, err %v; want the values file changed", len(changes), err)
				}
				return
			}
			checkErr(t, err, tt.want, ErrNotRead)
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("%v is not ErrNotFound", err)
			}
		})
	}
}

func TestSetImage(t *testing.T) {
	const d2 = "sha256:9b1c0e2f4a6d8c0b2e4f6a8c0d2e4f6b8a0c2e4d6f8b0a2c4e6d8f0b2a4c6e8d"
	pinned := with(manifest, func(l *Location) { l.Image = "registry.example.com/pinned" })
	tests := []struct {
		name    string
		loc     Location
		opts    SetImageOptions
		pins    int
		dropped bool
		wantErr string
	}{
		{"no pin, no digest added", manifest, SetImageOptions{Tag: "1.5.0", Digest: d2}, 0, false, ""},
		{"digest-only pin updated", pinned, SetImageOptions{Tag: "1.5.0", Digest: d2}, 1, false, ""},
		{"digest-only pin dropped", pinned, SetImageOptions{Tag: "1.5.0"}, 1, true, ""},
		{"kustomize digest-only entry dropped", with(kust, func(l *Location) { l.Image = "registry.example.com/pinned" }), SetImageOptions{Tag: "1.5.0"}, 1, true, ""},
		{"helm digestPath absent: nothing to pin", with(helm, func(l *Location) { l.DigestPath = "image.digest" }), SetImageOptions{Tag: "1.5.0", Digest: d2}, 0, false, ""},
		{"invalid digest", manifest, SetImageOptions{Tag: "1.5.0", Digest: "sha256:xyz"}, 0, false, `invalid digest "sha256:xyz"`},
		{"empty tag", manifest, SetImageOptions{Digest: d2}, 0, false, "empty tag"},
		{"bad digest path", with(helm, func(l *Location) { l.DigestPath = "image..digest" }), SetImageOptions{Tag: "1.5.0"}, 0, false, `invalid values path "image..digest"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := SetImage(fixture(), tt.loc, tt.opts)
			checkErr(t, err, tt.wantErr, nil)
			if err != nil {
				return
			}
			if len(e.Pins) != tt.pins {
				t.Fatalf("pins = %v, want %d", e.Pins, tt.pins)
			}
			for _, p := range e.Pins {
				if p.Dropped() != tt.dropped || (!p.Dropped() && p.New != tt.opts.Digest) {
					t.Errorf("pin %+v: dropped %v, want %v", p, p.Dropped(), tt.dropped)
				}
				if note := p.String(); !strings.Contains(note, p.Old) {
					t.Errorf("note %q doesn't name the old digest", note)
				}
			}
			after := MapFiles{}
			for k, v := range fixture() {
				after[k] = v
			}
			for _, c := range e.Changes {
				after[c.Path] = c.New
			}
			if got, err := CurrentTag(after, tt.loc); err != nil || got != tt.opts.Tag {
				t.Errorf("CurrentTag after = %q, %v", got, err)
			}
		})
	}
}

// In an overlay of several apps, each app's restart is its own: checkout's
// and cart's restart values are read from the patches that target their
// own workloads.
func TestCurrentRestartPerApp(t *testing.T) {
	files := readTree(t, "testdata/golden/kustomize-restart-second-app/after")
	for image, want := range map[string]string{
		"registry.example.com/shop/checkout": "2026-11-21T10:00:00Z",
		"registry.example.com/shop/cart":     "2026-11-21T11:00:00Z",
		"registry.example.com/shop/payment":  "",
	} {
		got, err := CurrentRestart(files, Location{Layout: LayoutKustomize, Path: "apps/shop/overlays/prod", Image: image})
		if err != nil || got != want {
			t.Errorf("%s: CurrentRestart = %q, %v; want %q", image, got, err, want)
		}
	}
}
