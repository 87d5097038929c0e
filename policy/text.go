package policy

import "github.com/shipbot/shipbot/gitops"

// normalize is the core's one normalisation of chat text (gitops.Normalize):
// controls and separators become spaces, format characters (bidi, zero-width)
// are dropped, spaces collapse, and the result is cut to max runes.
func normalize(s string, max int) string { return gitops.Normalize(s, max) }
