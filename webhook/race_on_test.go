//go:build race

package webhook_test

// underRace: the race detector slows the dispatcher several times over,
// so the long chaos run shrinks under it.
const underRace = true
