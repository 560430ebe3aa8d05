package state

import (
	"syscall"
	"testing"
	"time"
)

// cpuClock measures the CPU time of the process (every thread: SQLite's work, the garbage
// collector) while it runs, for benchmarks on a shared machine, where the time of the clock on
// the wall depends on the other processes and on the disk's flushes.
type cpuClock struct {
	total, since time.Duration
	running      bool
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU() *cpuClock { return &cpuClock{since: cpuTime(), running: true} }

func (c *cpuClock) stop() {
	if c.running {
		c.total += cpuTime() - c.since
		c.running = false
	}
}

func (c *cpuClock) start() {
	if !c.running {
		c.since, c.running = cpuTime(), true
	}
}

// report reports the CPU time per unit (perOp units an op) as "cpu-ns/<unit>".
func (c *cpuClock) report(b *testing.B, perOp int, unit string) {
	c.stop()
	b.ReportMetric(float64(c.total.Nanoseconds())/float64(b.N*perOp), "cpu-ns/"+unit)
}
