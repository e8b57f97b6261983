package app_test

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/freshet/freshet/pkg/testenv"
	"github.com/freshet/freshet/services/personalizer/internal/ptest"
)

// BenchmarkRestore1MProcess restores 1,000,000 profiles in a personalizer
// running as its own process (the broker stays in the test process), and
// reports the time from the process's start to its readiness and its peak
// resident memory (VmHWM):
//
//	go test -run '^$' -bench Restore1MProcess -benchtime 1x ./services/personalizer/internal/app/
func BenchmarkRestore1MProcess(b *testing.B) {
	const n = 1_000_000
	kt := testenv.Kafka(b)
	_, pipelinePath := ptest.Pipeline(b, 12, 12)
	topics := ptest.Topics{Content: kt.Topic("content.changes"), Profiles: kt.Topic("user.profiles"), Deliveries: kt.Topic("content.deliveries"), Latency: kt.Topic("pipeline.latency")}
	group := kt.Group("personalizer")
	env := []string{
		"FRESHET_KAFKA_BROKERS=" + strings.Join(kt.Seeds, ","),
		"FRESHET_PIPELINE=" + pipelinePath,
		"FRESHET_LOG_LEVEL=warn",
		"FRESHET_PERSONALIZER_GROUP=" + group,
		"FRESHET_PERSONALIZER_TRANSACTIONAL_ID=" + kt.Group("txn"),
		"FRESHET_PERSONALIZER_CONTENT_TOPIC=" + topics.Content,
		"FRESHET_PERSONALIZER_PROFILES_TOPIC=" + topics.Profiles,
		"FRESHET_PERSONALIZER_DELIVERIES_TOPIC=" + topics.Deliveries,
		"FRESHET_PERSONALIZER_LATENCY_TOPIC=" + topics.Latency,
	}
	startChild(b, env).stop(b) // creates the topics
	ptest.ManyProfiles(b, kt.Seeds, topics.Profiles, n, nil)
	ptest.CommitEnd(b, kt.Seeds, group, topics.Profiles)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		c := startChild(b, env)
		took := time.Since(start)
		b.StopTimer()
		rss, peak := procRSS(c.cmd.Process.Pid)
		c.stop(b)
		b.ReportMetric(took.Seconds(), "s/restore")
		b.ReportMetric(rss, "rss-MiB")
		b.ReportMetric(peak, "peak-rss-MiB")
		b.StartTimer()
	}
}

// procRSS returns VmRSS and VmHWM of process pid, in MiB.
func procRSS(pid int) (cur, peak float64) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			cur = kb / 1024
		case "VmHWM:":
			peak = kb / 1024
		}
	}
	return cur, peak
}
