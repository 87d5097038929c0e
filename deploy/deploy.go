// Package deploy holds how to run shipbot itself. Examples (policy model,
// demo policy) are embedded so `shipbot demo` writes exactly the files
// documented here.
package deploy

import "embed"

// Examples holds deploy/examples: model.conf, policy.csv and friends.
//
//go:embed examples
var Examples embed.FS
