package serve

import (
	"context"
	"time"

	"github.com/dataflow-sync/dataflow/engine/state"
	dsync "github.com/dataflow-sync/dataflow/engine/sync"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the service's Prometheus metrics, in a registry of its own: two services in one
// process (tests) never share counters.
type metrics struct {
	reg         *prometheus.Registry
	records     *prometheus.CounterVec
	runs        *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	lastSuccess *prometheus.GaugeVec
}

func newMetrics(s *Service) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dataflow_records_total",
			Help: "Records handled by the runs: direction is the side written (created, updated) or read (read), or both for what concerns a pair; outcome is read, created, updated, merged, conflict, unchanged, waiting, failed, deleted, unlinked or recovered.",
		}, []string{"dataflow", "flow", "direction", "outcome"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dataflow_runs_total",
			Help: "Finished runs of a flow by result: ok, failed (records failed), error (the run stopped) or stopped (interrupted).",
		}, []string{"flow", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "dataflow_run_duration_seconds",
			Help:    "How long the runs of a flow took.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600},
		}, []string{"flow"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "dataflow_last_success_timestamp_seconds",
			Help: "When the last run of a flow that synced every record finished (Unix time).",
		}, []string{"flow"}),
	}
	m.reg.MustRegister(m.records, m.runs, m.duration, m.lastSuccess, &stateCollector{s: s},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// recordRun counts a finished run: its result and duration for the job's flow, and the
// records of every flow it ran.
func (m *metrics) recordRun(p *plan, flow string, rep *dsync.Report, result string, info *RunInfo) {
	m.runs.WithLabelValues(flow, result).Inc()
	m.duration.WithLabelValues(flow).Observe(info.Seconds)
	if result == ResultOK {
		m.lastSuccess.WithLabelValues(flow).Set(float64(info.Finished.UnixNano()) / 1e9)
	}
	if rep == nil {
		return
	}
	for _, fs := range rep.Flows {
		dataflow := ""
		if fp := p.byID[fs.Flow]; fp != nil {
			dataflow = fp.flow.Dataflow.ID()
		}
		for _, c := range recordCounts(fs) {
			if c.n > 0 {
				m.records.WithLabelValues(dataflow, fs.Flow, c.direction, c.outcome).Add(float64(c.n))
			}
		}
	}
}

type recordCount struct {
	direction, outcome string
	n                  int
}

// recordCounts spells a flow's counts out as dataflow_records_total's labels.
func recordCounts(fs *dsync.FlowStats) []recordCount {
	return []recordCount{
		{state.Source, "read", fs.ReadSource},
		{state.Target, "read", fs.ReadTarget},
		{state.Target, "created", fs.CreatedTarget},
		{state.Source, "created", fs.CreatedSource},
		{state.Target, "updated", fs.UpdatedTarget},
		{state.Source, "updated", fs.UpdatedSource},
		{"both", "merged", fs.Merged},
		{"both", "conflict", fs.Conflicts},
		{"both", "unchanged", fs.Unchanged},
		{"both", "waiting", fs.Waiting},
		{"both", "failed", fs.Failed},
		{"both", "deleted", fs.Deleted},
		{"both", "unlinked", fs.Unlinked},
		{"both", "recovered", fs.Recovered},
	}
}

// stateCollector reads the gauges that the link state holds at the moment of the scrape, so
// that a dead letter dropped on the status page is gone from the next scrape.
type stateCollector struct{ s *Service }

var (
	deadLettersDesc = prometheus.NewDesc("dataflow_dead_letters", "Records of a flow that failed and are retried on every run.", []string{"flow"}, nil)
	waitingDesc     = prometheus.NewDesc("dataflow_waiting_records", "Records of a flow that wait, e.g. for a referenced record to be linked.", []string{"flow"}, nil)
	lagDesc         = prometheus.NewDesc("dataflow_watermark_lag_seconds", "How far behind now a side's watermark (the newest change an incremental read has seen) is; it grows while the system has no changes too.", []string{"flow", "side"}, nil)
	stateUpDesc     = prometheus.NewDesc("dataflow_state_up", "1 when the link state could be read for this scrape.", nil, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- deadLettersDesc
	ch <- waitingDesc
	ch <- lagDesc
	ch <- stateUpDesc
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p := c.s.plan.Load()
	dead, err1 := c.s.store.DeadLetters(ctx, "")
	waiting, err2 := c.s.store.Waiting(ctx, "")
	up := 1.0
	if err1 != nil || err2 != nil {
		up = 0
	}
	ch <- prometheus.MustNewConstMetric(stateUpDesc, prometheus.GaugeValue, up)
	if up == 0 {
		return
	}
	deadBy, waitingBy := map[string]int{}, map[string]int{}
	for _, d := range dead {
		deadBy[d.Flow]++
	}
	for _, w := range waiting {
		waitingBy[w.Flow]++
	}
	now := c.s.cfg.Now()
	for _, fp := range p.flows {
		id := fp.flow.ID()
		ch <- prometheus.MustNewConstMetric(deadLettersDesc, prometheus.GaugeValue, float64(deadBy[id]), id)
		ch <- prometheus.MustNewConstMetric(waitingDesc, prometheus.GaugeValue, float64(waitingBy[id]), id)
		for _, side := range []string{state.Source, state.Target} {
			wm, err := c.s.store.Watermark(ctx, id, side)
			if err != nil || wm == "" {
				continue
			}
			if t, ok := parseWatermark(wm); ok {
				ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, now.Sub(t).Seconds(), id, side)
			}
		}
	}
}

// parseWatermark reads a watermark that is a time. Other watermarks (a sequence number, a
// cursor) have no lag in seconds.
func parseWatermark(wm string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", time.DateTime, "2006-01-02 15:04:05.999999999"} {
		if t, err := time.Parse(layout, wm); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
