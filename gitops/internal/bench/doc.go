// Package bench holds shipbot's monorepo benchmarks (`make bench`): the git
// write path, the history lookup, concurrency and memory on a generated
// environment repo of 1,000 apps x 3 environments and 10,000 commits, each
// side by side with the git CLI doing the same work in the same run.
package bench
