// Package argo will hold shipbot's Argo CD client (refresh/sync, watching our
// commit until Synced and Healthy). It is not built yet: see issue 6. No code
// imports it.
package argo
