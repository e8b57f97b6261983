// Package stats holds the arithmetic of Freshet's load generator
// (loadtest/cmd/freshet-load): latency percentiles, the gap and duplicate
// counting of resumed streams, and the machine's load average while a
// scenario runs. It does no I/O but reading /proc/loadavg.
//
// A [Latencies] and a [Sequence] are not safe for concurrent use: each
// client owns its own, and the caller merges them after the run.
package stats
