package stats

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// LoadAvg reads the 1-minute load average from /proc/loadavg.
func LoadAvg() (float64, error) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, err
	}
	return ParseLoadAvg(string(b))
}

// ParseLoadAvg returns the first field of /proc/loadavg's text.
func ParseLoadAvg(s string) (float64, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return 0, fmt.Errorf("loadavg: empty")
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 0, fmt.Errorf("loadavg %q: %w", f[0], err)
	}
	return v, nil
}

// LoadSampler samples the 1-minute load average every interval until
// Stop, and summarizes what it saw: the figure the issue asks beside every
// result.
type LoadSampler struct {
	mu      sync.Mutex
	samples []float64
	stop    chan struct{}
	done    chan struct{}
}

// LoadStats summarizes the samples of a run.
type LoadStats struct {
	Start float64 `json:"start"`
	Mean  float64 `json:"mean"`
	Max   float64 `json:"max"`
	End   float64 `json:"end"`
}

func (l LoadStats) String() string {
	return fmt.Sprintf("load %.1f (max %.1f)", l.Mean, l.Max)
}

// StartLoadSampler samples now and then every interval.
func StartLoadSampler(interval time.Duration) *LoadSampler {
	s := &LoadSampler{stop: make(chan struct{}), done: make(chan struct{})}
	s.sample()
	go func() {
		defer close(s.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				s.sample()
			}
		}
	}()
	return s
}

func (s *LoadSampler) sample() {
	if v, err := LoadAvg(); err == nil {
		s.mu.Lock()
		s.samples = append(s.samples, v)
		s.mu.Unlock()
	}
}

// Stop takes a last sample and returns the summary. Safe to call twice.
func (s *LoadSampler) Stop() LoadStats {
	select {
	case <-s.stop:
	default:
		close(s.stop)
		<-s.done
		s.sample()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return SummarizeLoad(s.samples)
}

// SummarizeLoad is the first, mean, max and last of samples.
func SummarizeLoad(samples []float64) LoadStats {
	if len(samples) == 0 {
		return LoadStats{}
	}
	st := LoadStats{Start: samples[0], End: samples[len(samples)-1]}
	var sum float64
	for _, v := range samples {
		sum += v
		st.Max = max(st.Max, v)
	}
	st.Mean = sum / float64(len(samples))
	return st
}

// MachineCPU is the CPU time the whole machine has spent busy and in all,
// in seconds, from the first line of /proc/stat (every process, this
// machine's other users' included).
type MachineCPU struct {
	Busy, Total float64
}

// ReadMachineCPU reads /proc/stat.
func ReadMachineCPU() (MachineCPU, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return MachineCPU{}, err
	}
	return ParseMachineCPU(string(b))
}

// ParseMachineCPU reads the "cpu" line of /proc/stat's text: user nice
// system idle iowait irq softirq steal, in USER_HZ (100 a second).
func ParseMachineCPU(s string) (MachineCPU, error) {
	line, _, _ := strings.Cut(s, "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return MachineCPU{}, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var v [8]float64
	for i := range v {
		x, err := strconv.ParseFloat(f[i+1], 64)
		if err != nil {
			return MachineCPU{}, fmt.Errorf("/proc/stat: %w", err)
		}
		v[i] = x / 100
	}
	busy := v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
	return MachineCPU{Busy: busy, Total: busy + v[3] + v[4]}, nil
}

// Sub is m minus o.
func (m MachineCPU) Sub(o MachineCPU) MachineCPU {
	return MachineCPU{Busy: m.Busy - o.Busy, Total: m.Total - o.Total}
}
