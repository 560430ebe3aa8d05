package campaign

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/dataflow-sync/dataflow/internal/pgtest"
)

// TestScaleOut: three `dataflow serve` workers share a link state in PostgreSQL, running four
// dataflows every second while both sides of each are edited; one worker is SIGKILLed and
// restarted every few seconds, another SIGSTOPped past its lease and resumed. At the end every
// linked pair agrees, with no duplicate, no lost update and no intent left, no two runs of a
// flow overlapped (by the runs' records and fencing tokens), the surviving workers' metrics
// add up to the runs the state recorded for them, and one more run writes nothing.
// DATAFLOW_SCALEOUT_SECONDS sets the length of the edits (40 s by default).
func TestScaleOut(t *testing.T) {
	if testing.Short() {
		t.Skip("the scale-out campaign runs three workers for a minute")
	}
	seconds := 40
	if v, err := strconv.Atoi(os.Getenv("DATAFLOW_SCALEOUT_SECONDS")); err == nil {
		seconds = v
	}
	db := pgtest.New(t)
	cfg := ScaleConfig{
		Binary: buildDataflow(t), Dir: t.TempDir(), StateDSN: db.DSN(),
		Workers: 3, Dataflows: 4, Records: 100,
		Duration: time.Duration(seconds) * time.Second, KillEvery: 4 * time.Second, Lease: 2 * time.Second,
		Seed: 1, Log: testLog{t},
	}
	fig, err := ScaleOut(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("figures:\n%s", fig)
	if !fig.OK() {
		t.Errorf("an invariant broke:\n%s", fig)
	}
	if !fig.StoppedMidRun {
		t.Logf("the SIGSTOP landed between runs: the fence of a run woken after its lease was lost is not exercised this time")
	}
	if fig.Kills < seconds/5 || fig.Stops != 1 || fig.Edits == 0 || fig.Creates == 0 || len(fig.RunsByWorker) < 3 {
		t.Errorf("the campaign did not do what it should:\n%s", fig)
	}
}

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Logf("%s", p)
	return len(p), nil
}

// TestWorkersThroughput measures 4 dataflows of 4 flows with 1, 2 and 3 workers (the README's
// figures); DATAFLOW_BENCH_WORKERS=1 runs it, DATAFLOW_BENCH_RECORDS sets the records per flow.
func TestWorkersThroughput(t *testing.T) {
	if os.Getenv("DATAFLOW_BENCH_WORKERS") != "1" {
		t.Skip("a measurement: DATAFLOW_BENCH_WORKERS=1 runs it")
	}
	records := 2000
	if v, err := strconv.Atoi(os.Getenv("DATAFLOW_BENCH_RECORDS")); err == nil {
		records = v
	}
	bin := buildDataflow(t)
	var figs []*ThroughputFigures
	for workers := 1; workers <= 3; workers++ {
		fig, err := Throughput(context.Background(), ThroughputConfig{
			Binary: bin, Dir: t.TempDir(), StateDSN: pgtest.New(t).DSN(),
			Workers: workers, Dataflows: 4, Flows: 4, Records: records, Window: 15 * time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Log(fig)
		figs = append(figs, fig)
	}
	// Rates depend on what else the machine runs; the CPU per run does not, and must not
	// grow much with workers (their coordination is a few statements per run).
	if figs[2].CPUPerRun > 2*figs[0].CPUPerRun {
		t.Errorf("a run costs %.3f CPU s with three workers, %.3f with one", figs[2].CPUPerRun, figs[0].CPUPerRun)
	}
}
