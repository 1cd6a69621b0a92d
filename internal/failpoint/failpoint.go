// Package failpoint lets crash tests stop a process at named moments.
//
// # Use
//
// Code marks a moment with Hit("publish.after-enqueue"). Nothing happens
// unless a test armed the point: a test re-executes its own binary as a
// child with HERALD_FAILPOINTS set, and the child calls ArmFromEnv in its
// TestMain before running the code under test:
//
//	HERALD_FAILPOINTS=publish.after-enqueue=kill@7
//
// kills the child with SIGKILL the 7th time it reaches the point: no
// deferred function, no flush, no graceful anything, as in a crash.
// Several points are separated by commas; the first to fire kills.
//
// # Cost
//
// Unarmed, Hit is one atomic load. Only test code arms points: herald
// never reads the environment variable on its own, so a production
// process cannot be killed by it.
package failpoint

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// EnvVar is the environment variable ArmFromEnv reads.
const EnvVar = "HERALD_FAILPOINTS"

// The process-wide registry: failpoints are global by nature, since the
// code they stop has no handle to pass them through.
var (
	armed  atomic.Bool
	mu     sync.Mutex
	points map[string]*point
	// kill ends the process; tests of this package replace it.
	kill = killSelf
)

type point struct {
	at   int // the hit that fires
	hits int
}

// Hit marks that execution reached the named point. If the point is armed
// and this is the hit it waits for, the process is killed and Hit never
// returns.
func Hit(name string) {
	if !armed.Load() {
		return
	}
	mu.Lock()
	p := points[name]
	fire := false
	if p != nil {
		p.hits++
		fire = p.hits == p.at
	}
	mu.Unlock()
	if fire {
		kill(name)
	}
}

// Armed reports whether any point is armed, for code that must set
// something up before it can reach a point (an HTTP trace, say).
func Armed() bool { return armed.Load() }

// Arm arms the points a spec names: "name=kill@N[,name=kill@N...]". An
// empty spec disarms every point.
func Arm(spec string) error {
	next := map[string]*point{}
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, action, ok := strings.Cut(part, "=")
		verb, count, ok2 := strings.Cut(action, "@")
		n, err := strconv.Atoi(count)
		if !ok || !ok2 || name == "" || verb != "kill" || err != nil || n < 1 {
			return fmt.Errorf("failpoint: %q is not name=kill@N with N >= 1", part)
		}
		next[name] = &point{at: n}
	}
	mu.Lock()
	points = next
	mu.Unlock()
	armed.Store(len(next) > 0)
	return nil
}

// ArmFromEnv arms the points named by the HERALD_FAILPOINTS variable.
func ArmFromEnv() error { return Arm(os.Getenv(EnvVar)) }

// Hits returns how often the named armed point was reached.
func Hits(name string) int {
	mu.Lock()
	defer mu.Unlock()
	if p := points[name]; p != nil {
		return p.hits
	}
	return 0
}
