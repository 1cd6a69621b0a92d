//go:build unix

package webhook

import (
	"syscall"
	"testing"
	"time"
)

// cpuTime is the CPU time this process has used, user and system, every
// thread and the garbage collector's included.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds a cpu-ns/op metric to b: CPU time rather than wall time,
// so that a benchmark on a busy shared machine, where a process waits for
// a core, still reports what an operation costs. Call it after the timed
// loop with the CPU time read before it.
func reportCPU(b *testing.B, start time.Duration) {
	b.Helper()
	if n := b.N; n > 0 {
		b.ReportMetric(float64(cpuTime()-start)/float64(n), "cpu-ns/op")
	}
}
