package stack

import (
	"slices"
	"testing"
)

func TestImageRefs(t *testing.T) {
	for _, c := range []struct {
		name, yaml string
		want       []string
	}{
		{"kustomize overlay", `images:
  - name: registry.example.com/shop/checkout
    newTag: 1.4.1 # the release running in dev
`, []string{"registry.example.com/shop/checkout:1.4.1"}},
		{"helm values", `replicaCount: 1
image:
  repository: registry.example.com/shop/payments
  tag: "2.7.0"   # the release running in dev
  pullPolicy: IfNotPresent
`, []string{"registry.example.com/shop/payments:2.7.0"}},
		{"raw manifest, two containers", `      containers:
      - name: search
        image: registry.example.com/shop/search:1.0.1
        args: ["--port=9200"]
      - name: metrics
        image: registry.example.com/infra/metrics-exporter:0.4.1
`, []string{"registry.example.com/shop/search:1.0.1", "registry.example.com/infra/metrics-exporter:0.4.1"}},
		{"chart template, a container name is no image name", `        - name: payments
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
metadata:
  name: payments
  tag: x
`, nil},
		{"registry port, no tag", `image: 127.0.0.1:5000/shop/checkout
`, nil},
	} {
		if got := imageRefs(c.yaml); !slices.Equal(got, c.want) {
			t.Errorf("%s: imageRefs = %q, want %q", c.name, got, c.want)
		}
	}
}
