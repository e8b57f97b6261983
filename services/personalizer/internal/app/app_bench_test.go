package app_test

import (
	"strings"
	"testing"
	"time"

	"github.com/freshet/freshet/pkg/servers"
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
	startPersonalizer(b, "", env).Stop(b) // creates the topics
	ptest.ManyProfiles(b, kt.Seeds, topics.Profiles, n, nil)
	ptest.CommitEnd(b, kt.Seeds, group, topics.Profiles)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		c := startPersonalizer(b, "", env)
		took := time.Since(start)
		b.StopTimer()
		mem, err := servers.ProcessMemory(c.Pid())
		c.Stop(b)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(took.Seconds(), "s/restore")
		b.ReportMetric(servers.MiB(mem.RSS), "rss-MiB")
		b.ReportMetric(servers.MiB(mem.Peak), "peak-rss-MiB")
		b.StartTimer()
	}
}
