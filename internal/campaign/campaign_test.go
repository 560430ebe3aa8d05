package campaign

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/dataflow-sync/dataflow/internal/jsonservertest"
)

// buildDataflow builds the binary under test once per test binary run.
func buildDataflow(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "dataflow")
	out, err := exec.Command("go", "build", "-o", bin, "../../cmd/dataflow").CombinedOutput()
	if err != nil {
		t.Fatalf("building dataflow: %v\n%s", err, out)
	}
	return bin
}

// campaignSize is small in CI; DATAFLOW_CAMPAIGN_RECORDS and DATAFLOW_CAMPAIGN_KILLS scale it.
func campaignSize(t *testing.T) (records, kills int) {
	records, kills = 300, 12
	if v, err := strconv.Atoi(os.Getenv("DATAFLOW_CAMPAIGN_RECORDS")); err == nil {
		records = v
	}
	if v, err := strconv.Atoi(os.Getenv("DATAFLOW_CAMPAIGN_KILLS")); err == nil {
		kills = v
	}
	return records, kills
}

func TestKillCampaignSQLite(t *testing.T) {
	if testing.Short() {
		t.Skip("the campaign runs the real binary many times")
	}
	records, kills := campaignSize(t)
	cfg := Config{Binary: buildDataflow(t), Dir: t.TempDir(), Records: records, Kills: kills, Seed: 1}
	fig, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("figures:\n%s", fig)
	if !fig.OK() {
		t.Errorf("an invariant broke:\n%s", fig)
	}
	if fig.Kills != kills || fig.Immediate == 0 || fig.Edits == 0 || fig.Records < records {
		t.Errorf("the campaign did not do what it should:\n%s", fig)
	}
}

// TestCheckFindsBreakage proves the checks can fail: a duplicate, a lost update and a missing
// record planted behind the engine's back after a clean campaign are all counted.
func TestCheckFindsBreakage(t *testing.T) {
	if testing.Short() {
		t.Skip("the campaign runs the real binary")
	}
	ctx := context.Background()
	cfg := Config{Binary: buildDataflow(t), Dir: t.TempDir(), Records: 20, Kills: 1, Seed: 2}
	c := &campaign{cfg: cfg, want: map[string]*Item{}, fig: &Figures{}}
	c.cfg.Target = SQLiteTarget{}
	c.rng = newRand(2)
	defer c.stop()
	if err := c.setup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.seed(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.finish(ctx); err != nil {
		t.Fatal(err)
	}
	if !c.fig.OK() {
		t.Fatalf("a plain sync is not clean:\n%s", c.fig)
	}
	codes := c.codes()
	if err := c.source.Create(ctx, *c.want[codes[0]]); err != nil { // a duplicate
		t.Fatal(err)
	}
	if _, err := c.target.SetQty(ctx, codes[1], -1); err != nil { // an edit the engine never saw
		t.Fatal(err)
	}
	c.newItem("X") // expected but never made
	*c.fig = Figures{}
	if err := c.check(ctx); err != nil {
		t.Fatal(err)
	}
	if c.fig.Duplicates != 1 || c.fig.LostUpdates != 1 || c.fig.Missing != 2 {
		t.Errorf("check counted duplicates %d (want 1), lost updates %d (want 1), missing %d (want 2)",
			c.fig.Duplicates, c.fig.LostUpdates, c.fig.Missing)
	}
}

func TestKillCampaignJSONServer(t *testing.T) {
	if testing.Short() {
		t.Skip("the campaign runs the real binary many times")
	}
	dir, err := jsonservertest.Dir()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "json-server")); err != nil {
		if os.Getenv(jsonservertest.RequireEnv) == "1" {
			t.Fatalf("json-server is not installed: %s", jsonservertest.InstallCommand(dir))
		}
		t.Skipf("json-server is not installed; run %s", jsonservertest.InstallCommand(dir))
	}
	records, kills := campaignSize(t)
	cfg := Config{Binary: buildDataflow(t), Dir: t.TempDir(), Records: records, Kills: kills, Seed: 3,
		Target: &JSONServerTarget{Dir: dir}}
	fig, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("figures:\n%s", fig)
	if !fig.OK() {
		t.Errorf("an invariant broke:\n%s", fig)
	}
	if fig.Kills != kills || fig.Immediate == 0 || fig.Edits == 0 || fig.Records < records {
		t.Errorf("the campaign did not do what it should:\n%s", fig)
	}
}
