package gitops

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"

	"gopkg.in/yaml.v3"

	"github.com/shipbot/shipbot/gitops/edit"
)

// Files shipbot owns in the environment repo (.shipbot/freezes.yaml,
// .shipbot/pins.yaml) are one YAML document, written whole by shipbot,
// each change a signed commit with who, why and the request id.

// readOwned reads the owned file at path into a document of type D (an
// absent file is the zero document).
func readOwned[D any](f edit.Files, path string) (D, error) {
	var doc D
	data, err := f.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return doc, nil
	}
	if err != nil {
		return doc, err
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return doc, fmt.Errorf("%s: %w", path, err)
	}
	return doc, nil
}

// renderOwned writes an owned file: header (comment lines), then doc.
func renderOwned(header string, doc any) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(header)
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return b.Bytes(), enc.Close()
}
